"""Host side of the adversarial suite: canaries, sentinels, listeners and the global "host unaffected" oracle.

Implements section 0 of /work/shared/security/attack-catalogue.md once, for every adversarial test:

* host sentinels (sha256, owner, mode, mtime) unchanged: a root-owned file planted under /etc, /bin/sh,
  /usr/bin/rm, the bubblewrap binary, a sentinel under /usr/share/stockade-sentinel/ (inside /usr, so
  bound read-only into every box) and the sandbox's own box /etc files (CR-06);
* secret canaries (an env var of this process, a root-only file under /root, /etc/stockade-canary) never
  appear in any result field;
* no process runs under a slot uid (one exception, see ZOMBIE_GRACE_S), no `box-*` cgroup is left,
  pids.current of the parent is 0, the box dirs and their tmpfs mounts are gone;
* no new entry in /, /tmp, /var/tmp, /dev/shm, /etc or /root that the box could have made;
* SysV IPC object counts (/proc/sysvipc, what `ipcs` reads), this process's open fds and the mount count
  are back to their baseline;
* listeners on the host (TCP and UDP on every address, an abstract UNIX socket) got zero connections;
* the next benign box (/bin/echo ok) is `ok` with stdout "ok\\n" and clean accounting.

Other engineers run their own sandboxes on this machine at the same time, so this suite uses its own
run dir, cgroup name and uid range, and only counts what its own boxes could have caused (see
`_listing_problems` for the one place where that needs judgement).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stockade.sandbox import BoxResult, BoxSpec, InputFile, Limits, Sandbox, SandboxConfig, Status

PROGRAMS = Path(__file__).resolve().parent / "programs"

# Small limits keep the whole suite fast on two cores; single tests override what they probe. The wall
# limit is generous because other sessions load these two cores too (load average 16 seen): a box that
# must end on CPU, memory or output must not end on the wall clock first. Tests that probe the wall
# limit itself use WALL_LIMITS; when the machine is idle the generous default costs nothing.
DEFAULT_LIMITS = Limits(
    cpu_ms=1000,
    wall_ms=10_000,
    memory_mb=64,
    processes=32,
    output_kb=64,
    file_size_kb=1024,
    tmpfs_mb=16,
    tmpfs_inodes=1024,
    open_files=256,
    stack_mb=8,
)
WALL_LIMITS = {"wall_ms": 2000}

# Every hostile program that aims a write at a host path uses a name containing this marker, so a new
# host file carrying it is proof of an escape even while other engineers' tests create files too.
ESCAPE_MARKER = "stockade-adv-pwn"
LISTED_DIRS = ("/", "/tmp", "/var/tmp", "/dev/shm", "/etc", "/root")
SENTINEL_DIR = Path("/usr/share/stockade-sentinel")
ETC_CANARY = Path("/etc/stockade-canary")


def sandbox_config(name: str, uid_base: int, slots: int) -> SandboxConfig:
    return SandboxConfig(run_dir=Path(f"/run/{name}"), slots=slots, uid_base=uid_base, cgroup_name=name)


# -- compiling the box programs ----------------------------------------------------------------------


class Compiler:
    """Compiles programs/<name>.c with the host gcc once per session; the box gets the ELF bytes."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._cache: dict[tuple[str, tuple[str, ...]], bytes] = {}
        self._lock = threading.Lock()

    @staticmethod
    def flags_of(source: Path) -> list[str]:
        """Extra gcc flags from a `// cflags: ...` line near the top of the source."""
        for line in source.read_text().splitlines()[:15]:
            m = re.match(r"\s*//\s*cflags:(.*)$", line)
            if m:
                return m.group(1).split()
        return []

    def build(self, name: str, *extra: str) -> bytes:
        key = (name, extra)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            src = PROGRAMS / f"{name}.c"
            suffix = hashlib.sha256(" ".join(extra).encode()).hexdigest()[:8]
            out = self.out_dir / f"{name}-{suffix}"
            flags = ["-O1", "-pipe", "-w", "-pthread", f"-I{PROGRAMS}", *self.flags_of(src), *extra]
            cmd = ["gcc", *flags, "-o", str(out), str(src)]
            if "-shared" not in flags:
                cmd += ["-lrt"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"gcc failed for {name}: {proc.stderr}")
            data = out.read_bytes()
            self._cache[key] = data
            return data


# -- canaries and sentinels --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    sha256: str
    uid: int
    gid: int
    mode: int
    mtime_ns: int
    ino: int
    link: tuple[int, int, int, int] | None  # lstat (uid, gid, mode, mtime) when the path is a symlink


def fingerprint(path: Path) -> Fingerprint:
    lst = os.lstat(path)
    st = os.stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    link = (lst.st_uid, lst.st_gid, lst.st_mode, lst.st_mtime_ns) if os.path.islink(path) else None
    return Fingerprint(h.hexdigest(), st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns, st.st_ino, link)


class Secrets:
    """Planted secrets and sentinels; `tokens` are the byte strings that must never leave the host."""

    def __init__(self) -> None:
        tag = secrets.token_hex(8)
        self.env_token = f"STOCKADE-CANARY-ENV-{secrets.token_hex(12)}"
        self.root_canary = Path(f"/root/stockade-canary-{tag}")
        self.root_token = f"STOCKADE-CANARY-ROOT-{secrets.token_hex(12)}"
        self.etc_token = f"STOCKADE-CANARY-ETC-{secrets.token_hex(12)}"
        self.etc_sentinel = Path(f"/etc/stockade-adv-sentinel-{tag}")
        self.usr_sentinel = SENTINEL_DIR / f"adv-sentinel-{tag}"
        self._made_etc_canary = False
        self._made_sentinel_dir = False
        self._old_env: str | None = None
        self.sentinels: dict[Path, Fingerprint] = {}
        self.extra_tokens: list[str] = []

    def plant(self) -> None:
        self._old_env = os.environ.get("STOCKADE_CANARY_ENV")
        os.environ["STOCKADE_CANARY_ENV"] = self.env_token
        _write_root_file(self.root_canary, self.root_token + "\n", 0o600)
        if ETC_CANARY.exists():
            # Another session planted it first: whatever it holds is a secret for us too.
            self.extra_tokens.append(ETC_CANARY.read_text().strip())
        else:
            _write_root_file(ETC_CANARY, self.etc_token + "\n", 0o600)
            self._made_etc_canary = True
        _write_root_file(self.etc_sentinel, f"sentinel {secrets.token_hex(16)}\n", 0o644)
        if not SENTINEL_DIR.exists():
            SENTINEL_DIR.mkdir(mode=0o755)
            self._made_sentinel_dir = True
        _write_root_file(self.usr_sentinel, f"usr sentinel {secrets.token_hex(16)}\n", 0o644)
        paths = [self.etc_sentinel, self.usr_sentinel, Path("/bin/sh"), Path("/usr/bin/rm")]
        bwrap = shutil.which("bwrap")
        if bwrap:
            paths.append(Path(bwrap))
        self.sentinels = {p: fingerprint(p) for p in paths}

    def watch(self, paths: Iterable[Path]) -> None:
        """More host files whose hash/owner/mode/mtime must never change (e.g. the shared box /etc)."""
        self.sentinels.update({p: fingerprint(p) for p in paths})

    def remove(self) -> None:
        if self._old_env is None:
            os.environ.pop("STOCKADE_CANARY_ENV", None)
        else:
            os.environ["STOCKADE_CANARY_ENV"] = self._old_env
        for p in (self.root_canary, self.etc_sentinel, self.usr_sentinel):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        if self._made_etc_canary:
            with contextlib.suppress(OSError):
                if ETC_CANARY.read_text().strip() == self.etc_token:
                    ETC_CANARY.unlink()
        if self._made_sentinel_dir:
            with contextlib.suppress(OSError):
                SENTINEL_DIR.rmdir()

    @property
    def tokens(self) -> list[bytes]:
        toks = [self.env_token, self.root_token, self.etc_token, *self.extra_tokens]
        return [t.encode() for t in toks if t]

    def sentinel_problems(self) -> list[str]:
        out = []
        for p, before in self.sentinels.items():
            try:
                now = fingerprint(p)
            except OSError as e:
                out.append(f"sentinel {p} unreadable: {e}")
                continue
            if now != before:
                out.append(f"sentinel {p} changed: {before} -> {now}")
        if not self.root_canary.exists():
            out.append(f"canary {self.root_canary} vanished")
        return out

    def leak_problems(self, results: Iterable[BoxResult]) -> list[str]:
        out = []
        for r in results:
            fields: list[tuple[str, bytes]] = [("stdout", r.stdout), ("stderr", r.stderr)]
            fields.append(("error", (r.error or "").encode("utf-8", "surrogateescape")))
            for f in r.files:
                fields.append((f"file {f.path!r}", f.content))
                fields.append((f"file name {f.path!r}", f.path.encode("utf-8", "surrogateescape")))
            for s in r.files_skipped:
                fields.append((f"skipped name {s!r}", s.encode("utf-8", "surrogateescape")))
            for where, data in fields:
                for tok in self.tokens:
                    if tok in data:
                        out.append(f"box {r.box_id}: canary {tok[:24]!r}... leaked in {where}")
        return out


def _write_root_file(path: Path, content: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, content.encode())
        os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


# -- network canaries --------------------------------------------------------------------------------


class Listeners:
    """Host listeners a box must never reach: TCP and UDP on every host address, an abstract socket."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {"tcp": 0, "udp": 0, "unix": 0}
        self._stop = threading.Event()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("0.0.0.0", 0))
        self.tcp.listen(16)
        self.tcp_port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.udp_port = self.udp.getsockname()[1]
        self.abstract_name = f"stockade-adv-{secrets.token_hex(6)}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract_name)
        self.unix.listen(16)
        self.host_ip = _host_ip()
        self._threads = [
            threading.Thread(target=self._accept, args=(self.tcp, "tcp"), daemon=True),
            threading.Thread(target=self._accept, args=(self.unix, "unix"), daemon=True),
            threading.Thread(target=self._recv, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _accept(self, sock: socket.socket, kind: str) -> None:
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            self.hits[kind] += 1
            conn.close()

    def _recv(self) -> None:
        self.udp.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self.udp.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            self.hits["udp"] += 1

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        for s in (self.tcp, self.udp, self.unix):
            s.close()


def _host_ip() -> str:
    """A non-loopback address of this host (the box must not reach it either); loopback if none."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing address
        return str(s.getsockname()[0])
    return "127.0.0.1"


# -- host state snapshots ----------------------------------------------------------------------------


def _listing(path: str) -> set[str]:
    try:
        return set(os.listdir(path))
    except OSError:
        return set()


def _sysv_counts() -> dict[str, int]:
    out = {}
    for kind in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{kind}") as f:
            out[kind] = max(0, len(f.read().splitlines()) - 1)
    return out


def _mounts() -> list[tuple[str, str]]:
    """(source, mountpoint) of every mount this process sees."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            rf = right.split()
            out.append((rf[1] if len(rf) > 1 else "", left.split()[4]))
    return out


def _proc_ids(pid: str) -> set[int]:
    """Real, effective, saved and fs uids and gids of a host process (empty if it is gone)."""
    ids: set[int] = set()
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("Uid:", "Gid:")):
                    ids |= {int(x) for x in line.split()[1:]}
    except OSError:
        pass
    return ids


@dataclasses.dataclass(frozen=True)
class HostProc:
    pid: int
    name: str
    state: str  # R, S, D, Z, T, ...
    ppid: int
    age_s: float

    def __str__(self) -> str:
        return f"{self.pid}({self.name},{self.state},ppid={self.ppid},age={self.age_s:.1f}s)"


def _proc_info(pid: str) -> HostProc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    rest = stat[stat.rindex(")") + 2 :].split()
    start = int(rest[19]) / os.sysconf("SC_CLK_TCK")
    return HostProc(int(pid), name, rest[0], int(rest[1]), uptime - start)


def processes_in_uid_range(lo: int, hi: int) -> list[HostProc]:
    """Host processes (zombies included) running under any uid/gid in [lo, hi)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        if any(lo <= i < hi for i in _proc_ids(pid)):
            info = _proc_info(pid)
            if info is not None:
                found.append(info)
    return found


# bubblewrap's pid-namespace init reports the exit status and is then orphaned to host pid 1, which
# reaps it when it gets round to it (about 2 s on this VM). Such a zombie runs no code; the oracle
# accepts it for this long and test_adv_process.py::test_box_leaves_no_zombie_behind pins the issue.
ZOMBIE_GRACE_S = 20.0


@dataclasses.dataclass
class Snapshot:
    listings: dict[str, set[str]]
    sysv: dict[str, int]
    mounts_other: int
    fds: int


class Oracle:
    """One sandbox plus everything needed to judge that the host is unaffected by what ran in it."""

    BENIGN = BoxSpec(argv=["/bin/echo", "ok"], limits=DEFAULT_LIMITS)

    def __init__(self, sandbox: Sandbox, planted: Secrets, listeners: Listeners) -> None:
        self.sandbox = sandbox
        self.secrets = planted
        self.listeners = listeners
        cfg = sandbox.config
        self.uid_lo, self.uid_hi = cfg.uid_base, cfg.uid_base + cfg.slots
        self.run_dir = cfg.run_dir

    def snapshot(self) -> Snapshot:
        return Snapshot(
            listings={d: _listing(d) for d in LISTED_DIRS},
            sysv=_sysv_counts(),
            mounts_other=self._other_mounts(),
            fds=len(os.listdir("/proc/self/fd")),
        )

    def _other_mounts(self) -> int:
        # The boxes and read-only roots of other sandboxes on this machine (other engineers', other test
        # areas') come and go under their own run dirs, and other test areas mount small filesystems in
        # pytest's temp dirs (a full disk); everything else must be stable.
        own = str(self.run_dir) + "/"
        return sum(
            1
            for src, mp in _mounts()
            if src != "stockade-box"
            and not (mp.startswith("/run/stockade") and not mp.startswith(own))
            and not mp.startswith("/tmp/pytest-of-")
        )

    def _own_mounts(self) -> list[str]:
        prefix = str(self.run_dir / "boxes") + "/"  # the boxes' read-only roots live as long as the sandbox
        return [mp for _src, mp in _mounts() if mp.startswith(prefix)]

    def precondition_problems(self) -> list[str]:
        self.sandbox.settle()  # the boxes built ahead at start run as slot uids
        procs = [str(p) for p in processes_in_uid_range(self.uid_lo, self.uid_hi) if p.state != "Z"]
        return [f"uid range {self.uid_lo}-{self.uid_hi - 1} already in use by {procs}"] if procs else []

    def _listing_problems(self, before: Snapshot) -> list[str]:
        """New host entries. One owned by a slot uid, or named with the escape marker, is an escape.
        Anything else new is most likely another engineer's concurrent test: warn, do not fail."""
        out = []
        for d, names in before.listings.items():
            for name in sorted(_listing(d) - names):
                p = os.path.join(d, name)
                try:
                    owner = os.lstat(p).st_uid
                except OSError:
                    continue  # already gone again: someone's transient file
                if self.uid_lo <= owner < self.uid_hi or ESCAPE_MARKER in name:
                    out.append(f"new host entry {p!r} (owner {owner})")
                else:
                    warnings.warn(f"new host entry {p!r} (owner {owner}) during an adversarial test", stacklevel=1)
        return out

    def _cgroup_problems(self) -> list[str]:
        out = []
        # A zombie still holds its pid charge until host init reaps it.
        zombies = sum(1 for p in processes_in_uid_range(self.uid_lo, self.uid_hi) if p.state == "Z")
        assert self.sandbox.cgroups is not None
        for ctrl, parent in self.sandbox.cgroups.parents.items():
            left = sorted(p.name for p in parent.iterdir() if p.name.startswith("box-")) if parent.is_dir() else []
            if left:
                out.append(f"{ctrl}: box cgroups left under {parent}: {left}")
            procs = parent / "cgroup.procs"
            if procs.exists() and procs.read_text().split():
                out.append(f"{ctrl}: processes in {parent}: {procs.read_text().split()}")
            cur = parent / "pids.current"
            if cur.exists() and int(cur.read_text()) > zombies:
                out.append(f"{ctrl}: pids.current of {parent} is {cur.read_text().strip()} ({zombies} zombies)")
        return out

    def host_problems(self, before: Snapshot, results: Iterable[BoxResult]) -> list[str]:
        """Every invariant except the benign follow-up run (callers add that). The boxes built ahead
        are discarded first: they must leave nothing behind either."""
        self.sandbox.settle()
        problems: list[str] = []
        procs = [
            p
            for p in processes_in_uid_range(self.uid_lo, self.uid_hi)
            if not (p.state == "Z" and p.ppid == 1 and p.age_s < ZOMBIE_GRACE_S)
        ]
        if procs:
            problems.append(f"processes survive under slot uids: {[str(p) for p in procs]}")
        problems += self._cgroup_problems()
        boxes = self.run_dir / "boxes"
        left = sorted(os.listdir(boxes)) if boxes.is_dir() else []
        if left:
            problems.append(f"box dirs left in {boxes}: {left}")
        if self._own_mounts():
            problems.append(f"mounts left under {self.run_dir}: {self._own_mounts()}")
        if self._other_mounts() != before.mounts_other:
            problems.append(f"mount count changed: {before.mounts_other} -> {self._other_mounts()}")
        if _sysv_counts() != before.sysv:
            problems.append(f"SysV IPC objects changed: {before.sysv} -> {_sysv_counts()}")
        fds = len(os.listdir("/proc/self/fd"))
        if fds > before.fds:
            problems.append(f"supervisor fds grew: {before.fds} -> {fds}")
        problems += self._listing_problems(before)
        problems += self.secrets.sentinel_problems()
        problems += self.secrets.leak_problems(results)
        hits = {k: v for k, v in self.listeners.hits.items() if v}
        if hits:
            problems.append(f"host listeners were reached: {hits}")
        return problems

    async def benign_problems(self) -> list[str]:
        r = await self.sandbox.run(self.BENIGN)
        if r.status is not Status.OK or r.stdout != b"ok\n" or r.stderr:
            return [f"benign follow-up run broken: {r.status} {r.stdout!r} {r.stderr!r} {r.error}"]
        if r.cpu_time_ms > 500:
            return [f"benign follow-up run has polluted accounting: cpu {r.cpu_time_ms} ms"]
        return []

    async def verify(self, before: Snapshot, results: Iterable[BoxResult]) -> None:
        results = list(results)
        problems = self.host_problems(before, results)
        problems += await self.benign_problems()
        # The benign run itself must leave nothing behind either.
        problems += [f"after benign run: {p}" for p in self.host_problems(before, [])]
        if problems:
            raise AssertionError("host oracle violated:\n  " + "\n  ".join(dict.fromkeys(problems)))


# -- what the tests use ------------------------------------------------------------------------------


def parse_kv(data: bytes) -> dict[str, str]:
    """`label=value` lines printed by the box programs (last one wins)."""
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


class Adversary:
    """Per-test handle: runs hostile programs and remembers every result for the canary grep."""

    def __init__(self, oracle: Oracle, compiler: Compiler) -> None:
        self.oracle = oracle
        self.compiler = compiler
        self.sandbox = oracle.sandbox
        self.secrets = oracle.secrets
        self.listeners = oracle.listeners
        self.results: list[BoxResult] = []

    def limits(self, **over: Any) -> Limits:
        return DEFAULT_LIMITS.with_overrides(**over)

    async def run_spec(self, spec: BoxSpec) -> BoxResult:
        r = await self.sandbox.run(spec)
        self.results.append(r)
        return r

    def c_spec(
        self,
        name: str,
        *args: str,
        extra_files: Iterable[InputFile] = (),
        cflags: Iterable[str] = (),
        stdin: bytes = b"",
        collect: bool = False,
        env: dict[str, str] | None = None,
        collect_max_bytes: int = 4 * 1024 * 1024,
        collect_max_files: int = 4096,
        **limits: Any,
    ) -> BoxSpec:
        """programs/<name>.c compiled on the host, run as ./<name> with args; limits override DEFAULT_LIMITS."""
        elf = self.compiler.build(name, *cflags)
        return BoxSpec(
            argv=[f"./{name}", *args],
            files=[InputFile(name, elf, executable=True), *extra_files],
            stdin=stdin,
            env=env or {},
            limits=self.limits(**limits),
            collect_files=collect,
            collect_max_bytes=collect_max_bytes,
            collect_max_files=collect_max_files,
        )

    async def run_c(self, name: str, *args: str, **kw: Any) -> BoxResult:
        return await self.run_spec(self.c_spec(name, *args, **kw))

    def script_spec(
        self, filename: str, *args: str, stdin: bytes = b"", collect: bool = False, **limits: Any
    ) -> BoxSpec:
        interpreter = {"py": ["/usr/bin/python3", "-I"], "sh": ["/bin/sh"], "pl": ["/usr/bin/perl"]}[
            filename.rsplit(".", 1)[1]
        ]
        return BoxSpec(
            argv=[*interpreter, filename, *args],
            files=[InputFile(filename, (PROGRAMS / filename).read_bytes())],
            stdin=stdin,
            limits=self.limits(**limits),
            collect_files=collect,
        )

    async def run_script(self, filename: str, *args: str, **kw: Any) -> BoxResult:
        return await self.run_spec(self.script_spec(filename, *args, **kw))

    async def gather(self, *specs: BoxSpec) -> list[BoxResult]:
        results = await asyncio.gather(*(self.sandbox.run(s) for s in specs))
        self.results.extend(results)
        return list(results)

    async def check_host(self) -> None:
        """The full oracle, callable in the middle of a test as well (the fixture calls it at the end)."""
        await self.oracle.verify(self._before, self.results)

    _before: Snapshot


def describe(r: BoxResult) -> str:
    return (
        f"status={r.status} exit={r.exit_code} sig={r.signal} tk={r.timeout_kind} cpu={r.cpu_time_ms} "
        f"wall={r.wall_time_ms} mem={r.peak_memory_kb}k oom={r.oom_killed} pids_hit={r.pids_limit_hit} "
        f"err={r.error!r}\nstdout={r.stdout[:2000]!r}\nstderr={r.stderr[:2000]!r}\n"
        f"files={[f.path for f in r.files][:50]} skipped={r.files_skipped[:50]}"
    )
