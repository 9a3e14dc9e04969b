"""Output, terminals and result plumbing (catalogue section 8): floods on stdout and stderr, the exact
cap boundary, binary and invalid UTF-8 bytes, terminal injection, closed std streams and verdict forging
through exit statuses and self-chosen signals."""

from __future__ import annotations

import json

import pytest
from stockade_adv_harness import describe, parse_kv

from stockade.sandbox import Status

CAP = 64 * 1024


async def test_stdout_flood_is_output_limit_with_the_prefix_kept(adv):
    r = await adv.run_c("out_flood", "stdout")
    assert r.status is Status.OUTPUT_LIMIT and r.stdout_truncated and not r.stderr_truncated, describe(r)
    assert len(r.stdout) == CAP and r.stdout.startswith(b"BEGIN-OUT\ny\ny\n"), describe(r)
    assert r.stderr == b"BEGIN-ERR\n", describe(r)


async def test_stderr_flood_is_output_limit_with_the_prefix_kept(adv):
    r = await adv.run_c("out_flood", "stderr")
    assert r.status is Status.OUTPUT_LIMIT and r.stderr_truncated and not r.stdout_truncated, describe(r)
    assert len(r.stderr) == CAP and r.stderr.startswith(b"BEGIN-ERR\ny\n"), describe(r)
    assert r.stdout == b"BEGIN-OUT\n", describe(r)


async def test_flood_on_both_streams(adv):
    r = await adv.run_c("out_flood", "both")
    assert r.status is Status.OUTPUT_LIMIT and (r.stdout_truncated or r.stderr_truncated), describe(r)
    assert len(r.stdout) <= CAP and len(r.stderr) <= CAP, describe(r)


async def test_output_of_exactly_the_cap_is_ok(adv):
    r = await adv.run_c("out_exact", str(CAP))
    assert r.status is Status.OK and not r.stdout_truncated, describe(r)
    assert r.stdout == b"e" * CAP


async def test_output_one_byte_over_the_cap_is_output_limit(adv):
    r = await adv.run_c("out_exact", str(CAP + 1))
    assert r.status is Status.OUTPUT_LIMIT and r.stdout_truncated, describe(r)
    assert r.stdout == b"e" * CAP


async def test_binary_and_invalid_utf8_output_is_kept_as_bytes(adv):
    r = await adv.run_c("out_binary")
    assert r.status is Status.OK, describe(r)
    everything = bytes(range(256))
    assert r.stdout == r.stderr, describe(r)
    assert r.stdout.startswith(everything) and r.stdout.endswith(everything), describe(r)
    assert b"\x00\x00\x80\xbf\xc0\xaf" in r.stdout and b"\x1b]52;c;" in r.stdout and b"\xff\xfe" in r.stdout
    # The JSON view stays valid UTF-8 (invalid sequences replaced), and the hex view is exact.
    json.dumps(r.to_json(), ensure_ascii=False).encode("utf-8")
    assert bytes.fromhex(r.to_json(text=False)["stdout"]) == r.stdout


async def test_no_terminal_and_tiocsti_is_refused(adv):
    r = await adv.run_c("out_tty")
    assert r.status is Status.OK, describe(r)
    out = parse_kv(r.stdout)
    assert out["isatty_0"] == out["isatty_1"] == out["isatty_2"] == "0", describe(r)
    for key in ("tiocsti_0", "tiocsti_1", "tiocsti_2", "tiocsti_highbits", "tioclinux"):
        assert out[key] == "EPERM", (key, describe(r))
    assert out["tiocsctty"] == "ENOTTY", describe(r)
    for key in ("open_dev_tty", "open_ptmx", "posix_openpt", "open_dev_console"):
        assert out[key] == "ENOENT", (key, describe(r))


async def test_closing_std_streams_early_does_not_confuse_the_verdict(adv):
    r = await adv.run_c("out_close_std")
    assert r.status is Status.OK and r.exit_code == 0, describe(r)
    assert r.stdout == b"before-close\n" and r.wall_time_ms >= 300, describe(r)


async def test_plain_exit_code_is_reported(adv):
    r = await adv.run_c("out_exit_code", "exit", "3")
    assert r.status is Status.RUNTIME_ERROR and r.exit_code == 3 and r.signal is None, describe(r)


@pytest.mark.parametrize(
    ("code", "looks_like"), [(152, "SIGXCPU"), (153, "SIGXFSZ"), (159, "SIGSYS"), (137, "SIGKILL")]
)
async def test_exit_status_above_128_is_not_mistaken_for_a_signal(adv, code, looks_like):
    """OUT-05: `exit(128 + N)` must be reported as that exit status, not as death by signal N (which
    turns exit(152) into a CPU timeout, exit(153) into a file-size limit, exit(159) into a blocked call)."""
    r = await adv.run_c("out_exit_code", "exit", str(code))
    assert r.status is Status.RUNTIME_ERROR, (looks_like, describe(r))
    assert r.exit_code == code and r.signal is None, (looks_like, describe(r))


async def test_self_chosen_signal_is_reported_as_that_signal(adv):
    r = await adv.run_c("out_exit_code", "signal", "10")
    assert r.status is Status.RUNTIME_ERROR and r.signal == 10 and r.exit_code is None, describe(r)


async def test_self_raised_sigxcpu_is_not_a_cpu_timeout(adv):
    """OUT-06: a program that kills itself with SIGXCPU after ~1 ms of CPU did not exceed the CPU limit."""
    r = await adv.run_c("out_exit_code", "signal", "24")
    assert r.cpu_time_ms < 500, describe(r)
    assert r.status is Status.RUNTIME_ERROR and r.signal == 24, describe(r)
