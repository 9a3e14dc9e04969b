"""Schema of a language definition (one TOML file per language).

Every model forbids unknown keys so that a typo in a definition fails at load time
instead of being silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[a-z0-9][a-z0-9_+-]*$"
# Aliases may also contain dots and "#" (e.g. "lua5.4", "c#").
ALIAS_PATTERN = r"^[a-z0-9][a-z0-9_.+#-]*$"
EXT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_+-]*(\.[A-Za-z0-9_+-]+)*$"

# Placeholders understood inside command elements; see registry.expand_command.
PLACEHOLDERS = frozenset({"entry", "stem", "sources", "main"})
# What a `glob` toolchain rule's match gives its vars: the path up to the first component with a `*`.
PREFIX = "prefix"
# Rules that find the run stage's `{main}` among the compiled files (runtimes.entry_points).
MainFinder = Literal["jvm-class"]
# Rules that move a source to the file name its declaration requires (runtimes.source_names).
SourceNameRule = Literal["java-public-class"]
_T = TypeVar("_T")
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

LanguageId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Alias = Annotated[str, StringConstraints(pattern=ALIAS_PATTERN)]
Extension = Annotated[str, StringConstraints(pattern=EXT_PATTERN)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_placeholders(argv: list[str], known: frozenset[str] | None = None) -> list[str]:
    """`known` None: any name (a language's [vars] are checked by Language, which knows them)."""
    for element in argv:
        for name in _PLACEHOLDER_RE.findall(element):
            if known is not None and name not in known:
                raise ValueError(f"unknown placeholder {{{name}}} in {element!r} (known: {sorted(known)})")
        if "{sources}" in element and element != "{sources}":
            raise ValueError(f"{{sources}} must be a whole command element, got {element!r}")
    return argv


def placeholders_in(texts: Iterable[str]) -> set[str]:
    return {name for text in texts for name in _PLACEHOLDER_RE.findall(text)}


class Command(_Strict):
    """One stage's argv; user arguments are appended to the run stage by the engine."""

    command: list[NonEmpty] = Field(min_length=1)

    @field_validator("command")
    @classmethod
    def _placeholders(cls, value: list[str]) -> list[str]:
        return _check_placeholders(value)


class CompileCommand(Command):
    """The compile stage; `source_name` names the rule that places a source under the name its
    declaration requires (runtimes.source_names). `options`: the compiler options a caller may add,
    each a regular expression one whole option must match (they go just before the sources)."""

    source_name: SourceNameRule | None = None
    options: list[NonEmpty] = Field(default_factory=list)

    @field_validator("options")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"{pattern!r} is not a regular expression: {e}") from None
        return value

    def refused_option(self, option: str) -> str | None:
        """Why a caller's compiler option is refused (None: it is allowed)."""
        if not any(re.fullmatch(p, option) for p in self.options):
            return f"{option!r} is not among the allowed compiler options"
        return None


class RunCommand(Command):
    """The run stage; `main` names the rule that finds `{main}` after compiling."""

    main: MainFinder | None = None

    @model_validator(mode="after")
    def _main_rule(self) -> RunCommand:
        uses_main = any("{main}" in element for element in self.command)
        if uses_main != (self.main is not None):
            raise ValueError("{main} in the command and a `main` rule go together")
        return self


class VersionProbe(_Strict):
    """Run on the host (trusted) to detect the toolchain; stdout+stderr are searched."""

    command: list[NonEmpty] = Field(min_length=1)
    pattern: NonEmpty

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        if compiled.groups < 1:
            raise ValueError("pattern needs a capture group for the version")
        return value


class LanguageFloors(_Strict):
    """Floors for one stage: the engine uses max(requested, floor). Unset means no floor. (Not the limits a
    caller sets, which are the engine's StageLimits: what this language needs whatever was asked.)"""

    memory_mb: int | None = Field(default=None, gt=0)
    processes: int | None = Field(default=None, gt=0)
    open_files: int | None = Field(default=None, gt=0)
    stack_mb: int | None = Field(default=None, gt=0)
    cpu_ms_extra: int | None = Field(default=None, ge=0)
    # CPU bandwidth in cores, for runtimes whose start-up runs JIT and GC threads side by side; the
    # stage's CPU time limit still bounds the total. Capped at the host's cores.
    cpu_cores: float | None = Field(default=None, gt=0, le=64)


class SandboxExtras(_Strict):
    # Host paths bound read-only at the same place in the box (configs outside /usr).
    ro_paths: list[str] = Field(default_factory=list)

    @field_validator("ro_paths")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        return _absolute_paths(value)


def _absolute_paths(value: list[str]) -> list[str]:
    for path in value:
        if not path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"ro_paths entries must be absolute without '..': {path!r}")
    return value


_GLOB_CHARS = frozenset("*?[")


class ToolchainDef(_Strict):
    """One toolchain of a language (`[[toolchains]]`), or with `glob` every one that rule finds on the host.

    Its `vars` give the language's `[vars]` their values for this toolchain: `cc = "gcc-11"`, or with a
    glob `jdk = "{prefix}"`, the matched path up to the first component with a wildcard. `version`, `env`
    and `ro_paths` may use the same names. Only what is found and answers its version command is
    available: a declared toolchain is never assumed."""

    # What the listing calls it, above all while it is missing ("gcc-11"); default: its first var's value.
    name: NonEmpty | None = None
    glob: NonEmpty | None = None
    vars: dict[str, str] = Field(default_factory=dict)
    packages: list[NonEmpty] = Field(default_factory=list)  # Debian packages, beyond the language's
    # `stockade toolchains install` links the host directories this glob matches (builds the box cannot
    # see, such as pyenv's under /root) into TOOLCHAINS_DIR/<language>/<dir name>, where `glob` finds them.
    import_from: NonEmpty | None = None
    # A requirement pip installs into TOOLCHAINS_DIR/<language>/<name> (a binary shipped in a wheel).
    pypi: NonEmpty | None = None
    version: VersionProbe | None = None  # default: the language's [version]
    env: dict[str, str] = Field(default_factory=dict)
    ro_paths: list[str] = Field(default_factory=list)
    # Installed only when asked for by name (`toolchains install LANG --optional`), not by `--all`.
    optional: bool = False

    @field_validator("glob", "import_from")
    @classmethod
    def _glob(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.split("/")
        if not value.startswith("/") or ".." in parts or "**" in value:
            raise ValueError(f"must be an absolute path pattern without '..' or '**': {value!r}")
        if not any(_GLOB_CHARS & set(part) for part in parts):
            raise ValueError(f"has no wildcard: {value!r}")
        return value

    @field_validator("ro_paths")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        return _absolute_paths(value)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return _env_names(value)

    @model_validator(mode="after")
    def _consistent(self) -> ToolchainDef:
        if self.import_from is not None and self.glob is None:
            raise ValueError("import_from needs a glob that finds what it imports")
        if self.pypi is not None and self.name is None:
            raise ValueError("pypi needs a name: the directory it is installed into")
        if self.name is not None and ("/" in self.name or self.name in {".", ".."}):
            raise ValueError(f"name must not contain '/': {self.name!r}")
        if self.glob is None and PREFIX in placeholders_in([*self.vars.values(), *self.env.values()]):
            raise ValueError("{prefix} is the match of a glob: this toolchain has none")
        return self


def _env_names(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"invalid environment variable name {key!r}")
    return value


class MissingLanguage(_Strict):
    """A language users send that no registry Stockade installs from provides (runtimes/missing.toml)."""

    id: LanguageId
    name: NonEmpty
    aliases: list[Alias] = Field(default_factory=list)
    reason: NonEmpty

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


class Language(_Strict):
    id: LanguageId
    name: NonEmpty
    aliases: list[Alias] = Field(default_factory=list)
    extensions: list[Extension] = Field(min_length=1)
    # Part of a program but never handed to the compiler as a unit of its own (C headers).
    header_extensions: list[Extension] = Field(default_factory=list)
    # When several languages share an extension, by_extension() prefers the one that claims it:
    # true claims all of `extensions`, false none, a list just those. At most one language may
    # claim an extension (checked by the registry).
    default_for_extension: bool | list[Extension] = True
    source_file: NonEmpty
    # Debian packages every toolchain of the language needs; may be empty when its toolchains say how they
    # are installed (their own packages, a pyenv build to link, a PyPI wheel).
    packages: list[NonEmpty] = Field(default_factory=list)
    hello: NonEmpty
    version: VersionProbe
    compile: CompileCommand | None = None
    run: RunCommand
    limits: LanguageFloors = Field(default_factory=LanguageFloors)
    compile_limits: LanguageFloors = Field(default_factory=LanguageFloors)
    env: dict[str, str] = Field(default_factory=dict)
    sandbox: SandboxExtras = Field(default_factory=SandboxExtras)
    # Placeholders of the commands and the version probe whose value depends on the toolchain, with the
    # value of the one toolchain a language without [[toolchains]] has.
    vars: dict[str, str] = Field(default_factory=dict)
    toolchains: list[ToolchainDef] = Field(default_factory=list)
    # Judge0 CE's language ids this language answers to on the Judge0-compatible API (docs/compat.md).
    judge0_ids: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)

    @field_validator("source_file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "/" in value or value in {".", ".."}:
            raise ValueError(f"source_file must be a plain file name, got {value!r}")
        return value

    @field_validator("aliases", "extensions", "packages", "judge0_ids")
    @classmethod
    def _unique(cls, value: list[_T]) -> list[_T]:
        if len(set(value)) != len(value):
            raise ValueError("entries must be unique")
        return value

    @field_validator("default_for_extension")
    @classmethod
    def _claimed_are_own(cls, value: bool | list[str], info: ValidationInfo) -> bool | list[str]:
        # `extensions` is declared earlier, so it is validated (or missing) by now.
        if isinstance(value, list):
            stray = [e for e in value if e not in info.data.get("extensions", [])]
            if stray:
                raise ValueError(f"{stray} not in extensions")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return _env_names(value)

    @field_validator("vars")
    @classmethod
    def _var_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", key) or key in PLACEHOLDERS or key == PREFIX:
                raise ValueError(f"invalid or reserved var name {key!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Language:
        if self.id in self.aliases:
            raise ValueError("aliases must not repeat the id")
        if self.run.main is not None and self.compile is None:
            raise ValueError("run.main finds the entry among compiled files: it needs a compile stage")
        if self.compile is not None and any("{main}" in element for element in self.compile.command):
            raise ValueError("{main} is known only after compiling: the compile command cannot use it")
        self._check_vars()
        if not self.packages and not any(t.packages or t.pypi or t.import_from for t in self.toolchains):
            raise ValueError("packages: nothing installs this language (no package, pypi or import_from)")
        return self

    def _check_vars(self) -> None:
        known = frozenset(self.vars)
        commands = [("run.command", self.run.command)]
        if self.compile is not None:
            commands.append(("compile.command", self.compile.command))
        for where, argv in commands:
            try:
                _check_placeholders(argv, PLACEHOLDERS | known)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        # Version commands and env values are other programs' text too (dpkg-query's `${Version}`): in
        # them only [vars] names (and a glob's {prefix}) are replaced, anything else is left as it is.
        for i, toolchain in enumerate(self.toolchains):
            if stray := set(toolchain.vars) - known:
                raise ValueError(f"toolchains[{i}]: vars {sorted(stray)} are not in [vars]")

    def is_default_for(self, ext: str) -> bool:
        if isinstance(self.default_for_extension, bool):
            return self.default_for_extension and ext in self.extensions
        return ext in self.default_for_extension

    @property
    def compiled(self) -> bool:
        return self.compile is not None

    @property
    def names(self) -> tuple[str, ...]:
        """The id followed by the aliases: the names this language answers to."""
        return (self.id, *self.aliases)


@dataclass(frozen=True)
class Toolchain:
    """Result of probing the host for one toolchain of a language, with what running on it takes."""

    available: bool
    version: str | None
    detail: str
    name: str = ""  # which toolchain: "gcc-11", "/usr/lib/jvm/temurin-25-jdk-amd64"
    vars: Mapping[str, str] = field(default_factory=dict)  # the language's [vars], for this toolchain
    env: Mapping[str, str] = field(default_factory=dict)  # on top of the language's [env]
    ro_paths: tuple[str, ...] = ()  # on top of the language's [sandbox] ro_paths
    optional: bool = False  # installed only when asked for by name
