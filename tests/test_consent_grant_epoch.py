"""The epoch of a grant the owner is asked to sign on the consent page: the module hashes an off-chain grant at the
account's epoch when the grant is first used, and "revoke every session" (``invalidateAllSessions``) moves that
epoch on. A grant request at a later epoch than the account's was a grant the owner's own revocation of everything
would bring to life while the epoch moved by one; it now moves by a skip drawn from the block (attack 319), and the
server still refuses such a request.

Real components: keyscope's account and module on ape's chain with the in-process bundler, the consent server's
Python API.
"""

from __future__ import annotations

import pytest

from conftest import ETHER
from keyscope import Policy, SessionKey, arg, function_call
from keyscope.consent import ConsentServer
from keyscope.errors import BadInputError, KeyscopeError
from keyscope.owner import GrantRequest
from keyscope.signing import LocalSigner


def _at_epoch(request: GrantRequest, epoch: int) -> GrantRequest:
    """``request`` as a dapp would write it without the SDK, at another epoch (its id computed to match)."""
    fields = request.model_dump()
    fields.update(epoch=epoch, session_id=request.session.session_id(request.account, epoch))
    return GrantRequest.model_validate(fields)


def test_a_grant_request_at_a_later_epoch_is_refused_before_the_owner_sees_it(net, harness, nft) -> None:
    """A dapp hands the consent server a grant request at the account's next epoch: the page showed it as any
    other (the epoch is no word of it), the owner signed, and its first operation failed, the module hashing it at
    the current epoch. Once the owner, learning of a leaked key, pressed "revoke every session", the epoch moved
    on to the grant's (by one, then), and the key enabled the grant: the owner's revocation of everything started a
    session. The server refuses a request at an epoch other than the account's, naming both; and the epoch now
    moves past it, by a skip drawn from the block."""
    signer = LocalSigner.generate()
    owner = net.owner(signer)
    harness.fund(owner.account, ETHER)
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    mint = Policy.call(nft, "safeMint(address to)", rules=[arg("to") == owner.account])
    request = owner.prepare_grant(key, [mint], valid_for=3600)
    epoch = owner.epoch()
    later = _at_epoch(request, epoch + 1)

    with ConsentServer(net) as server:
        with pytest.raises(BadInputError) as refused:
            server.request_grant(later)
        said = str(refused.value)
        assert f"epoch {epoch + 1}" in said and f"epoch {epoch}" in said, said
        assert server.request_grant(request).url  # the account's own epoch: served

    # the harm the refusal keeps away: the owner's signature of the later-epoch grant, the wallet's as it is
    grant = later.complete(signer.sign_typed_data(later.typed_data), network=net)
    session = net.session(grant, key)
    with pytest.raises(KeyscopeError):
        session.execute(nft, "safeMint(address)", owner.account).wait()
    owner.invalidate_all().wait()  # "revoke every session"
    assert owner.epoch() != epoch + 1
    with pytest.raises(KeyscopeError):
        session.execute(nft, "safeMint(address)", owner.account).wait()
