"""The base of leadflow's outcomes, and the errors reading a workspace raises.

The lowest layer: it imports nothing, so ``config`` (which raises ``InvalidWorkspace`` and
``FormNotFound``) needs nothing from ``domain``. ``domain.errors`` holds every other outcome and
names these three too, so callers import every outcome from one place.
"""

from __future__ import annotations


class LeadflowError(Exception):
    """Base of every outcome leadflow reports to a caller."""


class FormNotFound(LeadflowError):
    """No form with that id in the workspace (404)."""


class InvalidWorkspace(LeadflowError):
    """A workspace file breaks its schema; the message names the file and the field."""
