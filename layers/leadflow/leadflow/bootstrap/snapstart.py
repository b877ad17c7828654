"""What a function does after Lambda SnapStart restores it from a snapshot.

Every environment restored from one snapshot starts with the same memory. Ids and tokens come from
``secrets`` (the operating system's randomness, read at each call), so they differ; the ``random``
module's state does not: it would give every restored environment the same retry jitter, and
environments that retry together would again collide together. ``reseed_random`` runs after each
restore (``register_after_restore`` in the function's ``app.py``).
"""

from __future__ import annotations

import random


def reseed_random() -> None:
    """Seed ``random`` afresh from the operating system's randomness (SnapStart's after-restore hook)."""
    random.seed()
