"""`stockade toolchains install`: the languages' toolchains, as Debian packages."""

from __future__ import annotations

import click

from stockade.cli.errors import fail


@click.group("toolchains", no_args_is_help=True)
def toolchains() -> None:
    """Install language toolchains (Debian packages)."""


@toolchains.command("install")
@click.argument("languages", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every defined language")
@click.option("--optional", is_flag=True, help="Also the toolchains marked optional (more compiler versions)")
def toolchains_install(languages: tuple[str, ...], all_: bool, optional: bool) -> None:
    """apt-get install the toolchains of the given LANGUAGES, and put the others (pyenv builds linked out of
    /root, PyPI wheels) under /usr/local/lib/stockade/toolchains (idempotent)."""
    if all_ == bool(languages):
        raise click.UsageError("give either --all or a list of languages")
    from stockade.cli.languages import default_registry
    from stockade.runtimes.local_toolchains import install_local
    from stockade.runtimes.registry import UnknownLanguage
    from stockade.runtimes.toolchains import install_packages

    registry = default_registry()
    try:
        chosen = list(registry.languages) if all_ else [registry.get(name) for name in languages]
    except UnknownLanguage as e:
        fail(f"unknown language {e.name!r} (`stockade runtimes` lists them)", exit_code=2)
    report = install_packages(chosen, optional=optional)
    local = install_local(chosen, optional=optional)
    if local.installed:
        click.echo(f"linked or installed: {' '.join(local.installed)}")
    for failure in local.failed:
        click.echo(f"not installed: {failure}", err=True)
    if report.installed:
        click.echo(f"installed: {' '.join(report.installed)}")
    click.echo(f"{len(report.already_installed)} of {len(report.requested)} packages were already installed")
    if report.unavailable:
        # Not fatal: those languages report TOOLCHAIN_MISSING, which is what they are.
        click.echo(f"not in this distribution's archive: {' '.join(report.unavailable)}", err=True)
    failed = [p for p in report.requested if p not in report.unavailable] if not report.ok else []
    if failed and not (set(report.installed) | set(report.already_installed)) >= set(failed):
        click.echo(report.output[-4000:], err=True)
        fail("apt-get failed (its output is above)")
