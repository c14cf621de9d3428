"""How hard the property tests search: ``KEYSCOPE_FUZZ=ci`` (the default, what ``make test`` runs) or ``deep`` (many
more examples, for a run of its own)."""

from __future__ import annotations

import os

FUZZ = os.environ.get("KEYSCOPE_FUZZ", "ci")
if FUZZ not in ("ci", "deep"):
    raise RuntimeError(f"KEYSCOPE_FUZZ={FUZZ!r}: use 'ci' (default) or 'deep'")
DEEP = FUZZ == "deep"
"""Whether this run searches deep (``KEYSCOPE_FUZZ=deep``)."""
