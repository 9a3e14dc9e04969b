"""The SDK's public import path: `from stockade.client import Client, AsyncClient`."""

from stockade.clients import *  # noqa: F403
from stockade.clients import __all__ as __all__
