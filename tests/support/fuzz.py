"""How hard the property tests search: ``KEYSCOPE_FUZZ=ci`` (the default, what ``make test`` runs) or ``deep`` (many
more examples, for a run of its own)."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, Phase

FUZZ = os.environ.get("KEYSCOPE_FUZZ", "ci")
if FUZZ not in ("ci", "deep"):
    raise RuntimeError(f"KEYSCOPE_FUZZ={FUZZ!r}: use 'ci' (default) or 'deep'")
DEEP = FUZZ == "deep"
"""Whether this run searches deep (``KEYSCOPE_FUZZ=deep``)."""

ON_CHAIN: dict[str, Any] = {
    # Replaying an example costs transactions and dozens of eth_calls, so shrinking would take minutes; a failure's
    # message already names the example and both verdicts. The same examples every ci run, new ones in a deep run.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate],
    "deadline": None,
    "derandomize": not DEEP,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
}
"""``@settings(max_examples=N, **ON_CHAIN)`` for a property test that judges each example on a chain."""
