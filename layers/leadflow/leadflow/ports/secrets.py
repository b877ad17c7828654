"""Secrets: the error of a secret the operator has not set."""

from __future__ import annotations


class MissingSecret(RuntimeError):
    """A key the function needs is absent or empty in its JSON secret (the operator must set it)."""
