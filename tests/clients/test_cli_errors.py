"""Every CLI error is one line on stderr with a non-zero exit, never a traceback: each subcommand with bad
arguments, bad values, a missing or damaged data dir, and an internal error (which also gets an id and a log)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from stockade.cli import app
from stockade.cli.errors import EXIT_INTERNAL, LOG_ENV, OneLineErrors

STOCKADE = str(Path(sys.executable).with_name("stockade"))


def stockade(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run([STOCKADE, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *, code: int | None = None, log: bool = False) -> str:
    """The error line; the only line on stderr, or with `log` (serve) the last one after the log's."""
    assert proc.returncode != 0, proc.stdout
    if code is not None:
        assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and (log or len(lines) == 1), proc.stderr
    return lines[-1]


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out += leaf_commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


LEAVES = leaf_commands(app)


def test_every_subcommand_is_listed() -> None:
    assert len(LEAVES) >= 14 and ("keys", "create") in LEAVES and ("audit", "verify") in LEAVES


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_an_unknown_option_is_one_line(path: tuple[str, ...]) -> None:
    line = assert_one_line_error(stockade(*path, "--no-such-option"), code=2)
    assert line.startswith(f"stockade {' '.join(path)}: ") and "--no-such-option" in line
    assert line.endswith(f"(see 'stockade {' '.join(path)} --help')")


def test_an_unknown_command_is_one_line() -> None:
    line = assert_one_line_error(stockade("klingon"), code=2)
    assert "klingon" in line


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("errors") / "data"
    subprocess.run([STOCKADE, "tenants", "create", "beta", "--data-dir", str(d)], check=True, capture_output=True)
    return d


def cases(d: Path, tmp: Path) -> list[tuple[list[str], int | None, str]]:
    """(arguments, exit code or None for any non-zero one, a word the line must hold), by command."""
    missing = str(tmp / "no-such-dir")
    dd = ["--data-dir", str(d)]
    return [
        (["toolchains", "install", "klingon"], 2, "klingon"),
        (["toolchains", "install"], 2, "--all"),
        (["toolchains", "install", "--all", "python"], 2, "--all"),
        (["audit", "verify", "--anchor", "foo", *dd], 2, "SEQ:HASH"),
        (["audit", "verify", "--anchor", "0:" + "a" * 64, *dd], 2, "SEQ:HASH"),
        (["audit", "verify", "--public-key", missing, *dd], None, "no-such-dir"),
        (["audit", "export", "--since", "yesterday", *dd], 2, "--since"),
        (["audit", "verify", "--data-dir", missing], 1, "no-such-dir"),
        (["audit", "export", "--data-dir", missing], 1, "no-such-dir"),
        (["tenants", "list", "--data-dir", missing], 1, "no-such-dir"),
        (["tenants", "update", "beta", "--data-dir", missing], 1, "no-such-dir"),
        (["keys", "list", "--data-dir", missing], 1, "no-such-dir"),
        (["keys", "revoke", "0123456789abcdef", "--data-dir", missing], 1, "no-such-dir"),
        (["keys", "create", "acme", "--data-dir", missing], 1, "no-such-dir"),
        (["keys", "create", "acme", *dd], 1, "stockade tenants create acme"),
        (["keys", "revoke", "0123456789abcdef", *dd], 1, "0123456789abcdef"),
        (["tenants", "create", "Not A Slug", *dd], 1, "slug"),
        (["tenants", "create", "beta", *dd], 1, "beta"),
        (["tenants", "create", "gamma", "--rate-per-minute", "many", *dd], 2, "--rate-per-minute"),
        (["tenants", "update", "nobody", "--rate-per-minute", "5", *dd], 1, "nobody"),
        (["run", str(tmp / "absent.py")], 2, "absent.py"),
        (["run", str(tmp / "hello.py"), "--language", "klingon"], 2, "klingon"),
        (["run", str(tmp / "notes.unknownext")], 2, "--language"),
        (["run", str(tmp / "hello.py"), "--cpu-ms", "lots"], 2, "--cpu-ms"),
        (["run", str(tmp / "hello.py"), "--url", "http://127.0.0.1:9", "--json"], 2, ""),
        (["sandbox", "run", "--file", "no-equals-sign", "--", "/bin/true"], 2, "NAME=PATH"),
        (["sandbox", "run", "--file", f"x={missing}", "--", "/bin/true"], 2, "no-such-dir"),
        (["sandbox", "run", "--memory-mb", "0", "--", "/bin/true"], 2, "--memory-mb"),
        (["sandbox", "run"], 2, "COMMAND"),
        (["sandbox", "check", "--json", "extra"], 2, "extra"),
        (["runtimes", "extra"], 2, "extra"),
        (["serve", "--port", "99999"], 2, "--port"),
        (["serve", "--host", "0.0.0.0", "--data-dir", str(tmp / "serve-data")], 2, "API keys"),
    ]


def test_bad_values_and_states_are_one_line(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text("print('hello')\n")
    (tmp_path / "notes.unknownext").write_text("?\n")
    for args, code, word in cases(data_dir, tmp_path):
        proc = stockade(*args, cwd=tmp_path)
        if args[0] == "run" and "--json" in args:  # a refused run is its JSON result, not an error line
            assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr, (args, proc.stderr)
            assert '"status": "failed"' in proc.stdout, args
            continue
        line = assert_one_line_error(proc, code=code, log=args[0] == "serve")
        assert word in line, (args, line)


def test_a_damaged_database_is_one_line(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    (d / "stockade.db").write_text("not a database")
    line = assert_one_line_error(stockade("tenants", "list", "--data-dir", str(d)), code=1)
    assert "stockade.db" in line


def test_an_internal_error_is_one_line_with_an_id_and_a_logged_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "cli.log"
    monkeypatch.setenv(LOG_ENV, str(log))

    @click.command("explode")
    def explode() -> None:
        raise RuntimeError("wires crossed\nsecond line")

    group = OneLineErrors("stockade", commands=[explode])
    with pytest.raises(SystemExit) as exited:
        group.main(["explode"])
    assert exited.value.code == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    m = re.fullmatch(
        r"stockade: internal error ([0-9a-f]{8}): RuntimeError: wires crossed; second line; traceback in (\S+)\n",
        err,
    )
    assert m is not None, err
    assert Path(m.group(2)) == log
    logged = log.read_text()
    assert f"internal error {m.group(1)}" in logged and "Traceback" in logged and "wires crossed" in logged


@pytest.mark.parametrize("args", [["toolchains", "install", "python"], ["runtimes", "--refresh"]], ids=" ".join)
def test_an_invalid_language_definition_is_one_line(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stockade.runtimes import registry

    (tmp_path / "python.toml").write_text('id = "python"\nname = 3\n')
    monkeypatch.setattr(registry, "packaged_languages_dir", lambda: tmp_path)
    with pytest.raises(SystemExit) as exited:
        app.main(args)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"stockade {args[0]}") and "invalid language definition" in err and "python.toml" in err
    assert len(err.splitlines()) == 1
