"""Language registry: languages are data (one TOML file each under languages/)."""

from .model import Language, LanguageFloors, Toolchain
from .registry import (
    BOX_PATH,
    LanguageDefinitionError,
    Registry,
    UnknownLanguage,
    expand_command,
    load_languages,
    load_missing,
    packaged_languages_dir,
)
from .toolchains import InstallReport, all_packages, install_packages

__all__ = [
    "BOX_PATH",
    "InstallReport",
    "Language",
    "LanguageDefinitionError",
    "LanguageFloors",
    "Registry",
    "Toolchain",
    "UnknownLanguage",
    "all_packages",
    "expand_command",
    "install_packages",
    "load_languages",
    "load_missing",
    "packaged_languages_dir",
]
