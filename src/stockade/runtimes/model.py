"""Schema of a language definition (one TOML file per language).

Every model forbids unknown keys so that a typo in a definition fails at load time
instead of being silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
# Rules that find the run stage's `{main}` among the compiled files (runtimes.entry_points).
MainFinder = Literal["jvm-class"]
_T = TypeVar("_T")
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

LanguageId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Alias = Annotated[str, StringConstraints(pattern=ALIAS_PATTERN)]
Extension = Annotated[str, StringConstraints(pattern=EXT_PATTERN)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_placeholders(argv: list[str]) -> list[str]:
    for element in argv:
        for name in _PLACEHOLDER_RE.findall(element):
            if name not in PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {{{name}}} in {element!r} (known: {sorted(PLACEHOLDERS)})")
        if "{sources}" in element and element != "{sources}":
            raise ValueError(f"{{sources}} must be a whole command element, got {element!r}")
    return argv


class Command(_Strict):
    """One stage's argv; user arguments are appended to the run stage by the engine."""

    command: list[NonEmpty] = Field(min_length=1)

    @field_validator("command")
    @classmethod
    def _placeholders(cls, value: list[str]) -> list[str]:
        return _check_placeholders(value)


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
        for path in value:
            if not path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"ro_paths entries must be absolute without '..': {path!r}")
        return value


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
    packages: list[NonEmpty] = Field(min_length=1)
    hello: NonEmpty
    version: VersionProbe
    compile: Command | None = None
    run: RunCommand
    limits: LanguageFloors = Field(default_factory=LanguageFloors)
    compile_limits: LanguageFloors = Field(default_factory=LanguageFloors)
    env: dict[str, str] = Field(default_factory=dict)
    sandbox: SandboxExtras = Field(default_factory=SandboxExtras)
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
        for key in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"invalid environment variable name {key!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Language:
        if self.id in self.aliases:
            raise ValueError("aliases must not repeat the id")
        if self.run.main is not None and self.compile is None:
            raise ValueError("run.main finds the entry among compiled files: it needs a compile stage")
        if self.compile is not None and any("{main}" in element for element in self.compile.command):
            raise ValueError("{main} is known only after compiling: the compile command cannot use it")
        return self

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
    """Result of probing the host for a language's toolchain."""

    available: bool
    version: str | None
    detail: str
