"""SessionKeyValidator: granting (on-chain and with one owner signature), using, revoking, invalidating.

Everything goes through the real EntryPoint v0.7 ``handleOps`` on ape's local chain.
"""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak

from keyscope.execution import Call
from keyscope.session import Condition, Permission, Rule, Session
from keyscope.signing import LocalSigner

SAFE_MINT = keccak(b"safeMint(address)")[:4]


def mint_session(key: LocalSigner, nft, to: str, **kw) -> Session:
    """safeMint(address) on the NFT, with `to` required to equal ``to``."""
    rule = Rule(condition=Condition.EQUAL, offset=0, values=(int(to, 16),), name="to")
    return Session(
        session_key=key.address,
        permissions=(
            Permission(target=nft.address, selector=SAFE_MINT, rules=(rule,), function="safeMint(address)"),
        ),
        **kw,
    )


def mint(nft, to: str) -> Call:
    return Call.of(nft.address, 0, nft.safeMint.encode_input(to))


# ------------------------------------------------------------------------------------------------------
# Grant on chain
# ------------------------------------------------------------------------------------------------------


def test_onchain_grant_use_revoke(sessions, owner, session_key, nft, module):
    account = sessions.account(owner)
    session = mint_session(session_key, nft, account)
    session_id = sessions.grant_onchain(account, owner, session)
    assert session_id == bytes(module.sessionId(account, session.as_abi()))

    sessions.run(sessions.op(account, session_key, mint(nft, account)))
    sessions.run(sessions.op(account, session_key, mint(nft, account)))
    assert nft.balanceOf(account) == 2

    sessions.revoke(account, owner, session_id)
    assert module.isSessionRevoked(account, session_id)
    assert not module.isSessionActive(account, session_id)
    error = sessions.h.rejected(sessions.op(account, session_key, mint(nft, account)))
    assert error.reason == "AA24"
    assert nft.balanceOf(account) == 2


def test_enable_session_emits_event(sessions, owner, session_key, nft, module):
    account = sessions.account(owner)
    session = mint_session(session_key, nft, account, valid_after=5, valid_until=10**10)
    receipt = sessions.h.owner_execute(
        account, owner, Call.of(module.address, 0, module.enableSession.encode_input(session.as_abi()))
    )
    topic = keccak(b"SessionEnabled(address,bytes32,address,uint48,uint48)")
    logs = [log for log in receipt.logs if bytes(log["topics"][0]) == topic]
    assert len(logs) == 1
    assert bytes(logs[0]["topics"][2]) == session.session_id(account, 0)
    assert bytes(logs[0]["topics"][3])[12:] == bytes.fromhex(session_key.address[2:])


def test_revoked_session_cannot_be_granted_again(sessions, owner, session_key, nft, module):
    account = sessions.account(owner)
    session = mint_session(session_key, nft, account)
    session_id = sessions.grant_onchain(account, owner, session)
    sessions.revoke(account, owner, session_id)
    data = module.enableSession.encode_input(session.as_abi())
    receipt = sessions.h.submit(sessions.h.sign_owner(sessions.h.op(account, _execute(module, data)), owner))
    assert not receipt.success  # enableSession reverted: SessionIsRevoked


def _execute(module, data):
    from keyscope.execution import encode_execute

    return encode_execute(Call.of(module.address, 0, data))


# ------------------------------------------------------------------------------------------------------
# Grant off chain: one owner signature, enabled by the first session operation
# ------------------------------------------------------------------------------------------------------


def test_offchain_grant_use_revoke(sessions, owner, session_key, nft, module):
    account = sessions.account(owner)
    session = mint_session(session_key, nft, account)
    owner_signature = sessions.owner_signature(account, owner, session)
    session_id = session.session_id(account, 0)
    assert not module.isSessionActive(account, session_id)

    first = sessions.enable_op(account, session_key, session, owner_signature, mint(nft, account))
    sessions.run(first)
    assert module.isSessionActive(account, session_id)
    assert nft.balanceOf(account) == 1

    # later operations need only the session key's 65-byte signature
    op = sessions.op(account, session_key, mint(nft, account))
    assert len(op.signature) == 65
    sessions.run(op)
    assert nft.balanceOf(account) == 2

    # repeating the enable payload once enabled is harmless
    sessions.run(sessions.enable_op(account, session_key, session, owner_signature, mint(nft, account)))
    assert nft.balanceOf(account) == 3

    sessions.revoke(account, owner, session_id)
    assert sessions.h.rejected(sessions.op(account, session_key, mint(nft, account))).reason == "AA24"
    # the enable payload cannot bring it back after revocation
    replay = sessions.enable_op(account, session_key, session, owner_signature, mint(nft, account))
    error = sessions.h.rejected(replay)
    assert error.reason == "AA23" and "SessionIsRevoked" in str(error)


def test_offchain_grant_in_the_operation_that_creates_the_account(sessions, owner, session_key, nft, module):
    """Counterfactual account: the first operation deploys it (factory installs the module) and enables
    the session the owner signed, and mints — with no owner transaction at all."""
    from keyscope.accounts import create_account_data

    h = sessions.h
    modules = [(1, module.address, b"")]
    account = h.counterfactual(owner.address, modules, salt=99)
    h.fund(account)
    session = mint_session(session_key, nft, account)
    owner_signature = sessions.owner_signature(account, owner, session, epoch=0)
    from keyscope.execution import encode_execute
    from keyscope.session import encode_enable_signature

    op = h.op(
        account,
        encode_execute(mint(nft, account)),
        key=sessions_nonce_key(module),
        factory=h.factory.address,
        factory_data=create_account_data(owner.address, modules, 99),
    )
    op = op.replace(
        signature=encode_enable_signature(session, owner_signature, session_key.sign_hash(h.hash(op)))
    )
    sessions.run(op)
    assert nft.ownerOf(0) == account
    assert module.isSessionActive(account, session.session_id(account, 0))


def sessions_nonce_key(module) -> int:
    from conftest import KIND

    return KIND.nonce_key(module.address)


def test_owner_revokes_an_offchain_grant_before_it_is_used(sessions, owner, session_key, nft, module):
    account = sessions.account(owner)
    session = mint_session(session_key, nft, account)
    owner_signature = sessions.owner_signature(account, owner, session)
    sessions.revoke(account, owner, session.session_id(account, 0))
    error = sessions.h.rejected(
        sessions.enable_op(account, session_key, session, owner_signature, mint(nft, account))
    )
    assert "SessionIsRevoked" in str(error)
    assert nft.balanceOf(account) == 0


@pytest.mark.parametrize("what", ["chain", "module", "epoch"])
def test_enable_signature_bound_to_chain_module_and_epoch(sessions, owner, session_key, nft, module, what):
    account = sessions.account(owner)
    session = mint_session(session_key, nft, account)
    other = {
        "chain": {"chain_id": sessions.h.chain_id + 1},
        "module": {"module": "0x" + "12" * 20},
        "epoch": {"epoch": 1},
    }[what]
    owner_signature = sessions.owner_signature(account, owner, session, **other)
    error = sessions.h.rejected(
        sessions.enable_op(account, session_key, session, owner_signature, mint(nft, account))
    )
    assert error.reason == "AA23" and "InvalidOwnerSignature" in str(error)


def test_enable_signature_bound_to_the_account(sessions, owner, session_key, nft):
    account_a = sessions.account(owner, salt=1)
    account_b = sessions.account(owner, salt=2)  # same owner: the signature would verify on B's ERC-1271
    session = mint_session(session_key, nft, account_a)
    owner_signature = sessions.owner_signature(account_a, owner, session)
    error = sessions.h.rejected(
        sessions.enable_op(account_b, session_key, session, owner_signature, mint(nft, account_b))
    )
    assert "InvalidOwnerSignature" in str(error)


def test_enable_signature_by_someone_else_is_refused(sessions, owner, session_key, nft):
    account = sessions.account(owner)
    session = mint_session(session_key, nft, account)
    forged = sessions.owner_signature(account, session_key, session)  # the session key signs its own grant
    error = sessions.h.rejected(
        sessions.op(
            account, session_key, mint(nft, account), mode="enable", session=session, owner_signature=forged
        )
    )
    assert "InvalidOwnerSignature" in str(error)


def test_enable_with_wrong_session_signature_fails_and_stores_nothing(
    sessions, owner, session_key, nft, module
):
    account = sessions.account(owner)
    session = mint_session(session_key, nft, account)
    owner_signature = sessions.owner_signature(account, owner, session)
    op = sessions.enable_op(
        account, session_key, session, owner_signature, mint(nft, account), signer=LocalSigner.generate()
    )
    assert sessions.h.rejected(op).reason == "AA24"
    assert not module.isSessionActive(account, session.session_id(account, 0))


# ------------------------------------------------------------------------------------------------------
# Who the session belongs to
# ------------------------------------------------------------------------------------------------------


def test_wrong_signer_is_a_signature_failure(sessions, owner, session_key, nft):
    account = sessions.account(owner)
    sessions.grant_onchain(account, owner, mint_session(session_key, nft, account))
    op = sessions.op(account, session_key, mint(nft, account), signer=LocalSigner.generate())
    assert sessions.h.rejected(op).reason == "AA24"
    # with the key named in the signature, the policy passes and the signature check still fails
    op = sessions.op(
        account, session_key, mint(nft, account), mode="use_with_key", signer=LocalSigner.generate()
    )
    assert sessions.h.rejected(op).reason == "AA24"


def test_session_of_account_a_is_useless_on_account_b(sessions, owner, session_key, nft):
    account_a = sessions.account(owner, salt=1)
    account_b = sessions.account(LocalSigner.generate(), salt=2)
    sessions.grant_onchain(account_a, owner, mint_session(session_key, nft, account_a))
    assert sessions.h.rejected(sessions.op(account_b, session_key, mint(nft, account_b))).reason == "AA24"
    error = sessions.h.rejected(
        sessions.op(account_b, session_key, mint(nft, account_b), mode="use_with_key")
    )
    assert "NoPermission" in str(error)


def test_module_never_signs_erc1271_for_the_account(sessions, owner, session_key, nft, module, project):
    """A session key must not be able to sign permits or logins for the account."""
    account = sessions.account(owner)
    sessions.grant_onchain(account, owner, mint_session(session_key, nft, account))
    digest = b"\x33" * 32
    signature = bytes.fromhex(module.address[2:]) + session_key.sign_hash(digest)
    assert project.KeyscopeAccount.at(account).isValidSignature(digest, signature) != bytes.fromhex(
        "1626ba7e"
    )
    assert module.isValidSignatureWithSender(account, digest, session_key.sign_hash(digest)) == bytes.fromhex(
        "ffffffff"
    )


def test_one_key_two_sessions_with_distinct_permissions(sessions, owner, session_key, nft, target):
    account = sessions.account(owner)
    sessions.grant_onchain(account, owner, mint_session(session_key, nft, account))
    other = Session(
        session_key=session_key.address,
        permissions=(Permission(target=target.address, selector=keccak(b"other(uint256)")[:4]),),
        salt=1,
    )
    sessions.grant_onchain(account, owner, other)
    sessions.run(
        sessions.op(
            account,
            session_key,
            [mint(nft, account), Call.of(target.address, 0, target.other.encode_input(1))],
        )
    )
    assert nft.balanceOf(account) == 1 and target.calls() == 1


def test_a_permission_on_one_contract_never_calls_another_with_the_same_selector(
    sessions, owner, session_key, nft, module, project, deployer
):
    """A permission is found by the key, the target and the selector together: a session allowed ``safeMint`` on
    one NFT contract cannot call ``safeMint`` on another deployment of the same contract (the key signs for no
    permission there: AA24), and nothing is minted there. Were the target left out of the permission's storage key, the
    permission would be found for every contract with the selector."""
    account = sessions.account(owner)
    key = LocalSigner.generate()
    sessions.grant_onchain(account, owner, mint_session(key, nft, account))
    twin = project.DemoNFT.deploy(sender=deployer)
    error = sessions.h.rejected(sessions.op(account, key, mint(twin, account)))
    assert error.reason == "AA24", error
    assert twin.balanceOf(account) == 0
    sessions.run(sessions.op(account, key, mint(nft, account)))
    assert nft.balanceOf(account) >= 1


def test_overlapping_grant_for_the_same_key_is_refused(sessions, owner, session_key, nft, module, accounts):
    eoa = accounts[6]  # any address can play the account for enableSession: storage is keyed by msg.sender
    module.enableSession(mint_session(session_key, nft, eoa.address).as_abi(), sender=eoa)
    with ape.reverts(module.PermissionAlreadyGranted):
        module.enableSession(mint_session(session_key, nft, eoa.address, salt=5).as_abi(), sender=eoa)


# ------------------------------------------------------------------------------------------------------
# Uninstall, reinstall, invalidate
# ------------------------------------------------------------------------------------------------------


def test_uninstall_kills_sessions_and_reinstall_does_not_revive_them(
    sessions, owner, session_key, nft, module
):
    from conftest import KIND

    account = sessions.account(owner)
    session = mint_session(session_key, nft, account)
    owner_signature = sessions.owner_signature(account, owner, session)
    session_id = sessions.grant_onchain(account, owner, session)
    sessions.run(sessions.op(account, session_key, mint(nft, account)))

    sessions.h.owner_execute(account, owner, KIND.uninstall_validator_call(account, module.address))
    assert module.epochOf(account) != 0
    sessions.install(account, owner)
    assert not module.isSessionActive(account, session_id)
    assert sessions.h.rejected(sessions.op(account, session_key, mint(nft, account))).reason == "AA24"
    # nor does the old off-chain signature: it was bound to epoch 0
    replay = sessions.enable_op(account, session_key, session, owner_signature, mint(nft, account))
    assert "InvalidOwnerSignature" in str(sessions.h.rejected(replay))
    # a new grant works
    sessions.grant_onchain(account, owner, session)
    sessions.run(sessions.op(account, session_key, mint(nft, account)))
    assert nft.balanceOf(account) == 2


def test_while_uninstalled_the_session_nonce_lane_falls_back_to_the_owner(
    sessions, owner, session_key, nft, module
):
    from conftest import KIND

    account = sessions.account(owner)
    sessions.grant_onchain(account, owner, mint_session(session_key, nft, account))
    sessions.h.owner_execute(account, owner, KIND.uninstall_validator_call(account, module.address))
    assert sessions.h.rejected(sessions.op(account, session_key, mint(nft, account))).reason == "AA24"


def test_invalidate_all_sessions(sessions, owner, session_key, nft, module):
    account = sessions.account(owner)
    sessions.grant_onchain(account, owner, mint_session(session_key, nft, account))
    sessions.h.owner_execute(
        account, owner, Call.of(module.address, 0, module.invalidateAllSessions.encode_input())
    )
    assert sessions.h.rejected(sessions.op(account, session_key, mint(nft, account))).reason == "AA24"


def test_revoking_one_of_several_sessions_leaves_the_others(sessions, owner, nft, target, module):
    account = sessions.account(owner)
    keys = [LocalSigner.generate() for _ in range(3)]
    ids = [sessions.grant_onchain(account, owner, mint_session(k, nft, account)) for k in keys]
    sessions.revoke(account, owner, ids[0])  # the first: the last live one moves into its place
    assert sessions.h.rejected(sessions.op(account, keys[0], mint(nft, account))).reason == "AA24"
    for key in keys[1:]:
        sessions.run(sessions.op(account, key, mint(nft, account)))
    sessions.revoke(account, owner, ids[2])
    sessions.run(sessions.op(account, keys[1], mint(nft, account)))
    assert [module.isSessionActive(account, i) for i in ids] == [False, True, False]


def test_a_session_moved_in_the_live_list_is_still_found_by_invalidate_all(sessions, owner, nft, module):
    """Revoking a session moves the last live one into its place in the account's live list, and the moved session
    must learn its new place: revoke the first of three (the third moves), then the moved one (the second moves),
    and invalidateAllSessions must still find the second, and kill it. A moved session left with its old place
    would be removed from the wrong place, the second would drop out of the list, and its permission would
    outlive invalidateAllSessions and an uninstall."""
    account = sessions.account(owner)
    keys = [LocalSigner.generate() for _ in range(3)]
    ids = [sessions.grant_onchain(account, owner, mint_session(k, nft, account)) for k in keys]
    sessions.revoke(account, owner, ids[0])
    sessions.revoke(account, owner, ids[2])
    sessions.run(sessions.op(account, keys[1], mint(nft, account)))
    sessions.h.owner_execute(
        account, owner, Call.of(module.address, 0, module.invalidateAllSessions.encode_input())
    )
    assert [module.isSessionActive(account, i) for i in ids] == [False, False, False]
    error = sessions.h.rejected(sessions.op(account, keys[1], mint(nft, account), mode="use_with_key"))
    assert "NoPermission" in str(error)


def test_uninstall_clears_every_live_session(sessions, owner, nft, module):
    from conftest import KIND

    account = sessions.account(owner)
    keys = [LocalSigner.generate() for _ in range(4)]
    ids = [sessions.grant_onchain(account, owner, mint_session(k, nft, account)) for k in keys]
    sessions.revoke(account, owner, ids[1])
    sessions.h.owner_execute(account, owner, KIND.uninstall_validator_call(account, module.address))
    sessions.install(account, owner)
    for key in keys:
        error = sessions.h.rejected(sessions.op(account, key, mint(nft, account), mode="use_with_key"))
        assert "NoPermission" in str(error)
    # the same keys can be granted again, in the new epoch
    for key in keys:
        sessions.grant_onchain(account, owner, mint_session(key, nft, account))
    sessions.run(sessions.op(account, keys[3], mint(nft, account)))


def test_a_plain_transfer_permission_with_a_rule_is_refused_by_the_module(module, accounts, nft):
    """A plain-transfer permission (selector 0) runs no calldata, so a rule has no argument to read: the module
    refuses, with `InvalidRule`, a grant made without the SDK's checks that puts one on it (enabled, the permission
    would refuse every call it names, a grant that says one thing and does another), and enables the same
    permission without the rule (asked as calls, nothing stays enabled)."""
    plain = Session(
        session_key=LocalSigner.generate().address,
        permissions=(Permission(target=nft.address, selector=bytes(4)),),
    )
    module.enableSession.call(plain.as_abi(), sender=accounts[9])
    ruled = plain.permissions[0].model_copy(
        update={"rules": (Rule(condition=Condition.EQUAL, offset=0, values=(0,)),)}
    )
    with ape.reverts(module.InvalidRule):
        module.enableSession.call(
            plain.model_copy(update={"permissions": (ruled,)}).as_abi(), sender=accounts[9]
        )


def test_live_permission_cap(module, accounts, nft):
    eoa = accounts[8]
    cap = module.MAX_LIVE_PERMISSIONS()
    per_session = 16
    selectors = [keccak(f"f{i}()".encode())[:4] for i in range(per_session)]
    sessions_needed = cap // per_session
    for _ in range(sessions_needed):
        key = LocalSigner.generate()
        permissions = tuple(Permission(target=nft.address, selector=s) for s in selectors)
        module.enableSession(Session(session_key=key.address, permissions=permissions).as_abi(), sender=eoa)
    extra = Session(
        session_key=LocalSigner.generate().address,
        permissions=(Permission(target=nft.address, selector=SAFE_MINT),),
    )
    with ape.reverts(module.TooManyLivePermissions):
        module.enableSession(extra.as_abi(), sender=eoa)
    # uninstall-equivalent clean-up stays within a block
    receipt = module.invalidateAllSessions(sender=eoa)
    assert receipt.gas_used < 3_000_000
    module.enableSession(extra.as_abi(), sender=eoa)


# ------------------------------------------------------------------------------------------------------
# Signatures and other people's storage
# ------------------------------------------------------------------------------------------------------

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_malleated_high_s_signature_is_refused(sessions, owner, session_key, nft):
    """(r, n - s, v ^ 1) recovers to the same key; the module accepts only the low-s form."""
    account = sessions.account(owner)
    sessions.grant_onchain(account, owner, mint_session(session_key, nft, account))
    op = sessions.op(account, session_key, mint(nft, account))
    r, s, v = op.signature[:32], int.from_bytes(op.signature[32:64], "big"), op.signature[64]
    malleated = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))
    assert sessions.h.rejected(op.replace(signature=malleated)).reason == "AA24"
    sessions.run(op)


def test_nobody_else_can_revoke_or_invalidate_an_accounts_sessions(
    sessions, owner, session_key, nft, module, accounts
):
    """Storage is keyed by msg.sender: a stranger's revoke or invalidate only touches the stranger's records."""
    account = sessions.account(owner)
    session_id = sessions.grant_onchain(account, owner, mint_session(session_key, nft, account))
    stranger = accounts[9]
    module.revokeSession(session_id, sender=stranger)
    module.invalidateAllSessions(sender=stranger)
    module.onUninstall(b"", sender=stranger)
    assert module.isSessionActive(account, session_id)
    assert not module.isSessionRevoked(account, session_id)
    sessions.run(sessions.op(account, session_key, mint(nft, account)))


def test_an_erc7715_allowance_cannot_get_an_uncounted_twin_permission(session_key, nft, module, accounts):
    """Attack 92. A ``wallet_grantPermissions`` request pairs an ``erc20-token-transfer`` allowance (its
    ``transfer`` counted against 100 units) with a ``contract-call`` of the same token's ``transfer`` and no
    limit: were both granted, the session key would send the token through the uncounted twin while the page
    shows an allowance of 100. The SDK refuses the request before any page is shown, and the module refuses a
    session that repeats a (target, selector) even when the SDK is bypassed."""
    from keyscope.erc7715.mapping import plan_from_requests
    from keyscope.errors import BadInputError

    token = nft.address  # any contract: the permission's target is all that matters here
    base = {
        "chainId": hex(int(ape.chain.chain_id)),
        "expiry": 2_000_000_000,
        "signer": {"type": "key", "data": {"id": session_key.address}},
    }
    requests = [
        {
            **base,
            "permission": {"type": "erc20-token-transfer", "data": {"address": token, "allowance": "0x64"}},
        },
        {
            **base,
            "permission": {
                "type": "contract-call",
                "data": {"address": token, "function": "transfer(address to,uint256 amount)"},
            },
        },
    ]
    plan = plan_from_requests(requests)
    transfers = [p for p in plan.permissions if p.selector == keccak(b"transfer(address,uint256)")[:4]]
    assert len(transfers) == 2  # the twin is in the plan ...
    with pytest.raises(BadInputError, match=r"repeats transfer\(address,uint256\) on .*: merge the two"):
        plan.session(max_gas_cost=10**16, salt=0)  # ... and refused where the consent page is described

    # the same session forged past the SDK's validation (model_copy does not validate)
    eoa = accounts[8]  # any address can play the account for enableSession: storage is keyed by msg.sender
    valid = Session(
        session_key=session_key.address, permissions=plan.permissions[:4], valid_until=2_000_000_000
    )
    forged = valid.model_copy(update={"permissions": plan.permissions})
    with ape.reverts(module.PermissionAlreadyGranted):
        module.enableSession(forged.as_abi(), sender=eoa)
