"""Where keyscope's warnings point: at the first frame outside keyscope, the user's own line."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["caller_stacklevel"]

_PACKAGE = str(Path(__file__).resolve().parent)


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning issued by the function calling this at the first frame outside
    keyscope: the owner's code that asked for the grant, however deep in keyscope the check runs."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level
