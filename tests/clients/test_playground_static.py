"""Checks of the built playground in src/stockade/service/static/: static, JS helpers under node, one browser run."""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "stockade" / "service" / "static"
FRONTEND = ROOT / "frontend"
SERVED = ["index.html", "app.js", "app.css", "editor.js", "favicon.svg"]
COPIED = ["index.html", "app.js", "app.css", "favicon.svg"]
REQUIRED_IDS = {
    "language", "editor", "stdin", "args", "run", "verdict", "stdout", "stderr",
    "compile-output", "time", "memory", "exit-code", "error", "api-key",
    "interactive", "live-input-row", "live-input", "send-input", "end-input",
}  # fmt: skip
# URL-shaped strings that are identifiers, never fetched (the SVG namespace).
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.refs: list[tuple[str, str, str]] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.append(values["id"])
        for name in ("src", "href", "action", "formaction", "poster", "data"):
            if name in values:
                self.refs.append((tag, name, values[name]))
        if tag == "meta" and "http-equiv" in values:
            self.meta[values["http-equiv"].lower()] = values.get("content", "")


def _page() -> _Page:
    page = _Page()
    page.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    return page


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_assets_exist() -> None:
    for name in [*SERVED, "editor.licenses.txt", "build-info.json"]:
        path = STATIC / name
        assert path.is_file(), f"missing {path}"
        assert path.stat().st_size > 100, f"{path} looks empty"
    # The editor bundle must really contain CodeMirror and the API app.js relies on.
    bundle = (STATIC / "editor.js").read_text(encoding="utf-8")
    assert "StockadeEditorKit" in bundle and "cm-editor" in bundle
    assert "@codemirror/view" in (STATIC / "editor.licenses.txt").read_text(encoding="utf-8")


def test_required_element_ids_are_present_and_unique() -> None:
    ids = _page().ids
    assert set(ids) >= REQUIRED_IDS, REQUIRED_IDS - set(ids)
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates


def test_page_references_only_packaged_files() -> None:
    refs = _page().refs
    assert {value for _, _, value in refs} >= {"app.js", "app.css", "editor.js", "favicon.svg"}
    for tag, attr, value in refs:
        assert not re.match(r"^([a-z][a-z0-9+.-]*:|//)", value, re.I), f"<{tag} {attr}={value}> is not local"
        assert (STATIC / value).is_file(), f"<{tag} {attr}={value}> points at a missing file"


def test_no_external_urls_in_served_assets() -> None:
    for name in SERVED:
        text = (STATIC / name).read_text(encoding="utf-8")
        urls = set(re.findall(r"https?://[^\s\"'`)<>]+", text))
        assert urls <= ALLOWED_URLS, f"{name} references {urls - ALLOWED_URLS}"
        assert not re.search(r"""(src|href)\s*=\s*["']?//""", text), f"{name} has a protocol-relative URL"
    css = (STATIC / "app.css").read_text(encoding="utf-8")
    assert "@import" not in css
    assert all(u.startswith(("data:", "#")) for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", css))


def test_content_security_policy_keeps_the_page_local() -> None:
    csp = _page().meta.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]


def test_app_never_builds_html_from_strings() -> None:
    app = (STATIC / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in app, f"app.js uses {sink}"
    assert "textContent" in app
    assert "window.stockadeEditor" in app or "root.stockadeEditor" in app


def test_static_copies_match_frontend_sources() -> None:
    for name in COPIED:
        assert (STATIC / name).read_bytes() == (FRONTEND / "src" / name).read_bytes(), (
            f"static/{name} differs from frontend/src/{name}: run `npm ci && npm run build` in frontend/"
        )


def test_build_info_matches_sources_and_outputs() -> None:
    info = json.loads((STATIC / "build-info.json").read_text(encoding="utf-8"))
    for rel, digest in info["sources"].items():
        assert _sha256(FRONTEND / rel) == digest, f"frontend/{rel} changed since the last build"
    for rel, digest in info["outputs"].items():
        assert _sha256(STATIC / rel) == digest, f"static/{rel} was edited by hand"
    assert "src/editor.js" in info["sources"] and "package-lock.json" in info["sources"]
    assert "editor.js" in info["outputs"]


def test_lockfile_pins_everything() -> None:
    package = json.loads((FRONTEND / "package.json").read_text(encoding="utf-8"))
    assert package["scripts"]["build"]
    deps = package["devDependencies"]
    assert {"codemirror", "esbuild", "@codemirror/legacy-modes"} <= set(deps)
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in deps.values()), "pin exact versions"
    lock = json.loads((FRONTEND / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["lockfileVersion"] >= 2
    for name, version in deps.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name
    for path, entry in lock["packages"].items():
        if path:
            assert entry.get("integrity", "").startswith("sha512-"), f"{path} has no integrity hash"


NODE_CHECKS = r"""
const assert = require("node:assert/strict");
const h = require(process.argv[1]);
assert.deepEqual(h.splitArgs(""), []);
assert.deepEqual(h.splitArgs("  a   b\tc "), ["a", "b", "c"]);
assert.deepEqual(h.splitArgs(`--name "Ada Lovelace" 'x y' z`), ["--name", "Ada Lovelace", "x y", "z"]);
assert.deepEqual(h.splitArgs(`"" ''`), ["", ""]);
const raw = String.raw`a\ b "q\"uote" 'back\slash' pre"mid"post "keep\n"`;
assert.deepEqual(h.splitArgs(raw), ["a b", 'q"uote', "back\\slash", "premidpost", "keep\\n"]);
assert.deepEqual(h.splitArgs(`"$HOME" <x> ;|&`), ["$HOME", "<x>", ";|&"]);
assert.throws(() => h.splitArgs(`"open`), /Unterminated double quote/);
assert.throws(() => h.splitArgs(`'open`), /Unterminated single quote/);
assert.throws(() => h.splitArgs("trail\\"), /lone backslash/);
assert.equal(h.describeExit({exit_code: 0, signal: null}), "0");
assert.equal(h.describeExit({exit_code: null, signal: 9}), "signal 9 (SIGKILL)");
assert.equal(h.describeExit({exit_code: null, signal: null}), "–");
assert.equal(h.describeVerdict({status: "timeout", timeout_kind: "wall"}), "Wall-clock time limit exceeded");
assert.equal(h.describeVerdict({status: "runtime_error", exit_code: 3, signal: null}), "Exited with code 3");
const killed = {status: "runtime_error", exit_code: null, signal: 11};
assert.equal(h.describeVerdict(killed), "Killed by signal 11 (SIGSEGV)");
const explained = {...killed, explanation: "SIGSEGV (Segmentation fault): x"};
assert.equal(h.describeVerdict(explained), "SIGSEGV (Segmentation fault): x");
assert.equal(h.formatKb(512), "512 KiB");
assert.equal(h.formatKb(9312), "9.1 MiB");
assert.equal(h.formatMs(42), "42 ms");
assert.equal(h.decodeOutput(Buffer.from("h\u00e9<b>").toString("base64"), "base64"), "h\u00e9<b>");
assert.equal(h.decodeOutput("plain", "utf8"), "plain");
assert.equal(h.joinOutput("err", "", "out\n"), "err\nout\n");
const rts = [{language: "rust", available: false}, {language: "c"}, {language: "python"}];
assert.equal(h.pickLanguage(rts, null), "python");
assert.equal(h.pickLanguage(rts, "c"), "c");
assert.equal(h.pickLanguage(rts, "rust"), "python");
assert.equal(h.pickLanguage([{language: "rust", available: false}], null), null);
assert.equal(h.streamUrlFor("http://h:8000/"), "ws://h:8000/v1/execute/stream");
assert.equal(h.streamUrlFor("https://h/pre/fix/"), "wss://h/pre/fix/v1/execute/stream");
assert.deepEqual(h.streamProtocols(""), ["stockade.v1"]);
assert.deepEqual(h.streamProtocols("sk_1_x"), ["stockade.v1", "stockade.bearer.sk_1_x"]);
const refusal = {type: "error", http_status: 429, retry_after: 7,
  error: {status: "failed", error: "QUOTA_EXCEEDED", message: "used up"}};
assert.deepEqual(h.streamFailure(refusal), {code: "QUOTA_EXCEEDED", message: "used up", id: null, retryAfter: "7"});
assert.equal(h.streamFailure({type: "error"}).code, "STREAM_ERROR");
console.log("ok");
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_app_helpers_under_node() -> None:
    proc = subprocess.run(
        ["node", "-e", NODE_CHECKS, str(STATIC / "app.js")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------ browser
# One real page load in headless Chromium against a fake API (skipped where no Chromium is installed):
# the editor bundle loads, Ctrl+Enter runs, the request follows the contract and hostile output stays text.

HOSTILE = '<img src=x onerror="document.title=\'PWNED\'"><script>document.title="PWNED2"</script>&amp;\n'

DRIVER = r"""
(function wait() {
  const select = document.getElementById("language");
  if (select.disabled) return setTimeout(wait, 20);
  const key = document.getElementById("api-key");
  key.value = "test-key";
  key.dispatchEvent(new Event("input"));
  document.getElementById("stdin").value = "in put\n";
  document.getElementById("args").value = `--name "Ada Lovelace" 'x y'`;
  document.getElementById("limit-wall-ms").value = "1500";
  const code = new URLSearchParams(location.search).get("code");
  window.stockadeEditor.setValue(code);
  document.body.dataset.editorValue = window.stockadeEditor.getValue();
  document.querySelector(".cm-content").dispatchEvent(
    new KeyboardEvent("keydown", {key: "Enter", ctrlKey: true, bubbles: true, cancelable: true}));
  // Virtual time waits for fetches but not for a WebSocket: hold the page open with one fetch after
  // another until the run has an outcome (the fake refuses the stream; the page then POSTs).
  (function hold() {
    if (document.getElementById("verdict").dataset.status !== "running") return;
    fetch("/hold").then(hold, hold);
  })();
})();
"""

BROWSER_RUNTIMES = {
    "runtimes": [
        {"language": "python", "name": "Python 3", "aliases": ["py"], "extensions": ["py"],
         "version": "3.11.2", "available": True, "compiled": False, "hello": "print('hi')"},
        {"language": "rust", "name": "Rust", "aliases": [], "extensions": ["rs"],
         "version": None, "available": False, "compiled": True, "hello": "fn main() {}"},
    ],
    # GET /v1/runtimes' shape: a stage's defaults and maxima (the e2e test reads the real one).
    "limits": {"run": {"default": {"cpu_ms": 5000, "wall_ms": 10000, "memory_mb": 256},
                       "maximum": {"cpu_ms": 30000, "wall_ms": 60000, "memory_mb": 1024}},
               "compile": {"default": {"cpu_ms": 1, "wall_ms": 2, "memory_mb": 3},
                           "maximum": {"cpu_ms": 4, "wall_ms": 5, "memory_mb": 6}}},
}  # fmt: skip


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class _BrowserFake(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/v1/runtimes":
            return self._send(200, json.dumps(BROWSER_RUNTIMES).encode(), "application/json")
        if path == "/driver.js":
            return self._send(200, DRIVER.encode(), "text/javascript")
        if path == "/hold":
            time.sleep(0.02)
            return self._send(200, b"ok", "text/plain")
        if path == "/v1/execute/stream":  # a server (or proxy) without WebSockets: the page falls back
            self.requests.append({"path": path, "upgrade": self.headers.get("Upgrade")})
            return self._send(404, b"not found", "text/plain")
        name = "index.html" if path == "/" else path.lstrip("/")
        file = STATIC / name
        if "/" in name or not file.is_file():
            return self._send(404, b"not found", "text/plain")
        body = file.read_bytes()
        if name == "index.html":
            body = body.replace(b"</body>", b'<script src="driver.js"></script></body>')
        types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        return self._send(200, body, types.get(file.suffix, "application/octet-stream"))

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if "RATE" in body["code"]:
            failure = {"status": "failed", "error": "RATE_LIMITED", "message": "Slow down <b>now</b>."}
            return self._send(429, json.dumps(failure).encode(), "application/json", {"Retry-After": "7"})
        result = {
            "execution_id": "ex-9", "status": "runtime_error", "stdout": HOSTILE, "stderr": "boom\n",
            "output_encoding": "utf8", "stdout_truncated": True, "stderr_truncated": False,
            "exit_code": 3, "signal": None, "timeout_kind": None, "time_ms": 12, "wall_time_ms": 40,
            "memory_kb": 2048, "compile": None, "runtime": {"language": "python", "version": "3.11.2"},
        }  # fmt: skip
        return self._send(200, json.dumps(result).encode(), "application/json")


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Callable[[str], str]]:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium installed")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrowserFake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"

    def dump(code: str) -> str:
        with tempfile.TemporaryDirectory() as profile:
            cmd = [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
                f"{base}?{urlencode({'code': code})}",
            ]  # fmt: skip
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
            )
            try:
                out, _ = proc.communicate(timeout=90)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        return out

    try:
        yield dump
    finally:
        server.shutdown()
        server.server_close()


def _element(dom: str, element_id: str) -> tuple[str, str]:
    """(opening tag, inner HTML) of the element with that id; the page has no nesting of same tags there."""
    match = re.search(rf'(<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>)(.*?)</\2>', dom, re.S)
    assert match, f"#{element_id} not in the page"
    return match.group(1), match.group(3)


def test_browser_run_renders_result_as_inert_text(browser_page: Callable[[str], str]) -> None:
    _BrowserFake.requests.clear()
    code = "import sys\nprint(sys.argv)\n"
    dom = browser_page(code)
    assert "PWNED" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)  # type: ignore[union-attr]
    # The stream was tried first; refused (no WebSocket here), the page sent the one request instead.
    assert _BrowserFake.requests[0] == {"path": "/v1/execute/stream", "upgrade": "websocket"}
    # The request: code from the editor API, split args, stdin, limits, bearer from the key field.
    assert len(_BrowserFake.requests) == 2
    sent = _BrowserFake.requests[1]
    assert sent["path"] == "/v1/execute"
    assert sent["auth"] == "Bearer test-key"
    assert sent["body"] == {
        "language": "python", "version": None, "code": code, "stdin": "in put\n",
        "args": ["--name", "Ada Lovelace", "x y"], "limits": {"wall_ms": 1500},
    }  # fmt: skip
    # The page: verdict, stats and the hostile stdout shown literally, no element made from it.
    tag, inner = _element(dom, "verdict")
    assert 'data-status="runtime_error"' in tag and inner == "runtime_error"
    _, stdout = _element(dom, "stdout")
    assert "<img" not in stdout and "<script" not in stdout
    assert html.unescape(stdout) == HOSTILE
    assert html.unescape(_element(dom, "stderr")[1]) == "boom\n"
    assert _element(dom, "exit-code")[1] == "3"
    assert _element(dom, "memory")[1] == "2.0 MiB"
    assert "12 ms CPU" in html.unescape(_element(dom, "time")[1])
    assert "hidden" not in _element(dom, "stdout-truncated")[0]
    assert "hidden" in _element(dom, "error")[0]
    # The language picker: installed first choice selected, missing toolchain disabled.
    options = re.findall(r"<option([^>]*)>([^<]*)</option>", _element(dom, "language")[1])
    assert any("disabled" in attrs and text == "Rust (not installed)" for attrs, text in options)
    assert 'data-editor-value="import sys' in dom


def test_browser_shows_api_errors_plainly(browser_page: Callable[[str], str]) -> None:
    _BrowserFake.requests.clear()
    dom = browser_page("RATE")
    tag, inner = _element(dom, "verdict")
    assert 'data-status="failed"' in tag and inner == "RATE_LIMITED"
    error_tag, error = _element(dom, "error")
    assert "hidden" not in error_tag
    text = html.unescape(re.sub(r"<[^>]+>", "", error))
    assert "RATE_LIMITED" in text and "Slow down <b>now</b>." in text and "Try again in 7 s." in text
    assert "<b>" not in error  # the server's message is text too
