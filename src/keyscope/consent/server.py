"""The owner's pages, served on 127.0.0.1: the consent page (a grant in words, signed in the owner's wallet) and
the sessions dashboard (every session of an account, revoked from the wallet).

::

    with ConsentServer(network, store=store) as server:
        consent = server.request_grant(owner.prepare_grant(key, [policy], valid_for=3600))
        print("ask the owner to open", consent.url)
        grant = consent.wait(timeout=600)          # checked: complete() verified the signature
        print("their sessions:", server.dashboard_url(grant.account))

The pages are plain HTML and one small script each, served from the package (no build step). The JSON API
under ``/api/`` is what they call; every string they show is set as text, never as markup.

Hardening: the server answers only requests whose ``Host`` is its own address (DNS rebinding), takes JSON
bodies only (so a form on another site cannot post to it: that needs a CORS preflight, which it never grants),
sends a Content-Security-Policy that allows no inline script and no framing (clickjacking) and a
Cross-Origin-Opener-Policy that leaves a page of another site that opened the consent page no handle to navigate it
with, and names every consent request by an unguessable id.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from importlib import resources
from string import Template
from typing import Any

from ..accounts.modules import claimed_module
from ..clock import utc_text, window_now
from ..endpoints import Endpoints
from ..erc7715 import SessionPlan, expiry_of, plan_from_requests
from ..errors import BadInputError, KeyscopeError, SessionStoreError, shown
from ..grant import SessionGrant
from ..hexutil import to_address, to_bytes
from ..http_service import (
    MAX_CONNECTIONS,
    BackgroundServer,
    LocalHTTPServer,
    LocalRequestHandler,
    NestedTooDeepError,
    content_length,
    json_body,
    send_body,
)
from ..json_objects import DuplicateKeyError
from ..module import decode_epoch, epoch_of_data, module_answers
from ..operations import DEFAULT_OWNER_MAX_GAS_COST
from ..owner import DEFAULT_MAX_GAS_COST, GrantRequest, module_claims
from ..standing_approvals import cached_standing_approvals
from ..store import SessionStore
from ..targets import is_keyscope_sponsor
from ..token_facts import cached_contract_facts, call_or_none, visible_text
from .describe import NO_ACCOUNT, Facts, GrantDescription, describe_session
from .requests import ConsentRequest, gas_cap, require_wallet_signable
from .sessions import OwnerOperation, account_sessions, describe_with, prepare_revocation
from .tokens import fallback_checker, module_checker

__all__ = ["ConsentServer"]

log = logging.getLogger("keyscope.consent")

MAX_BODY = 1 << 16
STATIC = {
    "keyscope.css": "text/css; charset=utf-8",
    "keyscope.js": "text/javascript; charset=utf-8",
    "consent.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
PAGES = {
    "consent.html": ("Grant a session key", "consent.js"),
    "dashboard.html": ("Your sessions", "dashboard.js"),
}
"""Each page's title and script; its content (inside ``<main>``, after the brand) is the file of its name,
set into the frame every page shares (``page.html``: head, stylesheet, brand, scripts)."""
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # a page of another site that opened this one (window.open) holds no handle on it: it cannot navigate the tab,
    # once the owner has read a request, to another request's page (the same address but for the id); a popup the
    # page opens itself (a wallet's signing window) keeps its handle, as popup wallets need
    "Cross-Origin-Opener-Policy": "same-origin-allow-popups",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_ADDRESS = r"0x[0-9a-fA-F]{40}"
_ID = r"[A-Za-z0-9_-]{16,64}"


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def _static(name: str) -> bytes:
    return (resources.files("keyscope.consent") / "static" / name).read_bytes()


def _page(name: str) -> bytes:
    title, script = PAGES[name]
    frame = Template(_static("page.html").decode())
    main = _static(name).decode().rstrip("\n")
    return frame.substitute(title=title, main=main, script=script).encode()


class ConsentServer(BackgroundServer):
    """Serves the consent page and the sessions dashboard for ``network`` (its node, bundler and module).

    ``store``: where granted sessions are kept (the dashboard lists its grants with their permissions in words;
    without it, the dashboard knows sessions from the module's events only). ``host`` defaults to 127.0.0.1 and
    ``port`` to a free one. ``max_gas_cost`` is the per-operation gas cap (integer wei; 0: no cap; a bool or a
    float is refused) of sessions asked through ERC-7715 without one; ``owner_max_gas_cost`` the most a revocation
    the dashboard prepares may cost in gas as the bundler prices it (0.1 ether unless given; 0: no cap), checked
    before the wallet is asked to sign its hash. ``max_connections``: the most connections
    served at once (every client of a server on 127.0.0.1 shares that address, so there is no share per address);
    one past it is answered 503 at once (:class:`~keyscope.http_service.LocalHTTPServer`).
    """

    def __init__(
        self,
        network: Endpoints,
        *,
        store: SessionStore | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_gas_cost: int = DEFAULT_MAX_GAS_COST,
        max_connections: int = MAX_CONNECTIONS,
        owner_max_gas_cost: int = DEFAULT_OWNER_MAX_GAS_COST,
    ) -> None:
        cap = gas_cap(max_gas_cost)  # False or 0.0 would be 0: no cap at all
        self.owner_max_gas_cost = gas_cap(owner_max_gas_cost)
        if not isinstance(network, Endpoints):
            raise BadInputError(
                "ConsentServer serves the grants of one network: give it keyscope.connect(node_url, bundler_url, "
                f"module=...), got {type(network).__name__} {shown(network)}"
            )
        if store is not None and not isinstance(store, SessionStore):
            raise BadInputError(
                f"ConsentServer takes an open session store, got {type(store).__name__} {shown(store)}: open it "
                "first, store=keyscope.store.open_store(url), or leave it out to keep no grant"
            )
        super().__init__(host, port, max_connections=max_connections)
        self.network = network
        self.store = store
        self.max_gas_cost = cap
        self._consents: dict[str, ConsentRequest] = {}
        self._operations: dict[str, OwnerOperation] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------------

    _what = "consent server"
    _thread_name = "keyscope-consent"

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        self._require_running()
        return f"http://{self.host}:{self.port}"

    def _bind(self) -> _Server:
        return _Server((self.host, self.port), self, **self.connection_options)

    def _started(self) -> None:
        log.info("consent pages at %s", self.url)

    # -- the Python API ------------------------------------------------------------------------------

    def facts(self, account: str) -> Facts:
        """What the chain says of contracts and of ``account``'s modules, for the words of a grant."""
        contract = cached_contract_facts(self.network.chain)
        chain = self.network.chain
        return Facts(
            contract,
            module_checker(chain, account),
            self.network.entry_point,
            self.network.module,
            lambda paymaster: is_keyscope_sponsor(chain, paymaster),
            fallback_checker(chain, account),
            cached_standing_approvals(chain, account),
            lambda address, data: call_or_none(chain, address, data),
        )

    def describe(self, grant: SessionGrant) -> GrantDescription:
        """``grant``'s session in words, as the pages show it."""
        return describe_with(self.network, self.facts(grant.account))(grant)

    def request_grant(self, request: GrantRequest) -> ConsentRequest:
        """Ask the owner to consent to ``request`` (made by :meth:`Owner.prepare_grant
        <keyscope.owner.Owner.prepare_grant>`; the owner need not hold a key here: see
        :class:`~keyscope.consent.wallet.WalletAddress`). Send the owner to the returned request's ``url``."""
        if not isinstance(request, GrantRequest):
            signed = (
                " (a SessionGrant is signed already: it needs no consent)"
                if isinstance(request, SessionGrant)
                else ""
            )
            raise BadInputError(
                f"request_grant takes the GrantRequest owner.prepare_grant(key, permissions, ...) returns, got "
                f"{type(request).__name__}{signed}; for ERC-7715 params, request_permissions(params)"
            )
        self._require_this_network(request)
        self._require_not_ended(
            request.session.valid_until, "the grant request's valid_until", "prepare a new one"
        )
        self._require_current_epoch(request)
        self._refuse_claimed_modules(request)
        require_wallet_signable(self.network, request)
        description = self.describe(request)
        return self._register(ConsentRequest(description=description, grant_request=request))

    def _require_this_network(self, request: GrantRequest) -> None:
        """Raise unless ``request`` is for this server's chain, module and EntryPoint: the page's words (a token's
        symbol and decimals, which addresses have code, the account's modules) are read from this server's node,
        and an address on another chain may be another contract (a token of other decimals: 100 "USDC" there
        may be 10**12 times as many)."""
        net = self.network
        for what, asked, served in (
            ("chain", request.chain_id, net.chain_id),
            ("module", request.module, net.module),
            ("EntryPoint", request.entry_point, net.entry_point),
        ):
            if asked != served:
                raise BadInputError(
                    f"the grant request is for the {what} {asked}; this server describes grants on its node's {what} "
                    f"{served}: prepare the grant on this server's network, or serve the page with a node of {asked}"
                )

    def _refuse_claimed_modules(self, request: GrantRequest) -> None:
        """Raise when a call target or signing domain of ``request`` says it is a module initialised for the account
        (:func:`~keyscope.accounts.modules.claimed_module`, attack 266): ``Owner.prepare_grant`` refuses such a grant
        before the request is made, and a request that reached the page otherwise (built by hand, or edited) is
        asked the same before it is shown."""
        claims = module_claims(request.session, request.account)
        claimed = claimed_module(self.network.chain, request.account, claims)
        if claimed is not None:
            target, what = claimed
            raise BadInputError(
                f"the grant request names {target}, which says it is a {what} module initialised for the account "
                f"{request.account} (isModuleType and isInitialized answer true): a session calling it, or signing in "
                "its domain, could change what it keeps for the account, and the module cannot refuse it on chain "
                "when the account does not list it. Owner.prepare_grant refuses such a grant; nothing was shown to "
                "the owner"
            )

    def _require_current_epoch(self, request: GrantRequest) -> None:
        """Raise unless ``request`` is at the account's epoch at the module now: the module hashes an off-chain
        grant at the account's epoch when it is first used, and a grant at a later epoch (the page does not show the
        epoch) would come to life when the account reaches it: "revoke every session" moves the account to an epoch
        drawn from the block, but an install over a failed uninstall's leftovers moves it by one (attack 319)."""
        net = self.network
        with module_answers(net.chain, net.module):
            epoch = decode_epoch(net.chain.call(net.module, epoch_of_data(request.account)), net.module)
        if request.epoch != epoch:
            raise BadInputError(
                f"the grant request is at epoch {request.epoch}; the account {request.account} is at epoch {epoch} at "
                f"the module {net.module}: the module would refuse the owner's signature of it now, and take it "
                "should the account ever reach that epoch. Prepare the grant request again (Owner.prepare_grant reads "
                "the epoch). Nothing was shown to the owner"
            )

    def request_permissions(self, params: Any) -> ConsentRequest:
        """Ask for ERC-7715 ``wallet_grantPermissions`` params (a list of ``PermissionRequest``): the page shows
        them in words; the wallet that connects grants them on its account (the requests' ``address``, or its
        keyscope account). The request's ``responses`` are the ``PermissionResponse`` objects once granted.
        Raises :class:`~keyscope.erc7715.UnsupportedTypeError` for a type keyscope cannot grant."""
        plan = plan_from_requests(params)
        if plan.chain_id != self.network.chain_id:
            raise BadInputError(
                f"the requests are for chain {plan.chain_id}; this server's node is on chain {self.network.chain_id}: "
                f"ask for chainId {hex(self.network.chain_id)}, or serve the page with a node of chain {plan.chain_id}"
            )
        self._require_not_ended(
            plan.valid_until,
            f"the requests' expiry {expiry_of(plan.valid_until)} is the second the session must have ended by, so "
            "its last valid second",
            "ask for an expiry in the future",
        )
        return self._register(
            ConsentRequest(description=self._describe_plan(plan), plan=plan, max_gas_cost=self.max_gas_cost)
        )

    def _require_not_ended(self, valid_until: int, what: str, todo: str) -> None:
        """Raise before the owner is shown a session that has already ended (on the later of the chain's latest
        block time and the wall clock): the module would enable it, but the EntryPoint would refuse each of its
        operations as expired (AA22), so the owner would sign for nothing."""
        now = window_now(self.network.chain.block_timestamp())
        if valid_until and valid_until < now:
            raise BadInputError(
                f"{what} {valid_until} ({utc_text(valid_until)}) is already past: it is {now - valid_until}s before "
                f"now ({utc_text(now)}); the EntryPoint would refuse every operation of the session as expired "
                f"(AA22): {todo}. Nothing was shown to the owner"
            )

    def _describe_plan(self, plan: SessionPlan) -> GrantDescription:
        session = plan.session(max_gas_cost=self.max_gas_cost, salt=0)
        if plan.account is not None:
            return describe_session(
                session, account=plan.account, chain_id=plan.chain_id, facts=self.facts(plan.account)
            )
        return describe_session(
            session,
            account=NO_ACCOUNT,
            chain_id=plan.chain_id,
            facts=self.facts(NO_ACCOUNT),
            account_note=" (your account: the keyscope account of the wallet you connect)",
        )

    def dashboard_url(self, account: str) -> str:
        """The dashboard of ``account``'s sessions."""
        return f"{self.url}/sessions/{to_address(account, name='account')}"

    def _creation(self, account: str) -> tuple[str, bytes] | None:
        """The factory call that creates ``account``, from a grant of it in the store (for revoking a session of
        an account its first operation has not created yet)."""
        if self.store is None:
            return None
        net = self.network
        for grant in self.store.list_grants(account, on_corrupt=_skip):
            # a grant of this chain and module only: the account's grant of another chain (the same address there)
            # may name that chain's factory, which creates nothing here
            if grant.factory is not None and (grant.chain_id, grant.module) == (net.chain_id, net.module):
                return grant.factory, grant.factory_data
        return None

    def _register(self, consent: ConsentRequest) -> ConsentRequest:
        consent.url = f"{self.url}/consent/{consent.id}"
        with self._lock:
            self._consents[consent.id] = consent
        return consent

    # -- the JSON API --------------------------------------------------------------------------------

    def _consent(self, consent_id: str) -> ConsentRequest:
        consent = self._consents.get(consent_id)
        if consent is None:
            raise _Refusal(404, "no such consent request (it may have been answered on another server run)")
        return consent

    def api_get(self, path: str) -> Any:
        if match := re.fullmatch(rf"/api/consent/({_ID})", path):
            consent = self._consent(match.group(1))
            return {
                "state": consent.state,
                "owner": consent.owner,
                "chainId": consent.description.chain_id,
                "description": consent.description.model_dump(mode="json"),
                "sessionId": "0x" + consent.grant.session_id.hex() if consent.grant is not None else None,
            }
        if match := re.fullmatch(rf"/api/accounts/({_ADDRESS})/sessions", path):
            account = to_address(match.group(1))
            # a grant the store cannot read (a file cut off mid-write, a damaged row: any account's, in a store of
            # files) is named, not an error: an error hid every live session of the account from its owner, and
            # left "revoke every session" disabled
            unreadable: list[str] = []
            views = account_sessions(
                self.network,
                account,
                store=self.store,
                describe=describe_with(self.network, facts := self.facts(account)),
                facts=facts,
                # the name is whoever wrote the store's (a file's name): written visible, as every string of the pages
                on_corrupt=lambda name, _error: unreadable.append(visible_text(name)),
            )
            return {
                "account": account,
                "chainId": self.network.chain_id,
                "now": self.network.chain.block_timestamp(),
                "sessions": [view.model_dump(mode="json") for view in views],
                "unreadable": unreadable,
            }
        raise _Refusal(404, f"nothing at {path}")

    def _require_own_sessions(self, account: str, session_ids: list[bytes]) -> None:
        """Raise unless every one of ``session_ids`` the store knows is a session of ``account``: the revocation is
        ``account``'s operation, so it revokes nothing of another account on chain, and its success must not mark
        another account's session revoked in the store, where every worker would refuse it."""
        if self.store is None:
            return
        for session_id in session_ids:
            grant = _stored_grant(self.store, session_id)
            if grant is not None and grant.account != account:
                raise BadInputError(
                    f"session 0x{session_id.hex()} is a session of {grant.account}, not of {account}: an account's "
                    f"owner revokes the account's own sessions; open the dashboard of {grant.account} to revoke it"
                )

    def api_post(self, path: str, body: dict[str, Any]) -> Any:
        if match := re.fullmatch(rf"/api/consent/({_ID})/(connect|signature|decline)", path):
            consent, action = self._consent(match.group(1)), match.group(2)
            if action == "connect":
                request = consent.connect(self.network, _field(body, "address"), _chain_id(body))
                return {"typedData": request.typed_data, "account": request.account}
            if action == "signature":
                grant = consent.complete(
                    _field(body, "signature"),
                    self.store.put_grant if self.store else None,
                    endpoints=self.network,
                )
                return {"sessionId": "0x" + grant.session_id.hex(), "account": grant.account}
            consent.decline()
            return {"state": consent.state}
        if match := re.fullmatch(rf"/api/accounts/({_ADDRESS})/revoke", path):
            account = to_address(match.group(1))
            creation = self._creation(account)
            if body.get("all") is True:
                operation = prepare_revocation(
                    self.network, account, None, creation=creation, max_gas_cost=self.owner_max_gas_cost
                )
            else:
                ids = body.get("sessionIds")
                if not isinstance(ids, list) or not ids:
                    raise BadInputError("give 'sessionIds' (a list of session ids) or 'all': true")
                session_ids = [to_bytes(i, name="session id", length=32) for i in ids]
                self._require_own_sessions(account, session_ids)
                operation = prepare_revocation(
                    self.network,
                    account,
                    session_ids,
                    creation=creation,
                    max_gas_cost=self.owner_max_gas_cost,
                )
            with self._lock:
                self._operations[operation.id] = operation
            return {
                "operationId": operation.id,
                "userOpHash": "0x" + operation.user_op_hash.hex(),
                "what": operation.what,
            }
        if match := re.fullmatch(rf"/api/operations/({_ID})/signature", path):
            with self._lock:
                waiting = self._operations.get(match.group(1))
            if waiting is None:
                raise _Refusal(404, "no such operation waiting for a signature")
            operation = waiting
            receipt = operation.finish(_field(body, "signature"), signer=body.get("from"))
            with self._lock:
                self._operations.pop(operation.id, None)
            if receipt.success and self.store is not None:  # every worker refuses them at once too
                revoked = operation.session_ids
                if revoked is None:
                    revoked = tuple(
                        g.session_id for g in self.store.list_grants(operation.account, on_corrupt=_skip)
                    )
                net = self.network
                for session_id in revoked:
                    # the operation revoked the sessions of its own account only, at this module on this chain: a
                    # grant of another account, or of the account at another deployment of the module or on another
                    # chain (the same address there), is not touched: every worker refuses a session marked here,
                    # and a store's listing reads it revoked, while its key still works where it lives
                    stored = _stored_grant(self.store, session_id)
                    if stored is not None and (stored.account, stored.module, stored.chain_id) == (
                        operation.account,
                        net.module,
                        net.chain_id,
                    ):
                        self.store.mark_revoked(session_id)
            return {
                "success": receipt.success,
                "transactionHash": "0x" + receipt.transaction_hash.hex(),
                "what": operation.what,
            }
        raise _Refusal(404, f"nothing at {path}")


def _skip(name: str, error: SessionStoreError) -> None:
    """Leave out a grant the store cannot read: the account's revocation is built, and marked, on the others."""
    log.warning("grant %s left out: %s", name, error)


def _stored_grant(store: SessionStore, session_id: bytes) -> SessionGrant | None:
    try:
        return store.get_grant(session_id)
    except KeyscopeError:
        return None


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadInputError(f"the request body needs {name!r} (a string)")
    return value


def _chain_id(body: dict[str, Any]) -> int:
    value = body.get("chainId")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise BadInputError(f"'chainId' must be the wallet's chain id (eth_chainId), got {value!r}")


class _Handler(LocalRequestHandler):
    server: _Server
    logger = log

    def _allowed_host(self) -> bool:
        port = self.server.consent.port
        host = (self.headers.get("Host") or "").lower()
        return host in {f"127.0.0.1:{port}", f"localhost:{port}", f"{self.server.consent.host}:{port}"}

    def do_GET(self) -> None:
        if not self._allowed_host():
            self._json(421, {"error": "unknown Host: open this server by its own address"})
            return
        path = self.path.split("?", 1)[0]
        try:
            if re.fullmatch(rf"/consent/{_ID}", path):
                self._send(200, _page("consent.html"), "text/html; charset=utf-8")
            elif re.fullmatch(rf"/sessions/{_ADDRESS}", path):
                self._send(200, _page("dashboard.html"), "text/html; charset=utf-8")
            elif (name := path.removeprefix("/static/")) in STATIC and path.startswith("/static/"):
                self._file(name)
            elif path.startswith("/api/"):
                self._json(200, self.server.consent.api_get(path))
            else:
                self._json(404, {"error": f"nothing at {path}"})
        except _Refusal as refusal:
            self._json(refusal.status, {"error": refusal.message})
        except KeyscopeError as error:
            self._json(400, {"error": str(error)})
        except Exception:
            log.exception("GET %s failed", path)
            self._json(500, {"error": "internal error: see the server's log"})

    def do_POST(self) -> None:
        early: tuple[int, str] | None = None
        length = content_length(self)
        if not self._allowed_host():
            early = (421, "unknown Host: open this server by its own address")
        elif self.headers.get("Transfer-Encoding") is not None:
            # not read here: left on the connection, a chunked body's bytes were parsed as the next request
            early = (501, "Transfer-Encoding is not supported: send the body with a Content-Length")
        elif length is None:
            early = (400, "Content-Length must be a decimal number of bytes, given once")
        elif (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
            early = (415, "send JSON (Content-Type: application/json)")
        elif length > MAX_BODY:
            early = (413, f"request body over {MAX_BODY} bytes")
        if early is not None:
            # the body is left unread: the connection cannot carry another request
            self.close_connection = True
            self._json(early[0], {"error": early[1]})
            return
        assert length is not None
        path = self.path.split("?", 1)[0]
        try:
            body = json_body(self.rfile.read(length) or b"{}")
        except NestedTooDeepError:
            self._json(
                400, {"error": "the request body is not JSON that can be read: it is nested too deeply"}
            )
            return
        except DuplicateKeyError as error:
            self._json(400, {"error": str(error)})
            return
        except ValueError:
            # bad JSON, bytes that are not UTF-8, or a number past Python's digit limit: each a ValueError, of which
            # JSONDecodeError is only the first
            self._json(400, {"error": "the request body is not JSON"})
            return
        try:
            if not isinstance(body, dict):
                raise BadInputError("the request body must be a JSON object")
            self._json(200, self.server.consent.api_post(path, body))
        except _Refusal as refusal:
            self._json(refusal.status, {"error": refusal.message})
        except KeyscopeError as error:
            self._json(400, {"error": str(error)})
        except Exception:
            log.exception("POST %s failed", path)
            self._json(500, {"error": "internal error: see the server's log"})

    def _file(self, name: str) -> None:
        self._send(200, _static(name), STATIC[name])

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        send_body(self, status, body, content_type, SECURITY_HEADERS)


class _Server(LocalHTTPServer):
    def __init__(self, address: tuple[str, int], consent: ConsentServer, **limits: Any) -> None:
        self.consent = consent
        super().__init__(address, _Handler, **limits)
