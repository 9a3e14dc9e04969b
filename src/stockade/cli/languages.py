"""The language registry for the commands that need it (`run`, `runtimes`, `toolchains`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockade.cli.errors import fail

if TYPE_CHECKING:
    from stockade.runtimes.registry import Registry


def default_registry() -> Registry:
    """The packaged languages; a definition that does not load ends the command with its file and field."""
    from stockade.runtimes.registry import LanguageDefinitionError, Registry

    try:
        return Registry.default()
    except LanguageDefinitionError as e:
        fail(f"invalid language definition: {e}")
