"""The clock a session's window is judged by.

Two clocks judge a UserOperation's window, and neither is the latest block's timestamp:

* the EntryPoint compares the window with the timestamp of the block that *includes* the operation, which is
  at least the wall clock's time on a chain that mines on demand (anvil stamps a new block with the current
  time even when the latest one is minutes old) and at least the latest block's time everywhere;
* a bundler compares it with its own wall clock when the operation arrives, and refuses one that expires
  within a few seconds (Alto: ``validUntil < now + 5``).

So keyscope counts a duration, and checks a window, from :func:`window_now`: the later of the chain's latest
block time and the wall clock. On a public chain the two agree within a block; on an idle local chain the
wall clock is ahead; on a chain moved forward (anvil time travel) the chain is.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

__all__ = ["LAST_READABLE_TIME", "utc_moment", "utc_text", "window_now"]


LAST_READABLE_TIME = 253_402_300_799
"""9999-12-31 23:59:59 UTC: a session ending later never ends for anyone reading it (and a browser cannot show a
date past the year 275760: the consent page said "until Invalid Date"). The consent page warns about a request
ending later as one that never expires; :func:`keyscope.owner.session_window` refuses such a time (most often
milliseconds given for seconds)."""


def window_now(chain_time: int | None) -> int:
    """The time a session's window is judged at: the later of ``chain_time`` (the latest block's timestamp;
    None when unknown) and the wall clock, in whole unix seconds."""
    wall = int(time.time())
    return wall if chain_time is None else max(int(chain_time), wall)


def utc_text(moment: float) -> str:
    """A unix time as people read it in UTC: ``2026-01-31 12:00:00 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def utc_moment(moment: int) -> str:
    """A unix time as a refusal names it: the date in UTC with the number beside it (``2026-01-31 12:00:00 UTC
    (unix 1769860800)``), or the number alone for a time no calendar reaches."""
    try:  # datetime, not utc_text's gmtime: it stops at the year 9999 rather than writing 2**48 - 1 as a date
        text = datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"unix time {moment}"
    return f"{text} (unix {moment})"
