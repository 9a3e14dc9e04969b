// CodeMirror 6 with the language modes the playground knows, bundled by esbuild into
// static/editor.js. It exposes one global, window.StockadeEditorKit, used by app.js.
import { EditorView, basicSetup } from "codemirror";
import { Compartment, EditorState } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { StreamLanguage, indentUnit } from "@codemirror/language";
import { python } from "@codemirror/lang-python";
import { cpp } from "@codemirror/lang-cpp";
import { java } from "@codemirror/lang-java";
import { javascript } from "@codemirror/lang-javascript";
import { rust } from "@codemirror/lang-rust";
import { go } from "@codemirror/lang-go";
import { php } from "@codemirror/lang-php";
import { sql, SQLite } from "@codemirror/lang-sql";
import { csharp, kotlin, scala, dart, objectiveC } from "@codemirror/legacy-modes/mode/clike";
import { oCaml, fSharp, sml } from "@codemirror/legacy-modes/mode/mllike";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { ruby } from "@codemirror/legacy-modes/mode/ruby";
import { perl } from "@codemirror/legacy-modes/mode/perl";
import { lua } from "@codemirror/legacy-modes/mode/lua";
import { haskell } from "@codemirror/legacy-modes/mode/haskell";
import { swift } from "@codemirror/legacy-modes/mode/swift";
import { r } from "@codemirror/legacy-modes/mode/r";
import { pascal } from "@codemirror/legacy-modes/mode/pascal";
import { fortran } from "@codemirror/legacy-modes/mode/fortran";
import { erlang } from "@codemirror/legacy-modes/mode/erlang";
import { julia } from "@codemirror/legacy-modes/mode/julia";
import { commonLisp } from "@codemirror/legacy-modes/mode/commonlisp";
import { scheme } from "@codemirror/legacy-modes/mode/scheme";
import { clojure } from "@codemirror/legacy-modes/mode/clojure";
import { d } from "@codemirror/legacy-modes/mode/d";
import { groovy } from "@codemirror/legacy-modes/mode/groovy";
import { octave } from "@codemirror/legacy-modes/mode/octave";
import { cobol } from "@codemirror/legacy-modes/mode/cobol";
import { crystal } from "@codemirror/legacy-modes/mode/crystal";
import { elm } from "@codemirror/legacy-modes/mode/elm";
import { tcl } from "@codemirror/legacy-modes/mode/tcl";
import { vb } from "@codemirror/legacy-modes/mode/vb";
import { powerShell } from "@codemirror/legacy-modes/mode/powershell";
import { brainfuck } from "@codemirror/legacy-modes/mode/brainfuck";
import { smalltalk } from "@codemirror/legacy-modes/mode/smalltalk";
import { gas } from "@codemirror/legacy-modes/mode/gas";

const legacy = (mode) => () => StreamLanguage.define(mode);

// Keys are language ids, aliases or file extensions, lower-cased; the first hit wins.
const MODES = {
  python: python, py: python, python3: python,
  c: cpp, h: cpp,
  cpp: cpp, "c++": cpp, cc: cpp, cxx: cpp, hpp: cpp,
  java: java,
  javascript: javascript, js: javascript, node: javascript, nodejs: javascript, mjs: javascript,
  typescript: () => javascript({ typescript: true }), ts: () => javascript({ typescript: true }),
  rust: rust, rs: rust,
  go: go, golang: go,
  php: php,
  sql: () => sql({ dialect: SQLite }), sqlite: () => sql({ dialect: SQLite }),
  sqlite3: () => sql({ dialect: SQLite }),
  csharp: legacy(csharp), "c#": legacy(csharp), cs: legacy(csharp), dotnet: legacy(csharp),
  kotlin: legacy(kotlin), kt: legacy(kotlin), kts: legacy(kotlin),
  scala: legacy(scala),
  dart: legacy(dart),
  "objective-c": legacy(objectiveC), objc: legacy(objectiveC),
  ocaml: legacy(oCaml), ml: legacy(oCaml),
  fsharp: legacy(fSharp), "f#": legacy(fSharp), fsx: legacy(fSharp),
  sml: legacy(sml),
  bash: legacy(shell), sh: legacy(shell), shell: legacy(shell), zsh: legacy(shell), dash: legacy(shell),
  ruby: legacy(ruby), rb: legacy(ruby),
  perl: legacy(perl), pl: legacy(perl),
  lua: legacy(lua),
  haskell: legacy(haskell), hs: legacy(haskell),
  swift: legacy(swift),
  r: legacy(r), rscript: legacy(r),
  pascal: legacy(pascal), pas: legacy(pascal), fpc: legacy(pascal),
  fortran: legacy(fortran), f90: legacy(fortran), f95: legacy(fortran),
  erlang: legacy(erlang), erl: legacy(erlang),
  julia: legacy(julia), jl: legacy(julia),
  lisp: legacy(commonLisp), commonlisp: legacy(commonLisp), sbcl: legacy(commonLisp),
  scheme: legacy(scheme), scm: legacy(scheme), racket: legacy(scheme), guile: legacy(scheme),
  clojure: legacy(clojure), clj: legacy(clojure),
  d: legacy(d),
  groovy: legacy(groovy),
  octave: legacy(octave),
  cobol: legacy(cobol), cob: legacy(cobol), cbl: legacy(cobol),
  crystal: legacy(crystal), cr: legacy(crystal),
  elm: legacy(elm),
  tcl: legacy(tcl),
  vb: legacy(vb), vbnet: legacy(vb),
  powershell: legacy(powerShell), ps1: legacy(powerShell),
  brainfuck: legacy(brainfuck), bf: legacy(brainfuck),
  smalltalk: legacy(smalltalk),
  asm: legacy(gas), gas: legacy(gas), s: legacy(gas),
};

function modeFor(runtime) {
  if (!runtime) return null;
  const keys = [runtime.language, ...(runtime.aliases || []), ...(runtime.extensions || [])];
  for (const key of keys) {
    const k = typeof key === "string" ? key.toLowerCase() : "";
    if (Object.hasOwn(MODES, k)) return MODES[k];
  }
  return null;
}

// Plain text (no highlighting) when nothing matches.
function languageFor(runtime) {
  const make = modeFor(runtime);
  return make ? make() : [];
}

function hasMode(runtime) {
  return modeFor(runtime) !== null;
}

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "14px" },
  ".cm-scroller": {
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace",
    lineHeight: "1.55",
  },
  ".cm-gutters": { backgroundColor: "#f6f8fa", borderRight: "1px solid #e3e7ec", color: "#8b949e" },
  "&.cm-focused": { outline: "none" },
});

function createEditor(parent, options = {}) {
  const language = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: options.doc || "",
      extensions: [
        basicSetup,
        keymap.of([indentWithTab]),
        indentUnit.of("    "),
        theme,
        language.of([]),
        EditorView.contentAttributes.of({ "aria-label": "Source code" }),
      ],
    }),
  });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue: (text) => {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: String(text) } });
    },
    setLanguage: (runtime) => {
      view.dispatch({ effects: language.reconfigure(languageFor(runtime)) });
    },
    focus: () => view.focus(),
  };
}

window.StockadeEditorKit = { createEditor, hasMode };
