"""The browser playground (service/static), served at / below every other route."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def mount(app: FastAPI) -> None:
    """Last: a mount at / takes every path the routes before it do not."""
    static = resources.files("stockade.service") / "static"
    app.mount("/", StaticFiles(directory=str(static), html=True), name="playground")
