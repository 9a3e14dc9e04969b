#!/usr/bin/env python3
"""Check every language definition against the toolchains installed on this host.

For each language: the hello program, then the conformance fixtures in
tests/conformance/programs/<id>/ (echo, sum, exit3, syntax_error, loop).

Modes:
  bare (default)  compile and run directly on the host in a temp dir with the
                  box's environment (PATH, HOME, LANG, TZ + the TOML's env).
  --box           approximate the real box with bubblewrap: read-only /usr, a
                  minimal /etc plus the TOML's ro_paths, private /tmp, no
                  network, unprivileged uid, compile and run in different
                  boxes with /box files copied between them.  Finds missing
                  ro_paths and caches written outside /box or /tmp.

Usage: verify_languages_bare.py [--box] [--jobs N] [--only ID ...] [--no-fixtures]
Exit status is non-zero if an installed language fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from stockade.runtimes import Language, Registry, expand_command, load_languages  # noqa: E402
from stockade.runtimes.registry import BOX_PATH, probe_toolchain  # noqa: E402

PROGRAMS = ROOT / "tests" / "conformance" / "programs"
FIXTURES = ("echo", "sum", "exit3", "syntax_error", "loop")
COMPILE_TIMEOUT = 180.0
RUN_TIMEOUT = 30.0
LOOP_GRACE = 2.0
ECHO_INPUT = "Hello from stdin: ünïcode 42\n"
# Host /etc entries the box always has (mirrors the sandbox's minimal /etc).
BOX_ETC = (
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/localtime",
)


@dataclass
class Outcome:
    ok: bool
    note: str = ""


@dataclass
class Report:
    language: Language
    version: str | None = None
    missing: str | None = None
    results: dict[str, Outcome] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.missing is None and all(r.ok for r in self.results.values())


@dataclass
class Proc:
    rc: int | None  # None: still running when killed (timeout)
    stdout: str
    stderr: str


def _env(language: Language, home: str) -> dict[str, str]:
    return {"PATH": BOX_PATH, "HOME": home, "LANG": "C.UTF-8", "TZ": "UTC", **language.env}


def _bwrap_prefix(language: Language, box: Path, tmp: Path) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--uid", "65534"]
    argv += ["--gid", "65534", "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        target = os.readlink(f"/{link}") if os.path.islink(f"/{link}") else None
        if target:
            argv += ["--symlink", target, f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            argv += ["--ro-bind", f"/{link}", f"/{link}"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--bind", str(box), "/box", "--bind", str(tmp), "/tmp"]
    for path in (*BOX_ETC, *language.sandbox.ro_paths):
        if os.path.lexists(path):
            argv += ["--ro-bind", path, path]
    argv += ["--chdir", "/box", "--clearenv"]
    for key, value in _env(language, "/box").items():
        argv += ["--setenv", key, value]
    return argv


def run(
    argv: list[str],
    *,
    language: Language,
    cwd: Path,
    tmp: Path | None,
    stdin: str = "",
    timeout: float,
) -> Proc:
    if tmp is not None:
        argv = [*_bwrap_prefix(language, cwd, tmp), "--", *argv]
        env = {"PATH": BOX_PATH}
    else:
        env = _env(language, str(cwd))
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin.encode(), timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = None
    return Proc(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def _tail(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text[-n:]


class Case:
    """One program compiled (if needed) and run in fresh directories."""

    def __init__(self, language: Language, source: str, box_mode: bool) -> None:
        self.language = language
        self.source = source
        self.box_mode = box_mode

    def execute(self, stdin: str, timeout: float) -> tuple[Proc | None, Proc | None]:
        lang = self.language
        with tempfile.TemporaryDirectory(prefix=f"verify-{lang.id}-") as work:
            base = Path(work)
            cbox, rbox = base / "cbox", base / "rbox"
            ctmp, rtmp = base / "ctmp", base / "rtmp"
            for d in (cbox, ctmp, rtmp):
                d.mkdir()
            os.chmod(base, 0o755)
            for d in (cbox, ctmp, rtmp):
                os.chmod(d, 0o777)  # the box runs as an unprivileged uid
            (cbox / lang.source_file).write_text(self.source, encoding="utf-8")
            files = [lang.source_file]
            compiled: Proc | None = None
            if lang.compile is not None:
                argv = expand_command(lang.compile.command, lang.source_file, files, lang.extensions)
                compiled = run(
                    argv,
                    language=lang,
                    cwd=cbox,
                    tmp=ctmp if self.box_mode else None,
                    timeout=COMPILE_TIMEOUT,
                )
                if compiled.rc != 0:
                    return compiled, None
            if self.box_mode:
                _copy_regular_files(cbox, rbox)
                os.chmod(rbox, 0o777)
                run_dir, run_tmp = rbox, rtmp
            else:
                run_dir, run_tmp = cbox, None
            argv = expand_command(lang.run.command, lang.source_file, files, lang.extensions)
            result = run(argv, language=lang, cwd=run_dir, tmp=run_tmp, stdin=stdin, timeout=timeout)
            return compiled, result


def _copy_regular_files(src: Path, dst: Path) -> None:
    dst.mkdir(exist_ok=True)
    for path in src.rglob("*"):
        if path.is_file() and not path.is_symlink():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            os.chmod(target.parent, 0o777)


def _load_exceptions(lang_id: str) -> dict[str, dict[str, object]]:
    path = PROGRAMS / lang_id / "EXCEPTIONS.toml"
    if not path.exists():
        return {}
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _fixture(lang: Language, name: str) -> Path | None:
    directory = PROGRAMS / lang.id
    for ext in lang.extensions:
        path = directory / f"{name}.{ext}"
        if path.exists():
            return path
    return None


def check_language(lang: Language, box_mode: bool, fixtures: bool) -> Report:
    report = Report(lang)
    started = time.monotonic()
    toolchain = asyncio.run(probe_toolchain(lang))
    if not toolchain.available:
        report.missing = toolchain.detail
        return report
    report.version = toolchain.version

    compiled, result = Case(lang, lang.hello, box_mode).execute("", RUN_TIMEOUT)
    report.results["hello"] = _judge_output(compiled, result, "Hello, World!\n")
    if fixtures:
        exceptions = _load_exceptions(lang.id)
        for name in FIXTURES:
            report.results[name] = _check_fixture(lang, name, exceptions.get(name, {}), box_mode)
    report.seconds = time.monotonic() - started
    return report


def _judge_output(compiled: Proc | None, result: Proc | None, expected: str, rc: int = 0) -> Outcome:
    if result is None:
        assert compiled is not None
        return Outcome(False, f"compile rc={compiled.rc}: {_tail(compiled.stderr + compiled.stdout)}")
    if result.rc != rc or result.stdout != expected:
        return Outcome(False, f"rc={result.rc} out={result.stdout[:60]!r} err={_tail(result.stderr + result.stdout)}")
    return Outcome(True)


def _check_fixture(lang: Language, name: str, exception: dict[str, object], box_mode: bool) -> Outcome:
    if exception.get("skip"):
        return Outcome(True, f"skipped: {exception.get('reason', '')}")
    path = _fixture(lang, name)
    if path is None:
        return Outcome(False, "fixture missing")
    case = Case(lang, path.read_text(encoding="utf-8"), box_mode)
    stdin = str(exception.get("stdin", {"echo": ECHO_INPUT, "sum": "2 3\n"}.get(name, "")))
    if name == "echo":
        compiled, result = case.execute(stdin, RUN_TIMEOUT)
        return _judge_output(compiled, result, str(exception.get("expect_stdout", stdin)))
    if name == "sum":
        compiled, result = case.execute(stdin, RUN_TIMEOUT)
        return _judge_output(compiled, result, str(exception.get("expect_stdout", "5\n")))
    if name == "exit3":
        compiled, result = case.execute(stdin, RUN_TIMEOUT)
        return _judge_output(compiled, result, "", rc=3)
    if name == "syntax_error":
        compiled, result = case.execute(stdin, RUN_TIMEOUT)
        if result is None:
            return Outcome(True, "compile failed")
        if result.rc not in (0, None):
            return Outcome(True, f"run rc={result.rc}")
        marker = exception.get("expect_stderr")
        if isinstance(marker, str) and marker in result.stderr:
            return Outcome(True, f"reported on stderr: {exception.get('reason', '')}")
        return Outcome(False, f"accepted: rc={result.rc} out={result.stdout[:60]!r}")
    if name == "loop":
        compiled, result = case.execute(stdin, LOOP_GRACE)
        if result is None:
            assert compiled is not None
            return Outcome(False, f"compile rc={compiled.rc}: {_tail(compiled.stderr)}")
        if result.rc is None:
            return Outcome(True)
        return Outcome(False, f"ended rc={result.rc}: {_tail(result.stderr)}")
    raise AssertionError(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--box", action="store_true", help="run inside a bubblewrap approximation of the box")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--no-fixtures", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="language definitions directory")
    args = parser.parse_args()
    if args.box and shutil.which("bwrap") is None:
        parser.error("--box needs bubblewrap (apt-get install bubblewrap)")

    registry = Registry(load_languages(args.dir))
    languages = [registry.get(name) for name in args.only] if args.only else list(registry.languages)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(check_language, lang, args.box, not args.no_fixtures) for lang in languages]
        reports = []
        for future in futures:
            report = future.result()
            reports.append(report)
            _print_row(report)
            sys.stdout.flush()

    verified = sum(1 for r in reports if r.ok)
    missing = [r.language.id for r in reports if r.missing is not None]
    failed = [r.language.id for r in reports if r.missing is None and not r.ok]
    print(f"\n{verified} verified, {len(failed)} failed, {len(missing)} missing toolchain")
    if failed:
        print("failed: " + " ".join(failed))
    if missing:
        print("missing: " + " ".join(missing))
    return 1 if failed else 0


def _print_row(report: Report) -> None:
    lang = report.language
    if report.missing is not None:
        print(f"{lang.id:<14} MISSING  {report.missing}")
        return
    marks = " ".join(f"{name}:{'ok' if r.ok else 'FAIL'}" for name, r in report.results.items())
    status = "ok     " if report.ok else "FAIL   "
    print(f"{lang.id:<14} {status} {report.version or '?':<12} {report.seconds:5.1f}s  {marks}")
    for name, r in report.results.items():
        if not r.ok or (r.note and r.note.startswith("skipped")):
            print(f"    {name}: {r.note}")


if __name__ == "__main__":
    sys.exit(main())
