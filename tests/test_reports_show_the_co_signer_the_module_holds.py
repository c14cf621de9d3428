"""A co-signed session's report says who co-signs it as the module holds it, not as it was granted.

The owner replaces a co-signer (its key leaked, say) or removes it (the dapp's service closed): from then on the
module checks the new co-signer's signature, or none, and the session key signs alone. A report judged on chain
(``session.status()``, ``owner.sessions()``, ``keyscope sessions``) and the dashboard's listing said "cosigned by"
the co-signer granted all the same, so an owner reviewing what a leaked key can do read a session the key now
drives alone as one that still needs a second signature.

On ape's local chain with the in-process bundler: the real module, its ``rotateCoSigner`` and ``coSignerOf``.
"""

from __future__ import annotations

from keyscope import SessionKey
from keyscope.consent.server import ConsentServer
from keyscope.consent.sessions import account_sessions
from keyscope.report import report_from_chain
from keyscope.signing import LocalSigner
from support.sdk import mint_policy, sdk_owner  # noqa: F401 -- sdk_owner: the owner fixture


def _co_signed(owner, nft):
    granted = LocalSigner.generate().address
    key = SessionKey.generate()
    grant = owner.grant(key, [mint_policy(nft, owner.account)], co_signer=granted, onchain=True)
    return grant, granted


def test_a_report_names_the_co_signer_the_owner_rotated_to(net, owner, nft):
    grant, granted = _co_signed(owner, nft)
    assert report_from_chain(net, grant).co_signer == granted
    replacement = LocalSigner.generate().address
    owner.rotate_co_signer(grant, replacement).wait()
    report = report_from_chain(net, grant)
    assert report.co_signer == replacement
    assert report.to_dict()["co_signer"] == replacement
    text = str(report)
    assert f"cosigned by {replacement}" in text and f"cosigned by {granted}" not in text
    assert [r.co_signer for r in owner.sessions()] == [replacement]


def test_a_report_says_the_key_signs_alone_once_the_owner_removed_the_co_signer(net, owner, nft):
    grant, granted = _co_signed(owner, nft)
    owner.rotate_co_signer(grant, None).wait()
    report = report_from_chain(net, grant)
    assert report.co_signer is None and report.to_dict()["co_signer"] is None
    text = str(report)
    assert f"cosigned by {granted}" not in text
    assert "session key signs alone" in text


def test_the_dashboard_lists_the_co_signer_the_module_holds(net, owner, nft, tmp_path):
    from keyscope.store import open_store

    grant, granted = _co_signed(owner, nft)
    store = open_store(f"sqlite:///{tmp_path / 'grants.db'}")
    store.put_grant(grant)
    describe = ConsentServer(net, store=store).describe  # the words the dashboard shows (not served here)

    def cosigner_words() -> str | None:
        (view,) = account_sessions(net, owner.account, store=store, describe=describe)
        assert view.description is not None
        return view.description.cosigner

    assert granted in (cosigner_words() or "")
    replacement = LocalSigner.generate().address
    owner.rotate_co_signer(grant, replacement).wait()
    words = cosigner_words() or ""
    assert replacement in words and "must also sign" in words
    owner.rotate_co_signer(grant, None).wait()
    words = cosigner_words() or ""
    assert "session key signs alone" in words and "must also sign" not in words
