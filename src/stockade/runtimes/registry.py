"""Loading language definitions, looking them up, and probing the host for their toolchains."""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import versions
from .detection import BOX_PATH, DETECT_TIMEOUT_S, candidates, order, probe_candidate, probe_toolchain
from .model import Language, MissingLanguage, Toolchain

__all__ = ["BOX_PATH", "DETECT_TIMEOUT_S", "probe_toolchain"]  # re-exported: they lived here
_DETECT_CONCURRENCY = 4  # some probes start a JVM or a big runtime; keep the host responsive


class LanguageDefinitionError(ValueError):
    """A language definition file is invalid; the message names the file and the field."""


class UnknownLanguage(LookupError):
    """No definition of that name; `missing` when it is a language Stockade knows it lacks, and why."""

    def __init__(self, name: str, missing: MissingLanguage | None = None) -> None:
        why = f" ({missing.name} has no toolchain here: {missing.reason})" if missing else ""
        super().__init__(f"unknown language: {name!r}{why}")
        self.name, self.missing = name, missing


class VersionUnavailable(LookupError):
    """No available toolchain of `language` matches `requested` (None: none is available at all);
    `available` lists the versions that are, newest first, and `detail` why the default is missing."""

    def __init__(self, language: str, requested: str | None, available: list[str], detail: str) -> None:
        if requested is None:
            message = f"{language}: toolchain not installed ({detail})"
        else:
            listed = ", ".join(available) if available else f"none ({detail})"
            message = f"{language}: no version matches {requested!r}; available: {listed}"
        super().__init__(message)
        self.language, self.requested, self.available, self.detail = language, requested, available, detail
        self.message = message


def packaged_languages_dir() -> Path:
    return Path(str(resources.files("stockade.runtimes") / "languages"))


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def parse_language(path: Path) -> Language:
    """Parse and validate one definition; the id must equal the file stem."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LanguageDefinitionError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LanguageDefinitionError(f"{path}: invalid TOML: {exc}") from exc
    try:
        language = Language.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"field {_format_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise LanguageDefinitionError(f"{path}: {problems}") from exc
    if language.id != path.stem:
        raise LanguageDefinitionError(f"{path}: field id: {language.id!r} must equal the file name stem {path.stem!r}")
    return language


def load_languages(directory: Path | None = None) -> dict[str, Language]:
    """Load every `*.toml` of `directory` (default: the packaged ones), ordered by id."""
    directory = packaged_languages_dir() if directory is None else Path(directory)
    languages: dict[str, Language] = {}
    owner: dict[str, tuple[str, Path]] = {}  # name or alias -> (language id, file)
    for path in sorted(directory.glob("*.toml"), key=lambda p: p.stem):
        language = parse_language(path)
        for field, names in (("id", [language.id]), ("aliases", language.aliases)):
            for name in names:
                if name in owner:
                    other, other_path = owner[name]
                    raise LanguageDefinitionError(
                        f"{path}: field {field}: name {name!r} is already used by language "
                        f"{other!r} ({other_path.name})"
                    )
                owner[name] = (language.id, path)
        languages[language.id] = language
    _check_extension_defaults(languages.values(), directory)
    return languages


def load_missing(path: Path | None = None) -> tuple[MissingLanguage, ...]:
    """The languages Stockade knows it lacks (runtimes/missing.toml), ordered by id."""
    path = Path(str(resources.files("stockade.runtimes") / "missing.toml")) if path is None else path
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LanguageDefinitionError(f"{path}: cannot read: {exc}") from exc
    found = []
    for key, entry in sorted(data.items()):
        try:
            found.append(MissingLanguage.model_validate({**entry, "id": key} if isinstance(entry, dict) else entry))
        except ValidationError as exc:
            problems = "; ".join(f"field {_format_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
            raise LanguageDefinitionError(f"{path}: [{key}] {problems}") from exc
    return tuple(found)


def _check_extension_defaults(languages: Iterable[Language], directory: Path) -> None:
    claimed: dict[str, str] = {}
    for language in languages:
        for ext in language.extensions:
            if not language.is_default_for(ext):
                continue
            if ext in claimed:
                raise LanguageDefinitionError(
                    f"{directory / (language.id + '.toml')}: field default_for_extension: "
                    f"extension {ext!r} is already the default of {claimed[ext]!r}; "
                    "set default_for_extension = false on one of them"
                )
            claimed[ext] = language.id


_SINGLE_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_command(
    argv: list[str],
    entry: str,
    files: list[str],
    extensions: list[str],
    *,
    main: str | None = None,
    vars: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
) -> list[str]:
    """Expand `{entry}`, `{stem}`, `{main}`, the toolchain's `vars` and a whole-element `{sources}`,
    a caller's compiler `options` (already allowed) going just before the sources.

    `{sources}` becomes the entry followed by every other file with one of `extensions`
    (sorted), so multi-file programs compile without the caller listing them. `{main}` is what
    entry_points.find_main found after compiling, else the stem. `vars` are a Toolchain's.
    """
    stem = entry.rsplit(".", 1)[0] if "." in entry.lstrip(".") else entry
    values = {**(vars or {}), "entry": entry, "stem": stem, "main": stem if main is None else main}
    suffixes = tuple("." + ext.lstrip(".") for ext in extensions)
    others = sorted({f for f in files if f != entry and f.endswith(suffixes)})
    out: list[str] = []
    for element in argv:
        if element == "{sources}":
            out.extend([*options, entry, *others])
            continue
        # One pass, so a file name that contains "{stem}" is never expanded again.
        out.append(_SINGLE_RE.sub(lambda m: values.get(m.group(1), m.group(0)), element))
    return out


class Registry:
    """Ordered, read-only set of languages with name/alias/extension lookup and toolchain probes."""

    def __init__(
        self, languages: Mapping[str, Language] | Iterable[Language], missing: Iterable[MissingLanguage] = ()
    ) -> None:
        items = list(languages.values()) if isinstance(languages, Mapping) else list(languages)
        self.languages: tuple[Language, ...] = tuple(items)
        self.missing: tuple[MissingLanguage, ...] = tuple(missing)
        self._by_name: dict[str, Language] = {}
        for language in self.languages:
            for name in language.names:
                if name in self._by_name:
                    raise LanguageDefinitionError(f"language {language.id!r}: name {name!r} used twice")
                self._by_name[name] = language
        self.by_judge0_id: dict[int, Language] = {}
        for language in self.languages:
            for judge0_id in language.judge0_ids:
                if judge0_id in self.by_judge0_id:
                    raise LanguageDefinitionError(f"language {language.id!r}: judge0 id {judge0_id} used twice")
                self.by_judge0_id[judge0_id] = language
        self._missing_by_name: dict[str, MissingLanguage] = {}
        for gap in self.missing:
            for name in gap.names:
                if name in self._by_name or name in self._missing_by_name:
                    raise LanguageDefinitionError(f"missing language {gap.id!r}: name {name!r} used twice")
                self._missing_by_name[name] = gap
        self._by_ext: dict[str, Language] = {}
        for language in self.languages:
            for ext in language.extensions:
                current = self._by_ext.get(ext)
                if current is None or (language.is_default_for(ext) and not current.is_default_for(ext)):
                    self._by_ext[ext] = language
        self._cache: dict[str, tuple[Toolchain, ...]] = {}
        self._inflight: dict[str, asyncio.Task[tuple[Toolchain, ...]]] = {}
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def default(cls) -> Registry:
        return cls(load_languages(), load_missing())

    @classmethod
    def from_directory(cls, directory: Path) -> Registry:
        return cls(load_languages(directory))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def __iter__(self) -> Iterator[Language]:
        return iter(self.languages)

    def __len__(self) -> int:
        return len(self.languages)

    @property
    def ro_paths(self) -> tuple[str, ...]:
        """Every host path some language or toolchain binds read-only into its boxes."""
        paths = {p for lang in self.languages for p in lang.sandbox.ro_paths}
        paths.update(p for lang in self.languages for t in lang.toolchains for p in t.ro_paths if "{" not in p)
        return tuple(sorted(paths))

    def get(self, name: str) -> Language:
        try:
            return self._by_name[name.strip().lower()]
        except KeyError:
            raise UnknownLanguage(name, self._missing_by_name.get(name.strip().lower())) from None

    def by_extension(self, ext: str) -> Language | None:
        ext = ext.lstrip(".")
        return self._by_ext.get(ext) or self._by_ext.get(ext.lower())

    def cached(self, lang: str | Language) -> Toolchain | None:
        language = lang if isinstance(lang, Language) else self.get(lang)
        found = self._cache.get(language.id)
        return found[0] if found else None

    async def detect(self, lang: str | Language, *, refresh: bool = False) -> Toolchain:
        """The language's default toolchain: the newest available one, else the first declared."""
        return (await self.detect_versions(lang, refresh=refresh))[0]

    async def detect_versions(self, lang: str | Language, *, refresh: bool = False) -> tuple[Toolchain, ...]:
        """Every toolchain of the language: the available ones newest first, then the missing ones."""
        language = lang if isinstance(lang, Language) else self.get(lang)
        if not refresh and language.id in self._cache:
            return self._cache[language.id]
        loop = asyncio.get_running_loop()
        task = self._inflight.get(language.id)
        # A task from another (finished) event loop cannot be awaited here.
        if task is None or task.get_loop() is not loop or (refresh and task.done()):
            task = loop.create_task(self._probe_all(language))
            self._inflight[language.id] = task
        try:
            result = await asyncio.shield(task)
        finally:
            if task.done() and self._inflight.get(language.id) is task:
                del self._inflight[language.id]
        self._cache[language.id] = result
        return result

    async def resolve(self, lang: str | Language, requested: str | None = None) -> Toolchain:
        """The toolchain to run: the newest available one whose version matches `requested` (exact, a
        prefix such as "3.11", or a range such as "^3.9", see runtimes.versions); None, "" or "*": the
        newest available. VersionUnavailable (with the available versions) if there is none."""
        language = lang if isinstance(lang, Language) else self.get(lang)
        found = await self.detect_versions(language)
        available = [t for t in found if t.available]
        for toolchain in available:
            if versions.matches(requested, toolchain.version):
                return toolchain
        wanted = None if requested is None or requested.strip() in versions.ANY else requested
        listed = [t.version for t in available if t.version is not None]
        raise VersionUnavailable(language.id, wanted, listed, found[0].detail)

    async def detect_all(self, *, refresh: bool = False) -> dict[str, Toolchain]:
        found = await self.detect_all_versions(refresh=refresh)
        return {lang_id: toolchains[0] for lang_id, toolchains in found.items()}

    async def detect_all_versions(self, *, refresh: bool = False) -> dict[str, tuple[Toolchain, ...]]:
        results = await asyncio.gather(*(self.detect_versions(lang, refresh=refresh) for lang in self.languages))
        return {lang.id: result for lang, result in zip(self.languages, results, strict=True)}

    async def cancel_probes(self) -> None:
        """Stop every probe still running (shutdown): each kills its process group when cancelled."""
        tasks = [t for t in self._inflight.values() if not t.done() and t.get_loop() is asyncio.get_running_loop()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    async def _probe_all(self, language: Language) -> tuple[Toolchain, ...]:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore = asyncio.Semaphore(_DETECT_CONCURRENCY)
            self._semaphore_loop = loop
        semaphore = self._semaphore

        async def one(candidate: Any) -> Toolchain:
            async with semaphore:
                return await probe_candidate(language, candidate)

        return order(await asyncio.gather(*(one(c) for c in candidates(language))))
