"""A full disk (issue 28 §2): the node refuses to run what it could not record, with a typed 503, and
comes back by itself once space is freed; the CLI and `serve` on a full disk say so in one line. On a
real 16 MiB tmpfs the test mounts; the server's data dir lives on it (its log does not)."""

from __future__ import annotations

import errno
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.helpers import HELLO, executions, report, verify, wait_until
from tests.service.live import cli, live_server, metric, start_server

SIZE_MB = 16


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def fill(disk: Path) -> Path:
    """Write a file until the filesystem is full (ENOSPC); returns it."""
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return filler


def readyz(url: str) -> tuple[int, dict[str, bool]]:
    r = httpx.get(f"{url}/readyz", timeout=10)
    return r.status_code, r.json()["checks"]


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


def test_full_disk_refuses_then_recovers_by_itself(small_disk: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (small_disk / "data").mkdir(mode=0o700)
    data_dir.symlink_to(small_disk / "data")  # the log, beside data_dir, stays off the small disk
    with live_server("fault-disk", uid_base=69200, data_dir=data_dir, slots=1) as s:
        assert httpx.post(f"{s.url}/v1/execute", json=HELLO, timeout=60).status_code == 200
        filler = fill(small_disk)
        wait_until("readiness to see the full disk", lambda: readyz(s.url)[1]["audit"] is False)
        assert readyz(s.url)[0] == 503

        answers = [httpx.post(f"{s.url}/v1/execute", json=HELLO, timeout=60) for _ in range(20)]
        for r in answers:
            assert r.status_code == 503 and r.json()["error"] == "STORAGE_UNAVAILABLE", r.text
            assert int(r.headers["Retry-After"]) > 0
        text = httpx.get(f"{s.url}/metrics", timeout=10).text
        assert metric(text, "stockade_rejections_total", reason="storage_unavailable") == 20
        assert metric(text, "stockade_executions_total") == 1  # nothing ran while full

        filler.unlink()
        t_freed = time.monotonic()
        # No execution is sent: the node probes its storage by itself.
        wait_until("readiness back once space is freed", lambda: readyz(s.url)[0] == 200, timeout=30)
        recovered_s = time.monotonic() - t_freed
        r = httpx.post(f"{s.url}/v1/execute", json=HELLO, timeout=60)
        assert r.status_code == 200 and r.json()["stdout"] == "hello\n", r.text
    verify(data_dir)
    recs = executions(data_dir)
    assert [x["data"]["verdict"] for x in recs] == ["ok", "ok"]  # every run recorded, no refused one
    assert "Traceback" not in s.log(), s.log()[-3000:]
    report("full_disk", {"disk_mb": SIZE_MB, "refused_while_full": f"{len(answers)}/{len(answers)}",
                         "ready_again_after_freeing_s": round(recovered_s, 2)})  # fmt: skip


def test_cli_and_serve_on_a_full_disk_say_so_in_one_line(small_disk: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (small_disk / "data").mkdir(mode=0o700)
    data_dir.symlink_to(small_disk / "data")  # serve's log, beside data_dir, stays off the small disk
    cli("tenants", "create", "acme", data_dir=data_dir)
    filler = fill(small_disk)

    created = cli("tenants", "create", "beta", data_dir=data_dir, check=False)
    assert created.returncode == 1 and one_line(created.stderr), created.stderr
    assert "full" in created.stderr or "I/O" in created.stderr, created.stderr

    server = start_server("fault-disk-start", uid_base=69250, data_dir=data_dir, wait=False)
    rc = server.proc.wait(60)
    server.stopped = True
    log = server.log()
    assert rc == 2, log  # serve's "cannot start"
    assert one_line(log) and "cannot start" in log and "MiB free" in log, log

    filler.unlink()
    cli("tenants", "create", "beta", data_dir=data_dir)
    assert [t["id"] for t in json.loads(cli("tenants", "list", data_dir=data_dir).stdout)] == ["acme", "beta"]
