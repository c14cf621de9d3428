"""Sessions at scale: store-backed sending from many worker processes, recovery of what was in flight.

* :class:`SessionWorker` sends an intent's one operation on a leased nonce lane, recorded in the outbox
  before it is sent, and follows it to inclusion; :meth:`SessionWorker.recover` finishes what any worker
  left unfinished.
* :class:`EventLog` reads the EntryPoint's ``UserOperationEvent`` s from the node: the final word on what
  landed.

See docs/scaling.md for the schema, the lane and outbox protocols and what to do when a worker or the
database dies.
"""

from .events import EventLog, UserOperationEvent
from .probe import Outcome, Prober, Verdict
from .results import BatchResult, Intent, RecoveryReport, Submission
from .worker import SessionWorker, default_worker_id

__all__ = [
    "BatchResult",
    "EventLog",
    "Intent",
    "Outcome",
    "Prober",
    "RecoveryReport",
    "SessionWorker",
    "Submission",
    "UserOperationEvent",
    "Verdict",
    "default_worker_id",
]
