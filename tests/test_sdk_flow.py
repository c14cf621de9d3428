"""The SDK end to end on ape's local chain: owner, grants both ways, session operations, refusals.

The bundler here is the in-process submitter (same interface as the JSON-RPC client): the operations go
through the real EntryPoint ``handleOps`` and the real module.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import pytest

from keyscope import (
    BadInputError,
    BundlerRejectedError,
    Policy,
    PolicyViolationError,
    SessionError,
    SessionExpiredError,
    SessionGrant,
    SessionKey,
    SessionRevokedError,
    TargetWarning,
    function_call,
)
from keyscope.message_signing import SignatureRefusedError
from keyscope.signing import LocalSigner
from support.sdk import mint_policy, sdk_owner  # noqa: F401 -- sdk_owner: the owner fixture


def test_offchain_grant_first_operation_creates_account_and_enables(net, owner, nft, module):
    assert not owner.is_deployed() and owner.supports_sessions()
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    assert grant.how == "offchain" and grant.factory == net.factory
    # the grant survives a trip through JSON, as a dapp would store it
    grant = SessionGrant.from_json(grant.to_json())

    session = net.session(grant, key)
    receipt = session.execute(nft, "safeMint(address)", owner.account).wait()
    assert receipt.success
    assert owner.is_deployed()
    assert nft.ownerOf(0) == owner.account
    assert module.isSessionActive(owner.account, grant.session_id)

    # second operation: plain 65-byte USE signature
    pending = session.execute(nft, "safeMint(address)", owner.account)
    assert len(pending.op.signature) == 65
    pending.wait()
    assert nft.balanceOf(owner.account) == 2


def test_onchain_grant_batch_and_revoke(net, owner, nft):
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], onchain=True)
    assert grant.how == "onchain" and grant.owner_signature is None

    session = net.session(grant, key)
    calls = [function_call(nft, "safeMint(address)", owner.account) for _ in range(3)]
    session.execute_batch(calls).wait()
    assert nft.balanceOf(owner.account) == 4

    owner.revoke(grant).wait()
    with pytest.raises(SessionRevokedError, match="revoked"):
        session.execute(nft, "safeMint(address)", owner.account)


def test_revoking_a_revoked_session_again_is_refused_and_sends_nothing(net, owner, nft, entry_point):
    """A second revocation changes nothing on chain: the SDK says the session is already revoked, by id (in hex)
    and account, instead of having the owner pay for an operation that does nothing."""
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    grant = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)], onchain=True)
    owner.revoke(grant.session_id).wait()
    nonce = entry_point.getNonce(owner.account, 0)
    session_id = "0x" + grant.session_id.hex()
    for again in (grant, grant.session_id, session_id):
        with pytest.raises(SessionRevokedError) as info:
            owner.revoke(again)
        said = str(info.value)
        assert f"session {session_id} is already revoked on chain for {owner.account}" in said, said
        assert "nothing was sent" in said and info.value.session_id == session_id
    assert entry_point.getNonce(owner.account, 0) == nonce


def test_a_grant_repeating_a_permission_the_key_holds_unrevoked_is_refused_before_the_owner_signs(
    net, owner, nft, entry_point, chain
):
    """A dapp reusing its session key after the session expired: the expired session keeps its permissions until
    it is revoked, and the module holds one per (key, target, selector) and per signing permission, so it refuses
    to enable the new grant (PermissionAlreadyGranted). The SDK signed it anyway: the off-chain grant failed at its
    first operation (AA23), the on-chain one in the bundler's simulation. Now the grant is refused before anything
    is signed or sent, and works once the old session is revoked."""
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    old = owner.grant(key, [mint_policy(nft, owner.account)], sign_in=["app.example.com"], onchain=True)
    chain.pending_timestamp += 2 * 3600  # the old session has expired
    chain.mine()
    nonce = entry_point.getNonce(owner.account, 0)
    for onchain in (False, True):
        with pytest.raises(BadInputError) as info:
            owner.grant(key, [mint_policy(nft, owner.account)], onchain=onchain)
        said = str(info.value)
        assert f"permission 0 (safeMint(address) on {nft.address})" in said, said
        assert f"the session key {key.address} already holds this permission on {owner.account}" in said
        assert "PermissionAlreadyGranted" in said and "owner.revoke" in said and "nothing was signed" in said
    with pytest.raises(BadInputError, match=r"signing permission 0 \(sign-in to app.example.com\).*"
                       r"SigningPermissionAlreadyGranted"):  # fmt: skip
        owner.grant(key, [], sign_in=["app.example.com"])
    assert entry_point.getNonce(owner.account, 0) == nonce  # nothing was sent
    # another call for the same key, and the same call for another key, are no overlap
    with pytest.warns(TargetWarning):  # no rule on the spender or the id: said (attack 431)
        owner.grant(key, [Policy.call(nft, "approve(address to, uint256 tokenId)")])
    owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)])

    owner.revoke(old).wait()
    fresh = owner.grant(key, [mint_policy(nft, owner.account)], sign_in=["app.example.com"])
    assert net.session(fresh, key).execute(nft, "safeMint(address)", owner.account).wait().success


def test_an_offchain_grant_whose_permission_the_key_was_granted_since_is_refused_before_sending(
    net, owner, nft, entry_point
):
    """An off-chain grant, then the same key granted the same call on chain in another session: the module would
    refuse to enable the first grant with its first operation (PermissionAlreadyGranted, AA23). The SDK's dry run of
    the enabling finds it and refuses before anything is sent, saying what to do."""
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    offchain = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    owner.grant(key, [mint_policy(nft, owner.account)], valid_for=7200, onchain=True)
    session = net.session(offchain, key)
    nonce = entry_point.getNonce(owner.account, session.nonce_key())
    with pytest.raises(SessionError) as info:
        session.execute(nft, "safeMint(address)", owner.account)
    said = str(info.value)
    assert f"the module would refuse to enable session 0x{offchain.session_id.hex()}" in said, said
    assert "PermissionAlreadyGranted" in said and "AA23" in said and "nothing was sent" in said, said
    assert entry_point.getNonce(owner.account, session.nonce_key()) == nonce  # nothing was sent


def test_an_offchain_grant_signed_before_the_owner_invalidated_all_is_refused_before_sending(
    net, owner, nft, entry_point
):
    """The owner invalidates every session (or reinstalls the module) before an off-chain grant's first operation:
    the module now hashes the grant at the new epoch, so it refuses the owner's signature (AA23
    InvalidOwnerSignature). status() said "invalidated", yet the SDK sent the operation; now it refuses it, naming
    both epochs, and sends nothing."""
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    owner.invalidate_all().wait()
    session = net.session(grant, key)
    assert session.status().status == "invalidated"
    nonce = entry_point.getNonce(owner.account, session.nonce_key())
    with pytest.raises(SessionRevokedError) as info:
        session.execute(nft, "safeMint(address)", owner.account)
    said = str(info.value)
    assert (
        f"was granted at the account's epoch {grant.epoch}, and the account is at epoch {owner.epoch()} now"
        in said
    )
    assert "InvalidOwnerSignature" in said and "ask the owner for a new session" in said
    assert entry_point.getNonce(owner.account, session.nonce_key()) == nonce  # nothing was sent
    fresh = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)  # at the new epoch: it works
    assert net.session(fresh, key).execute(nft, "safeMint(address)", owner.account).wait().success


def test_a_session_that_cannot_sign_says_why_revoked_or_invalidated_not_only_not_enabled(net, owner, nft):
    """A session asked to sign a message while the module does not hold it active: before, every such refusal
    said "not enabled on chain yet ... send one first", which cannot help a session the owner revoked or whose
    off-chain grant predates invalidate_all(). The same one round trip now says which it is."""
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    pending = owner.grant(key, [mint_policy(nft, owner.account)], sign_in=["app.example.com"], valid_for=3600)
    with pytest.raises(SessionError, match="not enabled on chain yet"):
        net.session(pending, key).sign_in("app.example.com", uri="https://app.example.com")
    owner.invalidate_all().wait()
    with pytest.raises(
        SessionRevokedError, match=f"at the account's epoch {pending.epoch}, and the account is at"
    ):
        net.session(pending, key).sign_in("app.example.com", uri="https://app.example.com")

    other = SessionKey.generate()
    enabled = owner.grant(other, [], sign_in=["app.example.com"], valid_for=3600, onchain=True)
    session = net.session(enabled, other)
    assert session.sign_in("app.example.com", uri="https://app.example.com")[1]
    owner.revoke(enabled).wait()
    for signer in (session, net.session(enabled, other)):  # one that saw it enabled, and a new one
        with pytest.raises(
            SignatureRefusedError, match=r"every verifier would refuse it: session 0x.* is revoked on"
        ):
            signer.sign_in("app.example.com", uri="https://app.example.com")


def test_a_signing_only_session_is_granted_on_chain_never_off_chain(net, owner, nft, entry_point):
    """ "A session with signing permissions only has no operation to carry its grant: it is granted on chain." An
    off-chain grant is stored by the session's first operation, and a session allowed no call makes none: the owner's
    signature of one would grant nothing, and the session would be told to "send one first" for ever. The SDK refuses
    it before the owner signs, here and on the wallet's path (the request a wallet or the consent page has the owner
    sign); on chain, the same session signs."""
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    nonce = entry_point.getNonce(owner.account, 0)
    with pytest.raises(BadInputError, match=r"signing permissions only.*onchain=True.*nothing was signed"):
        owner.grant(key, [], sign_in=["app.example.com"], valid_for=3600)
    with pytest.raises(BadInputError, match=r"signing permissions only.*onchain=True"):
        owner.prepare_grant(key, [], sign_in=["app.example.com"], valid_for=3600)
    signing_only = owner.session_for(key, [], sign_in=["app.example.com"], now=int(time.time()))
    with pytest.raises(BadInputError, match=r"signing permissions only.*onchain=True"):
        owner.request_for(signing_only)
    assert entry_point.getNonce(owner.account, 0) == nonce  # nothing was sent
    enabled = owner.grant(key, [], sign_in=["app.example.com"], valid_for=3600, onchain=True)
    assert net.session(enabled, key).sign_in("app.example.com", uri="https://app.example.com")[1]


def test_call_outside_the_policy_is_refused_before_sending(net, owner, nft, entry_point, accounts):
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    session = net.session(grant, key)
    stranger = accounts[4].address
    with pytest.raises(PolicyViolationError) as info:
        session.execute(nft, "safeMint(address)", stranger)
    error = info.value
    assert error.call_index == 0 and error.permission_index == 0 and error.rule_index == 0
    assert "`to`" in str(error) and stranger in str(error) and owner.account in str(error)
    assert not owner.is_deployed()  # nothing was sent

    with pytest.raises(PolicyViolationError, match="no permission"):
        session.execute(nft, "approve(address,uint256)", stranger, 1)


def test_bypassing_the_local_check_meets_the_module(net, owner, nft, accounts):
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    session = net.session(grant, key)
    session.execute(nft, "safeMint(address)", owner.account).wait()  # enables the session
    with pytest.raises(BundlerRejectedError) as info:
        session.execute(nft, "safeMint(address)", accounts[4].address, check=False)
    assert info.value.reason == "AA23"
    assert "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in str(info.value)


def test_expired_session_is_refused_locally(net, owner, nft, chain):
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=60)
    session = net.session(grant, key)
    chain.pending_timestamp = chain.blocks.head.timestamp + 120
    chain.mine()
    with pytest.raises(SessionExpiredError):
        session.execute(nft, "safeMint(address)", owner.account)


def test_wrong_key_for_the_grant_is_refused(net, owner, nft):
    grant = owner.grant(SessionKey.generate(), [mint_policy(nft, owner.account)], valid_for=3600)
    with pytest.raises(ValueError, match="not this session's key"):
        net.session(grant, SessionKey.generate())


def test_grant_request_for_an_external_wallet(net, owner, nft):
    """A wallet signs the typed data (eth_signTypedData_v4); here eth-account plays the wallet."""
    key = SessionKey.generate()
    request = owner.prepare_grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    signature = owner.signer.sign_typed_data(request.typed_data)
    grant = request.complete(signature)
    net.session(grant, key).execute(nft, "safeMint(address)", owner.account).wait()
    assert nft.balanceOf(owner.account) == 1


def test_operation_over_the_sessions_gas_cap_is_refused_locally(net, owner, nft):
    from keyscope.errors import GasCostTooHighError

    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600, max_gas_cost=10**9)
    with pytest.raises(GasCostTooHighError, match="over the session's cap of 1,000,000,000 wei"):
        net.session(grant, key).execute(nft, "safeMint(address)", owner.account)
    assert not owner.is_deployed()


def test_a_grant_that_chooses_no_cap_gets_the_default_one(net, owner, nft):
    """A session's gas cost cap is 0.05 ether per operation unless the owner chooses another: a grant that left it
    at 0 (no cap) would let a leaked key spend the account's ETH on fees (attacks 28, 110)."""
    from keyscope.owner import DEFAULT_MAX_GAS_COST

    assert DEFAULT_MAX_GAS_COST == 5 * 10**16
    key = SessionKey.generate()
    offchain = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    assert offchain.session.max_gas_cost == 5 * 10**16


def test_every_lane_of_a_session_has_a_nonce_key_of_its_own_and_a_lane_past_the_last_is_refused(
    net, owner, nft
):
    """A session's lanes are counted from a base its id gives, modulo the lanes the account leaves free: lane
    ``2**lane_bits`` would wrap onto lane 0's key (two workers building on one nonce, one operation lost), so it is
    refused, as the session is made and when a lane is named; the last lane has a key of its own."""
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)])
    session = net.session(grant, key)
    lanes = 1 << session.kind.lane_bits
    assert len({session.nonce_key(lane) for lane in (0, 1, lanes - 1)}) == 3
    with pytest.raises(BadInputError, match=f"lane {lanes} is out of range"):
        session.nonce_key(lanes)
    with pytest.raises(BadInputError, match=f"lane {lanes} is out of range"):
        net.session(grant, key, lane=lanes)


def test_an_operation_built_while_the_last_one_is_pending_takes_the_next_nonce(net, owner, nft, monkeypatch):
    """A session's operation built after the last was sent and before it lands takes the nonce after the last's
    (counted locally, under the lane's key): on the last one's nonce one of the two would replace or lose to the
    other. The bundler here holds what it is sent (nothing lands), as a busy one does for a while."""
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], onchain=True)
    session = net.session(grant, key)
    mint = function_call(nft, "safeMint(address)", owner.account)
    session.send(session.build(mint)).wait()  # landed: the lane's later operations share an estimate
    held: list[object] = []
    monkeypatch.setattr(session._builder, "send", held.append)
    first = session.build(mint)
    session.send(first)
    second = session.build(mint)
    session.send(second)
    third = session.build(mint)
    assert [op.nonce for op in (*held, third)] == [first.nonce, first.nonce + 1, first.nonce + 2]


def test_two_dapps_sessions_on_one_account_do_not_share_a_nonce_lane(net, owner, nft, target):
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()
    key_a, key_b = SessionKey.generate(), SessionKey.generate()
    grant_a = owner.grant(key_a, [mint_policy(nft, owner.account)], onchain=True)
    grant_b = owner.grant(key_b, [Policy.call(target, "other(uint256)")], onchain=True)
    a, b = net.session(grant_a, key_a), net.session(grant_b, key_b)
    assert a.nonce_key() != b.nonce_key()
    op_a = a.build(function_call(nft, "safeMint(address)", owner.account))
    op_b = b.build(function_call(target, "other(uint256)", 7))  # built before op_a lands
    a.send(op_a).wait()
    b.send(op_b).wait()
    assert nft.balanceOf(owner.account) == 2 and target.calls() == 1


def test_gas_estimates_kept_for_reuse_are_bounded(net, owner, nft, monkeypatch):
    """Identical calls reuse an estimate; distinct calls (a long-running dapp's) never grow the cache past
    its bound."""
    import keyscope.session_account as session_account_module

    monkeypatch.setattr(session_account_module, "_MAX_ESTIMATES", 4)
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    grant = owner.grant(key, [Policy.call(nft, "safeMint(address to)")], onchain=True)
    session = net.session(grant, key)
    recipients = [LocalSigner.generate().address for _ in range(10)]
    for to in recipients:
        session.build(function_call(nft, "safeMint(address)", to))
        assert 1 <= len(session._estimates) <= 4
    again = session.build(function_call(nft, "safeMint(address)", recipients[-1]))  # the newest is kept
    assert again.call_gas_limit > 0 and len(session._estimates) <= 4


def test_offchain_grant_on_an_account_that_exists(net, owner, nft):
    """The owner-signature check before an off-chain grant on a deployed account asks the account from the
    module, which holds no ETH: py-evm refuses such a call for its gas, and the check must still work."""
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    receipt = net.session(grant, key).execute(nft, "safeMint(address)", owner.account).wait()
    assert receipt.success and nft.balanceOf(owner.account) == 2


def test_offchain_grant_signed_by_another_key_is_refused_before_anything_is_sent(net, owner, nft):
    from keyscope.errors import AccountSetupError

    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()
    impostor = net.owner(LocalSigner.generate(), owner.account)
    with pytest.raises(AccountSetupError, match="refuses the owner's signature of the session grant"):
        impostor.grant(SessionKey.generate(), [mint_policy(nft, owner.account)], valid_for=3600)


def test_an_offchain_grant_carrying_another_key_s_owner_signature_is_refused_before_its_first_operation(
    net, owner, nft, entry_point
):
    """A grant handed to the session with an owner signature the account does not take (here, another key's
    signature of the same digest): the module would refuse it with the first operation (AA23 InvalidOwnerSignature).
    The session asks the account first and refuses before anything is sent."""
    from keyscope.errors import AccountSetupError

    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # creates the account
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    digest = grant.session.enable_digest(grant.account, grant.epoch, grant.chain_id, grant.module)
    forged = grant.model_copy(update={"owner_signature": LocalSigner.generate().sign_hash(digest)})
    session = net.session(forged, key)
    nonce = entry_point.getNonce(owner.account, session.nonce_key())
    with pytest.raises(AccountSetupError, match="refuses the owner's signature of the session grant"):
        session.execute(nft, "safeMint(address)", owner.account)
    assert entry_point.getNonce(owner.account, session.nonce_key()) == nonce  # nothing was sent


def test_a_grant_for_another_chain_is_refused_before_anything_is_sent(net, owner, nft):
    """The owner's signature of the grant binds its chain id: on another chain the module refuses it (AA23 InvalidOwnerSignature).
    The SDK says so before asking the bundler anything."""
    from keyscope.errors import ConfigurationError

    key = SessionKey.generate()
    other = dataclasses.replace(net)
    other._chain_id = net.chain_id + 1  # the owner's wallet on another chain signs the grant
    elsewhere = other.owner(owner.signer).grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    assert elsewhere.chain_id == net.chain_id + 1
    with pytest.raises(
        ConfigurationError, match=f"granted on chain {net.chain_id + 1}, but the node is on chain"
    ):
        net.session(elsewhere, key).execute(nft, "safeMint(address)", owner.account)
    assert not owner.is_deployed()


def test_a_call_to_an_address_without_code_is_refused_before_anything_is_sent(net, owner, nft):
    """A call with calldata to an empty address succeeds on chain and does nothing (the operation is paid for
    nothing): the module has no reason to refuse it, the SDK does."""
    from keyscope.errors import TargetWithoutCodeError

    nowhere = LocalSigner.generate().address
    key = SessionKey.generate()
    with pytest.warns(TargetWarning, match="has no code"):
        grant = owner.grant(
            key, [mint_policy(nft, owner.account), Policy.call(nowhere, "mint(address)")], valid_for=3600
        )
    session = net.session(grant, key)
    with pytest.raises(TargetWithoutCodeError) as info:
        session.execute_batch(
            [
                function_call(nft, "safeMint(address)", owner.account),
                function_call(nowhere, "mint(address)", owner.account),
            ]
        )
    assert (info.value.target, info.value.call_index) == (nowhere, 1)
    assert f"call 1 sends calldata to {nowhere}, which has no code" in str(info.value)
    calls = iter(
        [
            function_call(nft, "safeMint(address)", owner.account),
            function_call(nowhere, "mint(address)", owner.account),
        ]
    )
    with pytest.raises(TargetWithoutCodeError):  # calls given as an iterator are all looked at too
        session.build(calls, batch=True)  # type: ignore[arg-type]
    assert not owner.is_deployed()
    session.execute(nft, "safeMint(address)", owner.account).wait()  # a target with code: sent
    assert nft.balanceOf(owner.account) == 1
    # a precompile has no code, yet a call to it does something: not refused
    identity = "0x0000000000000000000000000000000000000004"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetWarning)  # nor warned about at grant time
        echo = owner.grant(key, [Policy.call(identity, "echo(uint256)")], valid_for=3600, onchain=True)
    assert net.session(echo, key).execute(identity, "echo(uint256)", 7).wait().success


def test_an_account_without_code_and_a_grant_without_factory_is_refused_before_anything_is_sent(
    net, owner, nft
):
    """The EntryPoint refuses an operation of an account that does not exist without initCode (AA20); bundlers
    report it as a bare ``handleOps`` revert. The SDK says what is wrong and what to do."""
    from keyscope import SessionError

    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    no_factory = grant.model_copy(update={"factory": None, "factory_data": b""})
    session = net.session(no_factory, key)
    with pytest.raises(
        SessionError, match=r"has no code on chain \d+ and the grant names no factory .*\(AA20\)"
    ):
        session.execute(nft, "safeMint(address)", owner.account)
    assert not owner.is_deployed()
    owner.execute(function_call(nft, "safeMint(address)", owner.account)).wait()  # the owner deploys it
    session.execute(nft, "safeMint(address)", owner.account).wait()
    assert nft.balanceOf(owner.account) == 2


def test_an_account_that_cannot_pay_the_prefund_gets_the_numbers(net, nft):
    """AA21 from the EntryPoint becomes an InsufficientPrefundError with the account's balance and deposit and
    the operation's prefund (it stays a BundlerRejectedError with reason AA21)."""
    from keyscope.errors import InsufficientPrefundError

    owner = net.owner(LocalSigner.generate())  # its account holds nothing
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], valid_for=3600)
    with pytest.raises(InsufficientPrefundError) as info:
        net.session(grant, key).execute(nft, "safeMint(address)", owner.account)
    error = info.value
    assert isinstance(error, BundlerRejectedError) and error.reason == "AA21"
    assert (error.account, error.balance, error.deposit) == (owner.account, 0, 0) and error.cost
    assert f"may cost up to {error.cost:,} wei in gas, but the account {owner.account} holds 0 wei" in str(
        error
    )
    assert f"send it at least {error.cost:,} wei more, or use a paymaster" in str(error)


def test_an_owner_operation_that_cannot_pay_the_prefund_gets_the_numbers(net, nft):
    from keyscope.errors import InsufficientPrefundError

    owner = net.owner(LocalSigner.generate())  # its account holds nothing
    with pytest.raises(InsufficientPrefundError) as info:
        owner.execute(function_call(nft, "safeMint(address)", owner.account))
    error = info.value
    assert (error.reason, error.account, error.balance, error.deposit) == ("AA21", owner.account, 0, 0)
    assert error.cost and f"send it at least {error.cost:,} wei more" in str(error)
