"""More wrong input a newcomer gives the public surfaces as the README and docs write them: each is refused with a
KeyscopeError that says what was wrong and what to do, with bytes shown as hex, never a TypeError or a
RecursionError from deep inside. No chain is needed: all of it is refused before anything is sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from keyscope import Policy, Session, SessionGrant, SessionKey, arg, connect
from keyscope.bundler.pending import PendingUserOperation, wait_many
from keyscope.cli.commands import main as cli_main
from keyscope.cli.parsing import parse_call_args
from keyscope.consent import ConsentServer
from keyscope.erc7715 import address_of_did_key, capabilities, plan_from_requests
from keyscope.errors import BadInputError, InvalidAbiError, KeyscopeError
from keyscope.hexutil import to_address, to_bytes, to_int
from keyscope.local import LocalStack, LocalStackError
from keyscope.message_signing import check_sign_in, sign_in_message
from keyscope.owner import Owner
from keyscope.policy import parse_signature
from keyscope.scale import SessionWorker
from keyscope.session_account import SessionAccount
from keyscope.sponsor import SponsorshipPolicy
from keyscope.store import open_store
from test_error_surface import assert_clear

TARGET = "0x" + "cd" * 20
TOKEN = "0x" + "a0" * 20
DOMAIN = {"name": "Permit2", "chainId": 1, "verifyingContract": TARGET}
TYPES = {"Permit": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}]}


# --------------------------------------------------------------------------------------------------
# Policy.typed_data
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [None, 5, 1.5, True, object()])
def test_typed_data_rules_that_are_no_list_say_to_give_a_list(rules: Any) -> None:
    """``Policy.typed_data(domain, types, "Permit", None)`` raised ``TypeError: 'NoneType' object is not iterable``
    from inside the policy builder."""
    with pytest.raises(BadInputError) as caught:
        Policy.typed_data(DOMAIN, TYPES, "Permit", rules)
    message = assert_clear(caught.value, "rules")
    assert "arg(" in message, message


@pytest.mark.parametrize("primary", [["Permit"], {"Permit": 1}, None, 5, b"Permit"])
def test_a_primary_type_that_is_no_name_is_refused_naming_it(primary: Any) -> None:
    """A list or a dict as the primary type raised ``TypeError: unhashable type``."""
    with pytest.raises(BadInputError) as caught:
        Policy.typed_data(DOMAIN, TYPES, primary, [arg("amount") <= 10])
    assert_clear(caught.value, "primary type")


def test_rules_reaching_into_more_nested_structs_than_the_module_expands_say_so() -> None:
    """Four rules three structs deep reach into eleven nested structs, past the eight the module expands per
    permission: the builder said "nested lists at most 8 word indices of 16 bits", a list nobody gave it. Now it
    names the structs, the count and the limit; two of the rules (six structs) are taken."""
    types = {
        "C": [{"name": "x", "type": "uint256"}],
        "B": [{"name": "r", "type": "C"}],
        "A": [{"name": "p", "type": "B"}, {"name": "q", "type": "B"}],
        "Order": [{"name": "a", "type": "A"}, {"name": "b", "type": "A"}, {"name": "c", "type": "A"}],
    }
    deep = [arg(*path, "r", "x") <= 5 for path in (("a", "p"), ("b", "p"), ("c", "p"), ("a", "q"))]
    with pytest.raises(BadInputError) as caught:
        Policy.typed_data(DOMAIN, types, "Order", deep)
    message = assert_clear(caught.value, "nested structs")
    assert "reach into 11 nested structs (a, b, c, a.p, a.q, b.p, c.p, a.p.r, a.q.r, b.p.r, c.p.r)" in message
    assert "at most 8 per permission" in message and "fewer nested structs" in message, message
    assert len(Policy.typed_data(DOMAIN, types, "Order", deep[:2]).nested) == 6


# --------------------------------------------------------------------------------------------------
# signatures nested past any contract's
# --------------------------------------------------------------------------------------------------


def test_a_signature_nesting_tuples_without_end_is_an_abi_error_not_a_recursion_error() -> None:
    """``Policy.call(target, "f((((...))))")`` (or ``session.execute`` with it) recursed until Python's
    RecursionError: the JSON ABI is refused past 256 levels (tests/test_named_files.py), the signature never was."""
    deep = "f(" + "(" * 600 + "uint256" + ")" * 600 + ")"
    with pytest.raises(InvalidAbiError) as caught:
        parse_signature(deep)
    assert "nest" in str(caught.value), caught.value
    with pytest.raises(InvalidAbiError):
        Policy.call(TARGET, deep)
    # as deep as an ABI's JSON may nest still reads
    assert parse_signature("f(" + "(" * 100 + "uint256" + ")" * 100 + ")").name == "f"


def test_a_command_line_array_nested_without_end_is_refused_not_a_recursion_error() -> None:
    """``ape run send ... f(uint256[]) '[[[[...]]]]'``: the JSON decoder's RecursionError reached the user."""
    with pytest.raises(BadInputError) as caught:
        parse_call_args("f(uint256[] xs)", ["[" * 20_000 + "]" * 20_000])
    message = assert_clear(caught.value, "xs")
    assert len(message) < 600, message


# --------------------------------------------------------------------------------------------------
# ERC-7715: values shown as hex, capabilities
# --------------------------------------------------------------------------------------------------


def _request(**data: Any) -> dict[str, Any]:
    return {
        "chainId": "0x7a69",
        "expiry": 4_000_000_000,
        "signer": {"type": "key", "data": {"id": "0x" + "5e" * 20}},
        "permission": {"type": "native-token-transfer", "data": data},
        "policies": [],
    }


@pytest.mark.parametrize("field", ["allowance", "periodDuration"])
def test_an_erc7715_amount_given_as_bytes_is_shown_as_hex(field: str) -> None:
    """``{"allowance": b"\\x01"}`` was refused as ``b'\\x01' is not an integer``: a Python bytes literal."""
    data: dict[str, Any] = {"allowance": "0x10", field: b"\x01\x02"}
    with pytest.raises(BadInputError) as caught:
        plan_from_requests([_request(**data)])
    message = assert_clear(caught.value, field)
    assert "0x0102" in message, message


def test_a_did_key_given_as_bytes_is_shown_as_hex() -> None:
    with pytest.raises(BadInputError) as caught:
        address_of_did_key(b"\x01\x02")  # type: ignore[arg-type]
    message = assert_clear(caught.value, "did:key")
    assert "0x0102" in message, message


def test_capabilities_take_chain_ids_as_the_wire_writes_them() -> None:
    """``capabilities(["0x7a69"])``, the chain ids as wallet_getCapabilities' params hold them, raised
    ``TypeError: 'str' object cannot be interpreted as an integer``."""
    assert capabilities(["0x7a69"]) == capabilities([31337])


@pytest.mark.parametrize("chain_ids", [None, 5, "0x7a69", [None], [1.5], [-1], [0], ["zz"], [True]])
def test_capabilities_of_junk_chain_ids_say_what_a_chain_id_is(chain_ids: Any) -> None:
    with pytest.raises(BadInputError) as caught:
        capabilities(chain_ids)
    assert_clear(caught.value, "chain id")


# --------------------------------------------------------------------------------------------------
# sending and waiting
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("calls", [None, 5, 1.5])
def test_a_batch_that_is_no_list_of_calls_says_to_give_calls(calls: Any) -> None:
    """``session.execute_batch(None)`` and ``session.send_calls(5)`` raised ``TypeError: ... is not iterable``.
    The refusal comes before the account is asked anything, so an account without a chain shows it."""
    account = object.__new__(SessionAccount)
    for send in (account.execute_batch, account.send_calls):
        with pytest.raises(BadInputError) as caught:
            send(calls)
        message = assert_clear(caught.value, "call")
        assert "Call" in message, message


@pytest.mark.parametrize("timeout", [None, "60", "x", [1], b"\x01"])
def test_waiting_for_a_receipt_with_a_timeout_that_is_no_number_is_bad_input(timeout: Any) -> None:
    """``pending.wait(None)`` ("no timeout") raised ``TypeError: '>=' not supported between instances of
    'NoneType' and 'int'``, after the operation had been sent."""
    pending = PendingUserOperation(object(), "0x" + "00" * 32)  # type: ignore[arg-type]
    with pytest.raises(BadInputError) as caught:
        pending.wait(timeout)
    assert_clear(caught.value, "timeout")
    with pytest.raises(BadInputError):
        wait_many([pending], 1, poll=timeout)


# --------------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------------


def test_python_dash_m_keyscope_runs_the_keyscope_command() -> None:
    """``python -m keyscope sessions ...`` said "No module named keyscope.__main__; 'keyscope' is a package and
    cannot be directly executed": the command is ``keyscope`` and ``python -m keyscope.cli``, but a newcomer
    without the entry point on PATH (a venv not activated) tries the package's name first."""
    ran = subprocess.run(
        [sys.executable, "-m", "keyscope", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert "sessions" in ran.stdout and "Traceback" not in ran.stderr


def test_keyscope_errors_keep_their_root() -> None:
    assert issubclass(InvalidAbiError, KeyscopeError) and issubclass(BadInputError, KeyscopeError)


# --------------------------------------------------------------------------------------------------
# stores and the hex helpers: bytes as hex, and a long value cut short
# --------------------------------------------------------------------------------------------------

_LONG = "x" * 50_000  # a grant's JSON or a whole file, given where an id goes


def _store_calls(store: Any, value: Any) -> list[tuple[str, Any]]:
    account = "0x" + "ac" * 20
    session = "0x" + "5e" * 32
    return [
        ("label", lambda: store.put_key(SessionKey.generate(), label=value)),
        ("worker_id", lambda: store.lease_lane(account, session, value, 60)),
        ("ttl_seconds", lambda: store.lease_lane(account, session, "worker-1", value)),
        ("outbox state", lambda: store.list_outbox(state=value)),
        ("limit", lambda: store.list_outbox(limit=value)),
        ("session id", lambda: store.get_grant(value)),
        ("session id", lambda: store.mark_revoked(value)),
    ]


@pytest.mark.parametrize("value", [b"\x01\x02", _LONG], ids=["bytes", "long"])
def test_a_store_refusal_shows_bytes_as_hex_and_cuts_a_long_value(value: Any) -> None:
    """``store.put_key(key, label=b"\\x01\\x02")`` said ``got b'\\x01\\x02'``; a 50,000-character session id or
    worker id was repeated whole in the message (and so in every log line that records it)."""
    with open_store("memory://") as store:
        for name, call in _store_calls(store, value):
            with pytest.raises(BadInputError) as caught:
                call()
            message = assert_clear(caught.value, name)
            assert len(message) < 600, (name, len(message), message[:200])
            if isinstance(value, bytes):
                assert "0x0102" in message, message


@pytest.mark.parametrize(
    "convert", [lambda v: to_bytes(v, name="session id", length=32), lambda v: to_int(v, name="value")]
)
def test_the_hex_helpers_cut_a_long_value_in_their_refusal(convert: Any) -> None:
    with pytest.raises(BadInputError) as caught:
        convert(_LONG)
    message = assert_clear(caught.value)
    assert len(message) < 600, len(message)


# --------------------------------------------------------------------------------------------------
# the consent server: what it is built with and what it is asked
# --------------------------------------------------------------------------------------------------


def _network() -> Any:
    """A network whose node and bundler are never reached: everything below is refused before."""
    return connect("http://127.0.0.1:9", "http://127.0.0.1:9", module="0x" + "11" * 20)


@pytest.mark.parametrize("store", ["sqlite:///sessions.db", 5, {}])
def test_a_consent_server_given_a_store_url_says_to_open_the_store_first(store: Any) -> None:
    """``ConsentServer(net, store="sqlite:///sessions.db")`` was taken, and served the page: the owner's signature
    then met ``'str' object has no attribute 'put_grant'`` (a 500), so the owner signed for nothing and
    ``wait()`` went on waiting."""
    with pytest.raises(BadInputError) as caught:
        ConsentServer(_network(), store=store)
    message = assert_clear(caught.value, "store")
    assert "open_store" in message, message


@pytest.mark.parametrize("network", [None, "http://127.0.0.1:8545", 5])
def test_a_consent_server_without_a_network_is_refused_naming_connect(network: Any) -> None:
    with pytest.raises(BadInputError) as caught:
        ConsentServer(network)
    message = assert_clear(caught.value, "network")
    assert "connect(" in message, message


@pytest.mark.parametrize("port", ["8080x", 1.5, None, True])
def test_a_consent_server_port_that_is_no_port_is_refused_before_it_starts(port: Any) -> None:
    """``ConsentServer(net, port="x").start()`` raised socketserver's ``TypeError: 'str' object cannot be
    interpreted as an integer``."""
    with pytest.raises(BadInputError) as caught:
        ConsentServer(_network(), port=port).start()
    assert_clear(caught.value, "port")


def test_request_grant_of_something_else_than_a_grant_request_says_what_it_takes() -> None:
    """``server.request_grant(owner)`` (or 5) raised ``AttributeError: ... has no attribute 'chain_id'``; a signed
    ``SessionGrant`` was served, and the owner's signature then met ``'SessionGrant' object has no attribute
    'complete'``. Both are refused before a page is served."""
    server = ConsentServer(_network())
    grant = SessionGrant.model_construct()
    for wrong in (5, "0x" + "11" * 20, object(), grant):
        with pytest.raises(BadInputError) as caught:
            server.request_grant(wrong)
        message = assert_clear(caught.value, "request")
        assert "prepare_grant" in message, message


@pytest.mark.parametrize("requests", [5, 1.5, None, object()])
def test_erc7715_params_that_are_no_list_say_what_they_take(requests: Any) -> None:
    """``plan_from_requests(5)`` (so ``server.request_permissions(5)``) raised ``TypeError: 'int' object is not
    iterable``."""
    with pytest.raises(BadInputError) as caught:
        plan_from_requests(requests)
    assert_clear(caught.value, "PermissionRequest")


# --------------------------------------------------------------------------------------------------
# keyscope.local.LocalStack, as the README writes it
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"chain_id": "31337x"}, "chain_id"),
        ({"chain_id": -1}, "chain_id"),
        ({"chain_id": 1.5}, "chain_id"),
        ({"node_port": "8545x"}, "node_port"),
        ({"node_port": 99999}, "node_port"),
        ({"bundler_port": -5}, "bundler_port"),
        ({"block_time": "1"}, "block_time"),
        ({"log_dir": 5}, "log_dir"),
    ],
)
def test_a_local_stack_of_options_it_cannot_use_is_refused_before_anything_starts(
    options: dict[str, Any], named: str
) -> None:
    """``LocalStack(chain_id=-1)`` started anvil, which said ``error: unexpected argument '-1' found``;
    ``block_time="1"`` and ``log_dir=5`` raised a TypeError. ``python -m keyscope.local`` refuses each in words; the
    class the README shows took them."""
    with pytest.raises(LocalStackError) as caught:
        LocalStack(**options)
    message = assert_clear(caught.value, named)
    assert "anvil" not in message.split(":")[0], message


# --------------------------------------------------------------------------------------------------
# signing in (EIP-4361)
# --------------------------------------------------------------------------------------------------

_SIGN_IN = {
    "domain": "app.example.com",
    "address": "0x" + "ac" * 20,
    "uri": "https://app.example.com",
    "chain_id": 1,
    "nonce": "abcdef0123",
    "issued_at": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize("field", ["domain", "uri", "nonce", "issued_at", "statement", "expiration_time"])
@pytest.mark.parametrize("value", [None, 5, b"app.example.com", ["app.example.com"]])
def test_a_sign_in_field_that_is_no_text_is_refused_naming_it(field: str, value: Any) -> None:
    """``session.sign_in(None, uri=...)`` raised ``TypeError: unsupported operand type(s) for +: 'NoneType' and
    'str'``; ``uri=5``, ``TypeError: argument of type 'int' is not iterable``."""
    if value is None and field in ("statement", "expiration_time"):
        return  # optional: None leaves them out
    fields = {**_SIGN_IN, field: value}
    with pytest.raises(BadInputError) as caught:
        sign_in_message(fields.pop("domain"), fields.pop("address"), **fields)
    message = assert_clear(caught.value, field.replace("_", " "), field)
    assert "text" in message or "string" in message, message


@pytest.mark.parametrize("message", [None, 5, 1.5, ["app.example.com"]])
def test_a_sign_in_message_that_is_no_text_is_refused_as_such(message: Any) -> None:
    """``session.sign_in_message(None)`` raised ``TypeError: cannot convert 'NoneType' object to bytes``, and
    ``sign_in_message(5)`` was read as five zero bytes and refused for its first line ``'\\x00\\x00\\x00\\x00\\x00'``."""
    session = Session(session_key=TARGET, permissions=(Policy.call(TARGET, "f()"),))
    with pytest.raises(BadInputError) as caught:
        check_sign_in(session, message, account="0x" + "ac" * 20, session_id="0x" + "00" * 32, now=0)
    message_text = assert_clear(caught.value, "sign-in message")
    assert "EIP-4361" in message_text, message_text


@pytest.mark.parametrize("grant", [None, 5, "x", b"\x01"])
def test_rotating_the_co_signer_of_no_grant_names_the_grant(grant: Any) -> None:
    """``owner.rotate_co_signer(5, None)`` said ``value must be bytes or a 0x-hex string, got int``: which value? The
    refusal comes before the chain is read, so an owner without a chain shows it."""
    owner = object.__new__(Owner)
    with pytest.raises(BadInputError) as caught:
        owner.rotate_co_signer(grant, None)
    message = assert_clear(caught.value, "grant")
    assert not message.startswith("value "), message


# --------------------------------------------------------------------------------------------------
# keyscope.scale.SessionWorker
# --------------------------------------------------------------------------------------------------


def test_a_worker_given_a_store_url_or_no_network_says_what_it_takes() -> None:
    """``SessionWorker("sqlite:///sessions.db", net)`` and ``SessionWorker(store, None)`` were taken, and failed
    at the first send with an AttributeError."""
    with open_store("memory://") as store:
        with pytest.raises(BadInputError) as caught:
            SessionWorker("sqlite:///sessions.db", _network(), background=False, events=None)
        message = assert_clear(caught.value, "store")
        assert "open_store" in message, message
        for network in (None, "http://127.0.0.1:8545"):
            with pytest.raises(BadInputError) as caught:
                SessionWorker(store, network, background=False, events=None)
            message = assert_clear(caught.value, "network")
            assert "connect(" in message, message


@pytest.mark.parametrize(
    "option",
    [
        {"lease_ttl": "30"},
        {"lease_ttl": None},
        {"resubmit_after": float("nan")},
        {"idle_seconds": "x"},
        {"retry_seconds": -1},
        {"lane_timeout": "x"},
        {"worker_id": 5},
        {"probe_threads": "x"},
    ],
)
def test_a_worker_option_that_is_no_number_of_seconds_is_refused_naming_it(option: dict[str, Any]) -> None:
    """``lease_ttl="30"`` raised ``TypeError: '<=' not supported``; ``idle_seconds="x"``, a negative
    ``retry_seconds`` and the others were taken, to fail (or misbehave) later in a background thread."""
    (name,) = option
    with open_store("memory://") as store, pytest.raises(BadInputError) as caught:
        SessionWorker(store, _network(), background=False, events=None, **option)
    assert_clear(caught.value, name)


def test_a_model_refusal_that_shows_the_value_already_does_not_repeat_it() -> None:
    """``{"total_budget_wei": -1}`` in a sponsorship policy read ``a budget in wei must not be negative, got -1
    (got -1)``."""
    with pytest.raises(BadInputError) as caught:
        SponsorshipPolicy.from_dict({"targets": "any", "total_budget_wei": -1})
    message = assert_clear(caught.value, "total_budget_wei")
    assert message.count("got -1") == 1, message


def test_a_deployments_file_without_the_module_says_so_not_to_give_it(tmp_path) -> None:
    """``keyscope consent REQUESTS --deployments FILE`` with a file whose ``module`` key is misspelled said ``give
    --module (or --deployments with them)``: the deployments were given; what they lack was not said."""
    requests = tmp_path / "requests.json"
    request = _request()
    request["permission"] = {
        "type": "contract-call",
        "data": {"address": TOKEN, "function": "mint(address to)"},
    }
    requests.write_text(json.dumps([request]))
    deployments = tmp_path / "deployments.json"
    deployments.write_text(
        json.dumps(
            {"rpc_url": "http://127.0.0.1:9", "bundler_url": "http://127.0.0.1:9", "modul": "0x" + "11" * 20}
        )
    )
    result = CliRunner().invoke(
        cli_main, ["consent", str(requests), "--deployments", str(deployments), "--store", "memory://"]
    )
    assert result.exit_code != 0
    assert "Traceback" not in result.output, result.output
    assert "deployments.json has no module" in result.output, result.output


@pytest.mark.parametrize("digits", [63, 65, 62, 66])
def test_a_key_a_digit_off_given_for_an_address_is_not_shown(digits: int) -> None:
    """A private key pasted with a digit lost or doubled, where an address goes, is refused without its digits
    (an exact 64-digit key never was shown)."""
    from keyscope.errors import InvalidAddressError
    from keyscope.hexutil import to_address

    key = "0x" + ("4c0883a69102937d6231471b5dbb6204fe512961708279f3c4f0b1f2c5a4e8d2" * 2)[:digits]
    with pytest.raises(InvalidAddressError) as refused:
        to_address(key, name="module")
    assert key[2:20] not in str(refused.value) and refused.value.value is None
    assert f"{digits} hex digits, near the form of a private key (not shown)" in str(refused.value)


def test_a_script_given_a_deployments_file_without_the_module_says_the_file_lacks_it(tmp_path) -> None:
    """``ape run grant`` with ``KEYSCOPE_DEPLOYMENTS`` naming a file whose ``module`` key is misspelled said ``pass
    --module, set KEYSCOPE_MODULE, or give --deployments FILE``: the file was given; what it lacks was not said."""
    from keyscope.cli.settings import ConnectionOptions, resolve_settings
    from keyscope.errors import ConfigurationError

    deployments = tmp_path / "stack.json"
    deployments.write_text(json.dumps({"rpc_url": "http://127.0.0.1:9", "modul": "0x" + "11" * 20}))
    with pytest.raises(ConfigurationError) as refused:
        resolve_settings(ConnectionOptions(deployments=str(deployments)))
    message = assert_clear(refused.value, "module")
    assert f"the deployments file {deployments} has no module" in message, message
    assert "give --deployments" not in message, message


@pytest.mark.parametrize("node_chain", [0x539, 0x7A69], ids=["another-chain", "same-chain"])
def test_a_bundler_of_another_chain_than_the_node_is_named_when_it_refuses(node_chain: int) -> None:
    """``connect(node of chain 1337, bundler of chain 31337, ...)`` then ``session.execute(...)`` ended in the
    bundler's ``AA23 ... InvalidOwnerSignature ... the owner must grant again``: the bundler simulated the operation
    on its own chain, and the owner, granting again, would get the same refusal. With both of one chain, the
    bundler's refusal is kept as it came."""
    from keyscope.bundler import BundlerClient
    from keyscope.chain import RpcChain
    from keyscope.endpoints import Endpoints
    from keyscope.errors import BundlerRejectedError, ConfigurationError
    from keyscope.operations import Draft, OperationBuilder
    from test_bundler_client import (
        ALTO_GAS_PRICE,
        ENTRY_POINT,
        SENDER,
        ScriptedServer,
        fail,
        ok,
        scripted_bundler,
        user_op,
    )

    refusal = fail(-32500, "UserOperation reverted during simulation with reason: AA23 reverted 0x")
    node = ScriptedServer().on("eth_chainId", ok(hex(node_chain))).on("eth_call", ok("0x" + "00" * 32))
    try:
        with scripted_bundler() as bundler_server:
            bundler_server.on("pimlico_getUserOperationGasPrice", ok(ALTO_GAS_PRICE))
            bundler_server.on("eth_estimateUserOperationGas", refusal).on("eth_sendUserOperation", refusal)
            with (
                BundlerClient(bundler_server.url, timeout=2.0) as bundler,
                RpcChain(node.url, timeout=2.0) as chain,
            ):
                builder = OperationBuilder(
                    Endpoints(chain=chain, bundler=bundler, module="0x" + "5e" * 20, entry_point=ENTRY_POINT)
                )
                for attempt in (
                    lambda: builder.prepare(Draft(sender=SENDER, call_data=b"", nonce_key=0), bytes(65)),
                    lambda: builder.send(user_op()),
                ):
                    with pytest.raises(
                        BundlerRejectedError if node_chain == 0x7A69 else ConfigurationError
                    ) as e:
                        attempt()
                    if node_chain != 0x7A69:
                        message = assert_clear(e.value, "chain")
                        assert f"the bundler {bundler_server.url} serves chain 31337" in message, message
                        assert f"the node {node.url} is chain 1337" in message, message
    finally:
        node.stop()


@pytest.mark.parametrize("name", ["grant.json", "  grant.json\n", "saved-grant"])
def test_a_grant_files_name_given_for_its_text_says_to_read_the_file(
    tmp_path, monkeypatch, name: str
) -> None:
    """``SessionGrant.from_json("grant.json")``, after ``grant.to_json()`` was saved there, said ``it is not JSON
    (expected value at line 1 column 1)``: the name was taken for the text, and nothing said so."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / name.strip()).write_text("{}")
    with pytest.raises(BadInputError) as refused:
        SessionGrant.from_json(name)
    message = assert_clear(refused.value, "file")
    assert f"{name.strip()!r} is the name of a file, not the grant's JSON text" in message, message
    assert f"SessionGrant.from_json(pathlib.Path({name.strip()!r}).read_text())" in message, message


def test_a_grant_files_path_given_for_its_text_says_to_read_the_file(tmp_path) -> None:
    """``SessionGrant.from_json(pathlib.Path("grant.json"))`` said ``got PosixPath``, a class name, and not what to
    give."""
    path = tmp_path / "grant.json"
    path.write_text("{}")
    with pytest.raises(BadInputError) as refused:
        SessionGrant.from_json(path)  # type: ignore[arg-type]
    message = assert_clear(refused.value, "file")
    assert "PosixPath" not in message, message
    assert f"SessionGrant.from_json(pathlib.Path({str(path)!r}).read_text())" in message, message


@pytest.mark.parametrize("value", ["abc", "0xzz", "0x123"])
def test_a_bytes_rule_value_that_is_no_hex_says_where_and_the_value_once(value: str) -> None:
    """``arg("x") == "abc"`` on a ``bytes4`` read ``argument `x` (bytes4) of f(bytes4): 'abc' is not bytes or
    0x-hex: argument `x` (bytes4) of f(bytes4) 'abc' is not hex data: ...``, the argument and the value twice."""
    with pytest.raises(BadInputError) as refused:
        Policy.call(TARGET, "f(bytes4 x)", rules=[arg("x") == value])
    message = assert_clear(refused.value, "hex")
    assert message.count("argument `x`") == 1 and message.count(repr(value)) == 1, message
    assert "give 0x followed by an even number of hex digits" in message, message


@pytest.mark.parametrize("targets", [[TARGET], "all", None])
def test_sponsorship_targets_of_neither_shape_say_the_two_shapes_once(targets: Any) -> None:
    """``"targets": ["0x…"]`` (a list of contracts) in a sponsorship policy read ``targets: Input should be 'any'
    ...; targets: Input should be a valid dictionary ...; see the example in keyscope.sponsor.policy's
    documentation``: two refusals of a union, and a module's docstring for the example."""
    with pytest.raises(BadInputError) as refused:
        SponsorshipPolicy.from_dict({"targets": targets})
    message = assert_clear(refused.value, "targets")
    assert (
        'targets: give "any", or an object mapping each contract to "any" or a list of its selectors'
        in message
    )
    assert "Input should be" not in message and "docs/sponsorship.md (Policy file)" in message, message


@pytest.mark.parametrize(
    ("policy", "said"),
    [
        (
            {"targets": {TARGET: ["safeMint(adress)"]}},
            f"not a sponsorship policy: targets.{TARGET}.0: in the function signature 'safeMint(adress)': 'adress' is not an ABI type",
        ),
        ({"targets": {TARGET: "safeMint(address)"}}, f"targets.{TARGET}: Input should be 'any' or a list"),
        ({"accounts": "all", "targets": "any"}, "accounts: Input should be 'any' or a list (got 'all')"),
        ({"factories": TARGET, "targets": "any"}, "factories: Input should be 'any' or a list"),
    ],
    ids=["misspelt-type", "one-selector-unlisted", "accounts-all", "one-factory-unlisted"],
)
def test_a_sponsorship_policy_mistake_inside_a_union_is_said_once(policy: dict[str, Any], said: str) -> None:
    """A misspelt type in a target's signature read ``targets: Input should be 'any' (got {...}); targets.0x…: Input
    should be 'any' (got [...]); targets.0x….0: 'adress' is not an ABI type``, and ``"accounts": "all"`` read
    ``Input should be 'any' ...; accounts: Input should be a valid tuple``: each union's branches refused in turn,
    in pydantic's words (JSON has no tuple), instead of the one mistake."""
    with pytest.raises(BadInputError) as refused:
        SponsorshipPolicy.from_dict(policy)
    message = assert_clear(refused.value)
    assert said in message, message
    assert message.count("Input should be") <= 1 and "tuple" not in message, message


def test_a_grant_written_with_camel_case_keys_names_those_keys_first() -> None:
    """A grant's JSON whose keys a dapp's frontend rewrote in camelCase (``chainId``, ``entryPoint``, ``sessionId``,
    ...) was refused with the fields it lacks first (``chain_id: Field required; ...``), and of the keys it has
    instead, the cause, only those that fit in the five problems shown (``sessionId`` among those left out)."""
    from test_wire_integers import _grant_json

    written = {
        "".join(part if i == 0 else part.title() for i, part in enumerate(key.split("_"))): value
        for key, value in _grant_json().items()
    }
    assert {"chainId", "entryPoint", "sessionId"} <= set(written)
    with pytest.raises(BadInputError) as refused:
        SessionGrant.from_json(json.dumps(written))
    message = assert_clear(refused.value, "chainId")
    assert message.startswith("not a session grant: chainId: Extra inputs are not permitted; entryPoint: "), (
        message
    )


@pytest.mark.parametrize(
    ("url", "meant"),
    [
        ("postgresql:app:s3cret@db/keyscope", "postgresql://app:***@db/keyscope"),
        ("postgres:/app:s3cret@db:5432/keyscope", "postgres://app:***@db:5432/keyscope"),
        ("sqlite:workers.sqlite", "sqlite:///workers.sqlite"),
    ],
)
def test_a_store_url_without_its_slashes_is_refused_not_made_a_folder_store(
    url: str, meant: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/scaling.md's ``open_store("postgresql://app@db/keyscope", ...)`` written without its ``//`` opened, and
    created, a folder store named ``postgresql:app:s3cret@db`` in the working directory: the workers ran on it
    while the operator looked at PostgreSQL, and the password was a folder's name. The command line said the URL
    back with its password whole."""
    monkeypatch.chdir(tmp_path)
    for secret in ({"kek": bytes(32)}, {"passphrase": "correct horse"}):
        with pytest.raises(BadInputError) as refused:
            open_store(url, **secret)  # type: ignore[arg-type]
        message = assert_clear(refused.value)
        assert f"give {meant!r}" in message and "s3cret" not in message, message
    said = CliRunner().invoke(cli_main, ["sessions", "--store", url])
    assert said.exit_code != 0 and f"give {meant!r}" in said.output and "s3cret" not in said.output, (
        said.output
    )
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_file_given_as_a_plain_path_with_a_kek_names_its_url(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/scaling.md opens SQL stores with ``kek=``; given an existing SQLite store's file name without
    ``sqlite:///``, the refusal said to give ``passphrase=`` instead of ``kek=``, which then failed otherwise."""
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///workers.sqlite", kek=bytes(32)).close()
    with pytest.raises(BadInputError) as refused:
        open_store("workers.sqlite", kek=bytes(32))
    message = assert_clear(refused.value)
    assert "give sqlite:///workers.sqlite" in message and "passphrase" not in message, message


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("kernel", "kind: give an adapter, not its name: kind=KernelAccountKind(...)"),
        ("NexusAccountKind", "kind: give an adapter, not its name: kind=NexusAccountKind(...)"),
        ("smart-account", "kind: give an account adapter from keyscope.accounts"),
        ("class", "kind: give an adapter, not its class: kind=KernelAccountKind(...)"),
    ],
)
def test_an_account_kind_that_is_no_adapter_is_refused_at_connect(kind: Any, said: str) -> None:
    """docs/accounts.md's ``connect(..., kind=KernelV033())``, written with the kind's name (``kind="kernel"``) or its
    class, was taken as it was: the owner's first step ended in ``AttributeError: 'str' object has no attribute
    'deployment'``."""
    from keyscope.accounts import KernelAccountKind

    given = KernelAccountKind if kind == "class" else kind
    with pytest.raises(BadInputError) as refused:
        connect("http://127.0.0.1:9", "http://127.0.0.1:10", module=TARGET, kind=given)
    message = assert_clear(refused.value)
    assert said in message and "leave kind out" in message, message


def test_a_factory_address_of_another_chain_is_said_to_have_no_contract_here(net: Any) -> None:
    """docs/networks.md deploys keyscope on a second chain; connected there with the first chain's factory address
    (where nothing is), a new owner was told the factory "does not say which accounts it creates (no
    implementation answering accountId())", as if a contract answered wrongly."""
    from keyscope import Network, UnsupportedAccountError
    from keyscope.signing import LocalSigner

    nowhere = to_address("0x" + "ab" * 20)
    elsewhere = Network(
        chain=net.chain, bundler=net.bundler, module=net.module, entry_point=net.entry_point, factory=nowhere
    )
    with pytest.raises(UnsupportedAccountError) as refused:
        elsewhere.owner(LocalSigner.generate())
    message = assert_clear(refused.value)
    assert f"there is no contract at the factory {nowhere} on chain {net.chain_id}" in message, message
    assert "docs/networks.md" in message and "does not say" not in message, message


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("one", "got one request: give it in a list, [request]"),
        ("rpc", "got an object with 'params': for the JSON-RPC request, give its params"),
    ],
)
def test_erc7715_params_given_as_one_request_or_the_whole_rpc_request_say_what_to_give(
    given: str, said: str
) -> None:
    """docs/erc7715.md's ``plan_from_requests(params)`` given one request object, or the whole
    ``{"method": "wallet_grantPermissions", "params": [...]}``, said only that it takes a list of requests."""
    request = {
        "chainId": "0x7a69",
        "expiry": 2_000_000_000,
        "signer": {"type": "account", "data": {"address": "0x" + "5b" * 20}},
        "permission": {"type": "contract-call", "data": {"address": "0x" + "a0" * 20, "function": "f()"}},
    }
    value: Any = request if given == "one" else {"method": "wallet_grantPermissions", "params": [request]}
    with pytest.raises(BadInputError) as refused:
        plan_from_requests(value)
    assert said in assert_clear(refused.value)


def test_a_misspelt_type_names_the_signature_it_is_in() -> None:
    """``safeMint(addres to)`` read only "'addres' is not an ABI type": in a grant of several permissions the owner
    had to search for the signature that held it. The refusal now quotes the signature whole."""
    with pytest.raises(InvalidAbiError) as refused:
        parse_signature("safeMint(addres to)")
    message = assert_clear(refused.value)
    assert message.startswith(
        "in the function signature 'safeMint(addres to)': 'addres' is not an ABI type"
    ), message
