"""Execute a program: validate, pick the toolchain, compile in one box, run in a fresh one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from stockade.engine import outputs
from stockade.engine.errors import (
    InvalidRequest,
    PayloadTooLarge,
    ToolchainMissing,
    UnknownLanguage,
    VersionUnavailable,
)
from stockade.engine.limits import LimitPolicy
from stockade.engine.model import (
    ExecutionRequest,
    ExecutionResult,
    SourceFile,
    StageLimits,
    Verdict,
    verdict_of_compile,
    verdict_of_run,
)
from stockade.runtimes.entry_points import find_main
from stockade.runtimes.model import Language, Toolchain
from stockade.runtimes.registry import Registry, expand_command
from stockade.runtimes.registry import UnknownLanguage as RegistryUnknownLanguage
from stockade.runtimes.registry import VersionUnavailable as RegistryVersionUnavailable
from stockade.runtimes.source_names import renames as source_renames
from stockade.sandbox import BoxResult, BoxSpec, InputFile, LiveIO, Sandbox, Status
from stockade.sandbox.netpolicy import NetworkPolicy

log = logging.getLogger("stockade.engine")

MAX_FILES = 64
MAX_PATH = 512
MAX_NAME = 255
MAX_DEPTH = 8
MAX_SOURCE_BYTES = 4 * 1024 * 1024
MAX_STDIN_BYTES = 8 * 1024 * 1024
MAX_ARGS = 64
MAX_ARG_BYTES = 4096


def check_file_name(name: str) -> str:
    """Relative, normalised, printable: no absolute paths, '..', NUL, backslashes or control bytes."""
    if not name or len(name.encode()) > MAX_PATH:
        raise InvalidRequest(f"file name must be 1..{MAX_PATH} bytes: {name[:64]!r}")
    parts = name.split("/")
    if name.startswith("/") or len(parts) > MAX_DEPTH:
        raise InvalidRequest(f"file name must be a relative path at most {MAX_DEPTH} deep: {name[:64]!r}")
    if parts[0].startswith(("-", "@")):
        # Names land in compiler and interpreter argv: `-o…`, `-fplugin=…` or `@file` would be options.
        raise InvalidRequest(f"file name may not start with '-' or '@': {name[:64]!r}")
    for part in parts:
        if part in ("", ".", "..") or len(part.encode()) > MAX_NAME:
            raise InvalidRequest(f"file name has an empty, '.', '..' or over-long part: {name[:64]!r}")
        if any(ord(c) < 32 or c in "\\\x7f" for c in part):
            raise InvalidRequest(f"file name contains a control character or backslash: {name[:64]!r}")
    return name


@dataclass(frozen=True)
class Artifact:
    """What a run box starts from: the compile box's regular files (or the sources), their names for
    the run command, and the class/module that has `main` where the language needs one named."""

    files: list[InputFile]
    names: list[str]
    main: str | None


@dataclass(frozen=True)
class Plan:
    """A request that passed every check, with its language, toolchain and named files."""

    request: ExecutionRequest
    language: Language
    toolchain: Toolchain
    files: list[SourceFile]
    entry: str
    # What the engine did to the sources before compiling (a file moved to the name its declaration
    # requires), put at the top of the compile output.
    notes: tuple[str, ...] = ()
    # The limits its boxes get, per stage, as records keep them (LimitPolicy.effective).
    limits: dict[str, dict[str, int] | None] = field(default_factory=dict)


Compiled = Callable[[BoxResult | None], Awaitable[None]]


class Engine:
    def __init__(self, sandbox: Sandbox, registry: Registry, policy: LimitPolicy | None = None) -> None:
        self.sandbox = sandbox
        self.registry = registry
        self.policy = policy or LimitPolicy()

    async def detect(self) -> dict[str, Toolchain]:
        return await self.registry.detect_all()

    def language(self, name: str) -> Language:
        try:
            return self.registry.get(name)
        except RegistryUnknownLanguage as e:
            why = f": {e.missing.name} has no toolchain here ({e.missing.reason})" if e.missing else ""
            raise UnknownLanguage(f"unknown language {name!r}{why}") from None

    async def toolchain(self, lang: Language, version: str | None) -> Toolchain:
        """The newest available toolchain whose version matches `version` (runtimes.versions)."""
        try:
            return await self.registry.resolve(lang, version)
        except RegistryVersionUnavailable as e:
            if e.requested is None:
                raise ToolchainMissing(e.message) from None
            raise VersionUnavailable(e.message, e.available) from None

    def _files(self, req: ExecutionRequest, lang: Language) -> tuple[list[SourceFile], str]:
        files = [SourceFile(f.name or lang.source_file, f.content) for f in req.files]
        if not files:
            raise InvalidRequest("no source: give code or at least one file")
        if len(files) > MAX_FILES:
            raise InvalidRequest(f"at most {MAX_FILES} files")
        names = [check_file_name(f.name) for f in files]
        if len(set(names)) != len(names):
            raise InvalidRequest("file names must be unique")
        # `a` and `a/b.py` cannot both exist in one tree.
        dirs = {name.rsplit("/", depth)[0] for name in names for depth in range(1, name.count("/") + 1)}
        both = sorted(dirs.intersection(names))
        if both:
            raise InvalidRequest(f"{both[0][:64]!r} is both a file and a directory")
        if sum(len(f.content) for f in files) > MAX_SOURCE_BYTES:
            raise PayloadTooLarge(f"source files exceed {MAX_SOURCE_BYTES} bytes")
        if req.entry is not None:
            entry = check_file_name(req.entry)
        elif len(files) == 1:
            entry = names[0]
        else:
            entry = lang.source_file
        if entry not in names:
            raise InvalidRequest(f"entry {entry!r} is not one of the files")
        return files, entry

    def _check(self, req: ExecutionRequest) -> None:
        if len(req.stdin) > MAX_STDIN_BYTES:
            raise PayloadTooLarge(f"stdin exceeds {MAX_STDIN_BYTES} bytes")
        try:
            sizes = [len(a.encode()) for a in req.args]
        except UnicodeEncodeError:
            raise InvalidRequest("args must be valid Unicode (no lone surrogates)") from None
        if len(req.args) > MAX_ARGS or any(n > MAX_ARG_BYTES for n in sizes) or any("\0" in a for a in req.args):
            raise InvalidRequest(f"at most {MAX_ARGS} args of at most {MAX_ARG_BYTES} bytes, without NUL")
        if len(req.compile_options) > MAX_ARGS or any(len(o) > MAX_ARG_BYTES or "\0" in o for o in req.compile_options):
            raise InvalidRequest(f"at most {MAX_ARGS} compile_options of at most {MAX_ARG_BYTES} bytes, without NUL")
        self.policy.run.check(req.limits, "run")
        self.policy.compile.check(req.compile_limits, "compile")
        try:
            outputs.check_patterns(req.collect)
        except outputs.BadPattern as e:
            raise InvalidRequest(str(e)) from None
        box_bytes = sum(len(f.content) for f in req.box_files or ())
        if box_bytes > self.policy.run.tmpfs_mb * 1024 * 1024 // 2:  # the run's own files need room too
            raise PayloadTooLarge(f"workspace files of {box_bytes} bytes do not fit the run box")

    async def prepare(self, req: ExecutionRequest) -> Plan:
        """Every check that can refuse the request, toolchain included, before any box is built."""
        lang = self.language(req.language)
        self._check(req)
        if req.compile_options:
            if lang.compile is None:
                raise InvalidRequest(f"compile_options: {lang.name} has no compile step")
            for option in req.compile_options:
                if why := lang.compile.refused_option(option):
                    raise InvalidRequest(f"compile_options: {why} of {lang.name} (docs/languages.md)")
        files, entry = self._files(req, lang)
        tc = await self.toolchain(lang, req.version)
        moves, notes = source_renames(lang, [(f.name, f.content) for f in files])
        if moves:
            files = [SourceFile(moves.get(f.name, f.name), f.content) for f in files]
            entry = moves.get(entry, entry)
        return Plan(req, lang, tc, files, entry, tuple(notes), self.policy.effective(req, lang))

    async def execute(self, req: ExecutionRequest) -> ExecutionResult:
        return await self.run(await self.prepare(req))

    async def run(self, plan: Plan, live: LiveIO | None = None, on_compiled: Compiled | None = None) -> ExecutionResult:
        """Compile (never live: its output is in the result), then run; with `live`, the run stage's
        stdio is live (sandbox LiveIO: streaming and interactive stdin). `on_compiled` is awaited with
        the compile box's result (None: no compile step) before the run stage, or the end."""
        req, lang = plan.request, plan.language
        result = ExecutionResult(status=Verdict.INTERNAL_ERROR, language=lang.id, version=plan.toolchain.version)
        result.compile, stop, artifact = await self.compile_stage(plan)
        if on_compiled is not None:
            await on_compiled(result.compile)
        if stop is not None:
            result.status = stop
            return result
        # A workspace's files go into the run box beside the program's own (outputs.py: which win).
        copied, shadowed = outputs.seed(req.box_files or (), artifact.names)
        wanted = bool(req.collect) or req.box_files is not None
        ran = await self.run_stage(
            plan,
            artifact,
            stdin=req.stdin,
            args=req.args,
            limits=req.limits,
            extra_files=copied,
            collect=wanted,
            live=live,
            network=req.network,
            stderr_to_stdout=req.stderr_to_stdout,
        )
        result.run = ran
        result.status = verdict_of_run(ran.status)
        if wanted and ran.status is not Status.INTERNAL_ERROR:  # no read-out: a workspace stays as it was
            keep = shadowed if req.box_files is not None else None
            result.outputs = outputs.after_run(ran.files, ran.files_skipped, artifact.files, req.collect, keep)
        return result

    async def compile_stage(self, plan: Plan) -> tuple[BoxResult | None, Verdict | None, Artifact]:
        """(the compile box's result, the verdict that stops here or None, what the run box starts from).
        A language without a compile step starts from its sources."""
        lang, req, tc = plan.language, plan.request, plan.toolchain
        names = [f.name for f in plan.files]
        sources = Artifact([InputFile(f.name, f.content) for f in plan.files], names, None)
        if lang.compile is None:
            return None, None, sources
        values = {**lang.vars, **tc.vars}  # the toolchain's: which compiler, which JDK
        # A workspace's files are there for the compiler too (a header, a module), beside the sources.
        workspace, _ = outputs.seed(req.box_files or (), names)
        box = await self.sandbox.run(
            BoxSpec(
                argv=expand_command(
                    lang.compile.command, plan.entry, names, lang.extensions, vars=values, options=req.compile_options
                ),
                env={**lang.env, **tc.env},
                files=[*sources.files, *workspace],
                limits=self.policy.compile.resolve(req.compile_limits, lang.compile_limits),
                ro_paths=[*lang.sandbox.ro_paths, *tc.ro_paths],
                collect_files=True,
            )
        )
        if plan.notes:
            box.stdout = "".join(f"{note}\n" for note in plan.notes).encode() + box.stdout
        stop = verdict_of_compile(box.status)
        if stop is not None:
            return box, stop, sources
        # The artifact crosses into the run box by the same no-follow copy rules as any output. What the
        # compile box holds of the workspace, unchanged, is not the program's: the run box gets it from the
        # workspace again (engine.run), and it is written back from there.
        given = {f.path: f.content for f in workspace}
        made = [f for f in box.files if given.get(f.path) != f.content]
        main: str | None = None
        if lang.run.main is not None:
            # Bounded, but CPU-bound parsing of the box's output: off the event loop.
            main = await asyncio.to_thread(find_main, lang, [(f.path, f.content) for f in made], plan.entry)
        files = [InputFile(f.path, f.content, f.executable) for f in made]
        return box, None, Artifact(files, [f.path for f in made], main)

    async def run_stage(
        self,
        plan: Plan,
        artifact: Artifact,
        *,
        stdin: bytes,
        args: Sequence[str],
        limits: StageLimits,
        extra_files: Sequence[InputFile] = (),
        collect: bool = False,
        live: LiveIO | None = None,
        network: NetworkPolicy | None = None,
        stderr_to_stdout: bool = False,
    ) -> BoxResult:
        """One run of the plan's program in a fresh box: its artifact (plus `extra_files`), stdin, args
        and run limits (already checked: Engine.prepare checks the plan's own). With `collect`, every
        regular file left in /box is read back (the box's tmpfs bounds them: no cap of its own cuts).
        With `live`, its stdio is live (sandbox LiveIO: judge mode's interactive tests)."""
        lang = plan.language
        tc = plan.toolchain
        values = {**lang.vars, **tc.vars}
        argv = expand_command(
            lang.run.command, plan.entry, artifact.names, lang.extensions, main=artifact.main, vars=values
        )
        box_limits = self.policy.run.resolve(limits, lang.limits)
        return await self.sandbox.run(
            BoxSpec(
                argv=argv + list(args),
                env={**lang.env, **tc.env},
                stdin=stdin,
                files=[*artifact.files, *extra_files],
                limits=box_limits,
                ro_paths=[*lang.sandbox.ro_paths, *tc.ro_paths],
                collect_files=collect,
                collect_max_bytes=box_limits.tmpfs_mb * 1024 * 1024,
                collect_max_files=box_limits.tmpfs_inodes,
                network=network,
                stderr_to_stdout=stderr_to_stdout,
            ),
            live,
        )
