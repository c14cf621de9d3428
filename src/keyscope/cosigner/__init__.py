"""A small co-signer service: the second key of co-signed sessions, behind a policy, over JSON-RPC.

* :class:`CoSignerService` holds the co-signer's key and its :class:`CoSignPolicy`; it recomputes what it signs
  (the userOpHash of the operation it is shown, the ERC-7739 hash of the typed data), so that it approves what it
  judged, and refuses clearly (:class:`CoSignRefused`: a JSON-RPC error with a reason).
* :class:`CoSignerServer` serves it over HTTP on 127.0.0.1, :class:`LocalCoSigner` for a running local stack;
  :func:`remote_co_signer` is the SDK's client (``net.session(grant, key, co_signer=remote_co_signer(url))``).

Methods: ``keyscope_coSignUserOperation [account, sessionId, userOp]`` and ``keyscope_coSignTypedData [account,
sessionId, typedData]``, each answering ``{"signature": "0x..."}``.
"""

from .client import remote_co_signer
from .local import LocalCoSigner
from .server import CoSignerServer
from .service import CoSignerService, CoSignPolicy, CoSignRefused

__all__ = [
    "CoSignPolicy",
    "CoSignRefused",
    "CoSignerServer",
    "CoSignerService",
    "LocalCoSigner",
    "remote_co_signer",
]
