"""Stockade: a self-hosted, polyglot, secure code-execution engine."""

__version__ = "0.1.0"
