"""Deprecated: the SDK's import path is `stockade.client` (this one warns, and goes in a later release)."""

import warnings

from stockade.client import *  # noqa: F403
from stockade.client import __all__ as __all__
from stockade.client import sdk as sdk

warnings.warn("stockade.clients is deprecated: import from stockade.client", DeprecationWarning, stacklevel=2)
