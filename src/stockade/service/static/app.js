// Stockade playground. Plain script, no build step of its own; the editor comes from editor.js.
// Everything the server or the program sends is shown with textContent, never parsed as HTML.
(function (root) {
  "use strict";

  const STORAGE_KEY_API = "stockade.apiKey";
  const STORAGE_KEY_LANGUAGE = "stockade.language";

  const STATUS_TEXT = {
    ok: "Finished normally",
    compile_error: "Compilation failed",
    compile_limit: "The compiler hit a resource limit",
    runtime_error: "The program failed",
    timeout: "Time limit exceeded",
    memory_limit: "Memory limit exceeded",
    output_limit: "Output limit exceeded",
    file_size_limit: "File size limit exceeded",
    syscall_blocked: "Stopped: forbidden system call",
    internal_error: "The sandbox failed; not the program's fault",
  };

  const SIGNALS = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
    8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
    14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS",
  };

  const ERROR_HINTS = {
    UNAUTHENTICATED: "Enter an API key in the field at the top right.",
    FORBIDDEN: "This API key may not do that.",
    TOOLCHAIN_MISSING: "This language is known but its toolchain is not installed on the server.",
    QUOTA_EXCEEDED: "The quota of this API key is used up.",
    PAYLOAD_TOO_LARGE: "The program or its input is too large.",
  };

  // Splits an argument line like a POSIX shell would, without expansions:
  // 'single quotes' are literal, "double quotes" allow \" \\ \$ \`, a backslash escapes outside quotes.
  function splitArgs(line) {
    const args = [];
    let current = "";
    let inWord = false;
    let quote = null;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (quote === "'") {
        if (ch === "'") quote = null;
        else current += ch;
      } else if (quote === '"') {
        if (ch === '"') quote = null;
        else if (ch === "\\" && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) current += line[++i];
        else current += ch;
      } else if (ch === "'" || ch === '"') {
        quote = ch;
        inWord = true;
      } else if (ch === "\\") {
        if (i + 1 >= line.length) throw new Error("Arguments end with a lone backslash");
        current += line[++i];
        inWord = true;
      } else if (/\s/.test(ch)) {
        if (inWord) args.push(current);
        current = "";
        inWord = false;
      } else {
        current += ch;
        inWord = true;
      }
    }
    if (quote) throw new Error(`Unterminated ${quote === "'" ? "single" : "double"} quote in arguments`);
    if (inWord) args.push(current);
    return args;
  }

  function formatMs(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "–";
    return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
  }

  function formatKb(kb) {
    if (typeof kb !== "number" || !isFinite(kb)) return "–";
    if (kb < 1024) return `${Math.round(kb)} KiB`;
    if (kb < 1024 * 1024) return `${(kb / 1024).toFixed(1)} MiB`;
    return `${(kb / 1024 / 1024).toFixed(2)} GiB`;
  }

  function describeExit(result) {
    if (typeof result.signal === "number") {
      const name = SIGNALS[result.signal];
      return name ? `signal ${result.signal} (${name})` : `signal ${result.signal}`;
    }
    if (typeof result.exit_code === "number") return String(result.exit_code);
    return "–";
  }

  function describeVerdict(result) {
    const status = result.status;
    // The server's one line on a signal (what SIGSEGV means, why SIGSYS: 32-bit x86 is not supported).
    if (typeof result.explanation === "string" && result.explanation) return result.explanation;
    if (status === "timeout" && result.timeout_kind === "cpu") return "CPU time limit exceeded";
    if (status === "timeout" && result.timeout_kind === "wall") return "Wall-clock time limit exceeded";
    if (status === "runtime_error") {
      if (typeof result.signal === "number") return `Killed by ${describeExit(result)}`;
      if (typeof result.exit_code === "number") return `Exited with code ${result.exit_code}`;
    }
    return STATUS_TEXT[status] || "";
  }

  function decodeOutput(text, encoding) {
    if (typeof text !== "string") return "";
    if (encoding !== "base64") return text;
    try {
      const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
      return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
    } catch (_) {
      return text;
    }
  }

  function joinOutput(...parts) {
    return parts.filter((p) => typeof p === "string" && p.length > 0)
      .map((p) => (p.endsWith("\n") ? p : p + "\n")).join("");
  }

  // Chooses the initial language: the remembered one, else Python, else the first available.
  function pickLanguage(runtimes, remembered) {
    const usable = runtimes.filter((r) => r.available !== false);
    const byId = (id) => usable.find((r) => r.language === id);
    const chosen = (remembered && byId(remembered)) || byId("python") || usable[0] || null;
    return chosen ? chosen.language : null;
  }

  // The stream endpoint's ws(s):// URL, relative to the page (so it works behind a path prefix too).
  function streamUrlFor(base) {
    const url = new URL("v1/execute/stream", base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.toString();
  }

  // Subprotocols of a stream: a browser cannot set Authorization on a WebSocket, so the key rides along.
  function streamProtocols(key) {
    return key ? ["stockade.v1", `stockade.bearer.${key}`] : ["stockade.v1"];
  }

  // An `error` event of the stream, as the failure an HTTP refusal gives.
  function streamFailure(event) {
    const body = (event && typeof event.error === "object" && event.error) || {};
    return {
      code: typeof body.error === "string" ? body.error : "STREAM_ERROR",
      message: typeof body.message === "string" ? body.message : "The server refused the stream.",
      id: typeof body.id === "string" ? body.id : null,
      retryAfter: event && event.retry_after != null ? String(event.retry_after) : null,
    };
  }

  const helpers = {
    splitArgs, formatMs, formatKb, describeExit, describeVerdict, decodeOutput, joinOutput, pickLanguage,
    streamUrlFor, streamProtocols, streamFailure,
  };
  if (typeof module === "object" && module.exports) module.exports = helpers;
  if (typeof document === "undefined") return;

  // ------------------------------------------------------------------------------------ page

  const $ = (id) => document.getElementById(id);
  const els = {
    language: $("language"), runtimeInfo: $("runtime-info"), editor: $("editor"), stdin: $("stdin"),
    args: $("args"), run: $("run"), verdict: $("verdict"), verdictDetail: $("verdict-detail"),
    stdout: $("stdout"), stderr: $("stderr"), compileSection: $("compile-section"),
    compileOutput: $("compile-output"), compileStatus: $("compile-status"), time: $("time"),
    memory: $("memory"), exitCode: $("exit-code"), error: $("error"), apiKey: $("api-key"),
    stdoutTruncated: $("stdout-truncated"), stderrTruncated: $("stderr-truncated"),
    executionId: $("execution-id"), shortcut: $("run-shortcut"),
    interactive: $("interactive"), liveRow: $("live-input-row"), liveInput: $("live-input"),
    sendInput: $("send-input"), endInput: $("end-input"),
    limits: Array.from(document.querySelectorAll("[data-limit]")),
  };

  const state = { runtimes: [], running: false, loaded: false, stream: null };

  const storage = {
    get(key) {
      try { return root.localStorage.getItem(key) || ""; } catch (_) { return ""; }
    },
    set(key, value) {
      try {
        if (value) root.localStorage.setItem(key, value);
        else root.localStorage.removeItem(key);
      } catch (_) { /* storage disabled: the value just isn't remembered */ }
    },
  };

  // The editor, or a plain textarea when the bundle failed to load.
  const editor = (() => {
    if (root.StockadeEditorKit) {
      const ed = root.StockadeEditorKit.createEditor(els.editor);
      return ed;
    }
    const area = document.createElement("textarea");
    area.className = "fallback-editor";
    area.spellcheck = false;
    area.setAttribute("aria-label", "Source code");
    els.editor.appendChild(area);
    return {
      getValue: () => area.value,
      setValue: (text) => { area.value = String(text); },
      setLanguage: () => {},
      focus: () => area.focus(),
    };
  })();
  root.stockadeEditor = { getValue: () => editor.getValue(), setValue: (s) => editor.setValue(s) };

  function apiUrl(path) {
    // Relative to the page, so the playground also works behind a path prefix.
    return new URL(path, document.baseURI).toString();
  }

  function headers(json) {
    const h = { Accept: "application/json" };
    if (json) h["Content-Type"] = "application/json";
    const key = els.apiKey.value.trim();
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  // Returns {ok, status, data, retryAfter}; data is null when the body is not JSON.
  async function callApi(path, options) {
    const response = await fetch(apiUrl(path), { ...options, credentials: "same-origin", cache: "no-store" });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    return {
      ok: response.ok && data !== null && data.status !== "failed",
      status: response.status,
      data,
      retryAfter: response.headers.get("Retry-After"),
    };
  }

  function apiFailure(reply) {
    const data = reply.data || {};
    return {
      code: typeof data.error === "string" ? data.error : `HTTP_${reply.status}`,
      message: typeof data.message === "string" ? data.message
        : `The server answered HTTP ${reply.status} without an API error body.`,
      id: typeof data.id === "string" ? data.id : null,
      retryAfter: reply.retryAfter,
    };
  }

  function showError(failure) {
    const box = els.error;
    box.replaceChildren();
    const code = document.createElement("strong");
    code.textContent = failure.code;
    const message = document.createElement("span");
    let text = ` ${failure.message}`;
    const seconds = Number(failure.retryAfter);
    if (failure.retryAfter && isFinite(seconds)) text += ` Try again in ${Math.ceil(seconds)} s.`;
    if (ERROR_HINTS[failure.code]) text += ` ${ERROR_HINTS[failure.code]}`;
    if (failure.id) text += ` (error id ${failure.id})`;
    message.textContent = text;
    box.append(code, message);
    box.hidden = false;
  }

  function clearError() {
    els.error.hidden = true;
    els.error.replaceChildren();
  }

  function setVerdict(status, label, detail) {
    els.verdict.dataset.status = status;
    document.body.dataset.state = status;
    els.verdict.textContent = label;
    els.verdictDetail.textContent = detail || "";
  }

  function clearResult() {
    for (const el of [els.stdout, els.stderr, els.compileOutput, els.compileStatus, els.executionId]) el.textContent = "";
    els.time.textContent = els.memory.textContent = els.exitCode.textContent = "–";
    els.compileSection.hidden = true;
    els.stdoutTruncated.hidden = els.stderrTruncated.hidden = true;
  }

  function renderResult(result) {
    clearError();
    setVerdict(result.status, result.status, describeVerdict(result));
    els.verdict.title = STATUS_TEXT[result.status] || "";
    els.stdout.textContent = decodeOutput(result.stdout, result.output_encoding);
    els.stderr.textContent = decodeOutput(result.stderr, result.output_encoding);
    els.stdoutTruncated.hidden = !result.stdout_truncated;
    els.stderrTruncated.hidden = !result.stderr_truncated;
    els.time.textContent = `${formatMs(result.time_ms)} CPU · ${formatMs(result.wall_time_ms)} wall`;
    els.memory.textContent = formatKb(result.memory_kb);
    els.exitCode.textContent = describeExit(result);
    const compile = result.compile;
    if (compile && typeof compile === "object") {
      els.compileSection.hidden = false;
      els.compileStatus.textContent = String(compile.status || "");
      els.compileStatus.dataset.status = String(compile.status || "");
      els.compileOutput.textContent = joinOutput(compile.stderr, compile.stdout);
    }
    if (typeof result.execution_id === "string" && result.execution_id) {
      els.executionId.textContent = `Execution ${result.execution_id}.`;
    }
  }

  function renderFailure(failure) {
    clearResult();
    setVerdict("failed", failure.code, "Not executed");
    els.verdict.title = "";
    showError(failure);
  }

  function currentRuntime() {
    return state.runtimes.find((r) => r.language === els.language.value) || null;
  }

  function collectLimits() {
    const limits = {};
    for (const input of els.limits) {
      const raw = input.value.trim();
      if (!raw) continue;
      const value = Number(raw);
      if (!Number.isInteger(value) || value <= 0) {
        throw new Error(`The ${input.dataset.limit} limit must be a positive whole number`);
      }
      limits[input.dataset.limit] = value;
    }
    return limits;
  }

  function setRunning(running) {
    state.running = running;
    els.run.disabled = running || !state.loaded;
    els.run.classList.toggle("busy", running);
    els.run.querySelector(".run-label").textContent = running ? "Running…" : "Run";
  }

  async function run() {
    if (state.running || !state.loaded) return;
    const runtime = currentRuntime();
    if (!runtime) return;
    let args;
    let limits;
    try {
      args = splitArgs(els.args.value);
      limits = collectLimits();
    } catch (err) {
      renderFailure({ code: "INVALID_INPUT", message: err.message });
      return;
    }
    const body = { language: runtime.language, version: null, code: editor.getValue(), stdin: els.stdin.value, args };
    if (Object.keys(limits).length) body.limits = limits;

    clearResult();
    clearError();
    setVerdict("running", "running", "");
    setRunning(true);
    try {
      // Streamed: output shows as it comes. Where no WebSocket opens (a proxy that does not carry them),
      // nothing has run, and the one request answers with the whole result.
      const streamed = await runStreamed(body, els.interactive.checked);
      if (streamed.kind === "result") renderResult(streamed.data);
      else if (streamed.kind === "failure") renderFailure(streamed.failure);
      else {
        const reply = await callApi("v1/execute", { method: "POST", headers: headers(true), body: JSON.stringify(body) });
        if (reply.ok) renderResult(reply.data);
        else renderFailure(apiFailure(reply));
      }
    } catch (err) {
      renderFailure({ code: "CONNECTION_FAILED", message: `Could not reach the Stockade service (${err.message}).` });
    } finally {
      setRunning(false);
    }
  }

  // One run over GET /v1/execute/stream. Resolves {kind: "result", data}, {kind: "failure", failure},
  // or {kind: "unavailable"} when the WebSocket never opened.
  function runStreamed(body, interactive) {
    return new Promise((resolve) => {
      let ws;
      try {
        ws = new WebSocket(streamUrlFor(document.baseURI), streamProtocols(els.apiKey.value.trim()));
      } catch (_) {
        resolve({ kind: "unavailable" });
        return;
      }
      let opened = false;
      let settled = false;
      const finish = (outcome) => {
        if (settled) return;
        settled = true;
        state.stream = null;
        showLiveInput(false);
        resolve(outcome);
      };
      ws.onopen = () => {
        opened = true;
        ws.send(JSON.stringify(body));
        if (interactive) {
          state.stream = ws;
          showLiveInput(true);
        } else {
          ws.send(JSON.stringify({ type: "eof" }));
        }
      };
      ws.onmessage = (message) => {
        let event = null;
        try { event = JSON.parse(message.data); } catch (_) { return; }
        if (!event || typeof event !== "object") return;
        if (event.type === "stdout" || event.type === "stderr") {
          // A text node each: output is appended, never parsed.
          els[event.type].append(document.createTextNode(decodeOutput(event.data, body.output_encoding)));
        } else if (event.type === "result" && event.result) {
          finish({ kind: "result", data: event.result });
        } else if (event.type === "error") {
          finish({ kind: "failure", failure: streamFailure(event) });
        }
      };
      ws.onclose = (event) => {
        if (!opened) finish({ kind: "unavailable" });
        else finish({ kind: "failure", failure: {
          code: "CONNECTION_FAILED", message: `The stream ended before the result (close code ${event.code}).` } });
      };
    });
  }

  function showLiveInput(show) {
    els.liveRow.hidden = !show;
    els.liveInput.value = "";
    if (show) els.liveInput.focus();
  }

  function sendLine() {
    const ws = state.stream;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: "stdin", data: `${els.liveInput.value}\n` }));
    els.liveInput.value = "";
  }

  function endInput() {
    const ws = state.stream;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: "eof" }));
    state.stream = null;  // nothing more may be sent
    showLiveInput(false);
  }

  function describeRuntime(runtime) {
    const parts = [runtime.compiled ? "compiled" : "interpreted"];
    if (root.StockadeEditorKit && !root.StockadeEditorKit.hasMode(runtime)) parts.push("plain text");
    return parts.join(" · ");
  }

  function selectLanguage(language, loadExample) {
    els.language.value = language;
    const runtime = currentRuntime();
    if (!runtime) return;
    editor.setLanguage(runtime);
    if (loadExample) editor.setValue(runtime.hello || "");
    els.runtimeInfo.textContent = describeRuntime(runtime);
    storage.set(STORAGE_KEY_LANGUAGE, runtime.language);
  }

  function fillLanguages(runtimes) {
    const sorted = [...runtimes].sort((a, b) => String(a.name || a.language).localeCompare(String(b.name || b.language)));
    els.language.replaceChildren();
    for (const runtime of sorted) {
      const option = document.createElement("option");
      option.value = runtime.language;
      const label = runtime.name || runtime.language;
      if (runtime.available === false) {
        option.textContent = `${label} (not installed)`;
        option.disabled = true;
      } else {
        option.textContent = runtime.version ? `${label} — ${runtime.version}` : label;
      }
      els.language.appendChild(option);
    }
  }

  // The run stage's limits: those the form's fields set (GET /v1/runtimes: limits.run).
  function applyLimitHints(limits) {
    const run = (limits && limits.run) || {};
    const defaults = run.default || {};
    const maximum = run.maximum || {};
    for (const input of els.limits) {
      const key = input.dataset.limit;
      if (typeof defaults[key] === "number") input.placeholder = `${defaults[key]}`;
      if (typeof maximum[key] === "number") {
        input.max = String(maximum[key]);
        input.title = `Default ${defaults[key] ?? "?"}, at most ${maximum[key]}`;
      }
    }
  }

  async function loadRuntimes() {
    let reply;
    try {
      reply = await callApi("v1/runtimes", { method: "GET", headers: headers(false) });
    } catch (err) {
      renderFailure({ code: "CONNECTION_FAILED", message: `Could not load the language list (${err.message}).` });
      return;
    }
    if (!reply.ok || !Array.isArray(reply.data.runtimes)) {
      const placeholder = document.createElement("option");
      placeholder.textContent = "Languages unavailable";
      els.language.replaceChildren(placeholder);
      renderFailure(apiFailure(reply));
      return;
    }
    state.runtimes = reply.data.runtimes.filter((r) => r && typeof r.language === "string");
    state.loaded = true;
    fillLanguages(state.runtimes);
    applyLimitHints(reply.data.limits);
    const chosen = pickLanguage(state.runtimes, storage.get(STORAGE_KEY_LANGUAGE));
    els.language.disabled = false;
    if (chosen) {
      selectLanguage(chosen, true);
      clearError();
      setVerdict("idle", "ready", "");
    } else {
      renderFailure({ code: "NO_LANGUAGES", message: "The server has no installed language toolchain." });
      state.loaded = false;
    }
    setRunning(false);
  }

  // ------------------------------------------------------------------------------------ wiring

  const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");
  els.shortcut.textContent = isMac ? "⌘ ↵" : "Ctrl ↵";
  els.run.title = `Run (${isMac ? "Cmd" : "Ctrl"}+Enter)`;

  els.apiKey.value = storage.get(STORAGE_KEY_API);
  els.apiKey.addEventListener("input", () => storage.set(STORAGE_KEY_API, els.apiKey.value.trim()));
  els.apiKey.addEventListener("change", () => { if (!state.loaded) loadRuntimes(); });

  els.language.addEventListener("change", () => selectLanguage(els.language.value, true));
  els.run.addEventListener("click", () => run());
  els.sendInput.addEventListener("click", () => sendLine());
  els.endInput.addEventListener("click", () => endInput());
  els.liveInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !(event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      sendLine();
    }
  });

  // Capture phase, so the editor's own Mod-Enter binding never sees it.
  root.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.altKey) {
      event.preventDefault();
      event.stopPropagation();
      run();
    }
  }, true);

  loadRuntimes();
})(typeof window !== "undefined" ? window : globalThis);
