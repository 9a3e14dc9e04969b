// Builds the playground into src/stockade/service/static/: bundles CodeMirror (src/editor.js)
// into editor.js, copies the hand-written page files and Swagger UI's. Run with `npm ci && npm run build`.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "stockade", "service", "static");
mkdirSync(out, { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, "src", "editor.js")],
  outfile: join(out, "editor.js"),
  bundle: true,
  format: "iife",
  target: ["es2020"],
  minify: true,
  // Licences are gathered into editor.licenses.txt below instead.
  legalComments: "none",
  charset: "utf8",
  metafile: true,
  logLevel: "warning",
});

for (const name of ["index.html", "app.js", "app.css", "favicon.svg"]) {
  copyFileSync(join(here, "src", name), join(out, name));
}

// Swagger UI for the service's /docs, served from the package: a self-hosted machine may have no internet.
const swagger = join(here, "node_modules", "swagger-ui-dist");
const swaggerOut = join(out, "swagger");
const swaggerFiles = ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"];
mkdirSync(swaggerOut, { recursive: true });
for (const name of swaggerFiles) copyFileSync(join(swagger, name), join(swaggerOut, name));

// Licence texts of every npm package that ended up in the bundle.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (match) packages.set(match[1], join(here, "node_modules", match[1]));
}
const notices = [];
for (const [name, dir] of [...packages].sort(([a], [b]) => a.localeCompare(b))) {
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const licenceFile = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license"].map((f) => join(dir, f)).find(existsSync);
  const text = licenceFile ? readFileSync(licenceFile, "utf8").trim() : `License: ${pkg.license}`;
  notices.push(`${name}@${pkg.version} (${pkg.license})\n\n${text}\n`);
}
writeFileSync(
  join(out, "editor.licenses.txt"),
  `Third-party software bundled in editor.js\n\n${notices.join("\n" + "-".repeat(72) + "\n\n")}`,
);

// Lets the test suite notice a source change that was not rebuilt.
const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");
const sources = ["package-lock.json", "src/editor.js", "src/index.html", "src/app.js", "src/app.css", "src/favicon.svg"];
const info = {
  esbuild: esbuild.version,
  sources: Object.fromEntries(sources.map((p) => [p, sha256(join(here, p))])),
  outputs: Object.fromEntries(
    ["editor.js", "index.html", "app.js", "app.css", "favicon.svg", ...swaggerFiles.map((f) => `swagger/${f}`)].map(
      (p) => [p, sha256(join(out, p))],
    ),
  ),
};
writeFileSync(join(out, "build-info.json"), JSON.stringify(info, null, 2) + "\n");
console.log(`built ${relative(process.cwd(), out)}: ${packages.size} packages bundled`);
