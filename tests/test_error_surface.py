"""Malformed input of every kind, fed to what a dapp calls first (the models, Policy and arg rules, SessionKey,
UserOperation.from_rpc, SponsorshipPolicy.from_dict, store URLs, connect, function calls, the sponsor's command):
each refusal is a KeyscopeError that names the bad field and shows no Python bytes literal, no traceback and no
pydantic boilerplate. No chain is needed: all of it is refused before anything is sent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyscope import Limit, Limits, Permission, Policy, Rule, Session, SessionKey, UserOperation, arg, connect
from keyscope.calls import function_call
from keyscope.errors import BadInputError, InvalidAddressError, InvalidFieldsError, KeyscopeError, shown
from keyscope.hexutil import rpc_name, to_address
from keyscope.signing import LocalSigner
from keyscope.sponsor import Sponsor, SponsorshipPolicy
from keyscope.sponsor.__main__ import _parser as sponsor_parser
from keyscope.sponsor.__main__ import build as sponsor_build
from keyscope.sponsor.__main__ import main as sponsor_main
from keyscope.store import open_store

TARGET = "0x" + "cd" * 20
KEY = "0x" + "11" * 32

# a Python bytes literal: b'..' or b"..", where a repr starts (not the b of a word, a hex digit or a quoted 'b')
BYTES_LITERAL = re.compile(r"(?<![^\s(\[{,=`])b['\"]")

# text without quotes: a user's own "b'" is no bytes literal, but would read as one; nor ending in "b", whose
# repr's closing quote would make one (",b" is shown as ',b')
text = st.text(st.characters(exclude_characters="'\"\\"), max_size=20).filter(lambda t: not t.endswith("b"))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.binary(max_size=40)
    | text
    | st.sampled_from(["0x", "0xzz", "0x" + "00" * 20, "0x" + "ff" * 33, "day", "-1", "\u2603", "\x00"])
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(text | st.binary(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_clear(error: BaseException, *names: str) -> str:
    """``error`` is keyscope's, reads as one clear message, and names one of ``names``."""
    assert isinstance(error, KeyscopeError), f"{type(error).__module__}.{type(error).__name__}: {error}"
    message = str(error)
    assert not BYTES_LITERAL.search(message), message
    assert "Traceback" not in message and "errors.pydantic.dev" not in message, message
    assert "input_value=" not in message and "function-before[" not in message, message
    if names:
        lowered = message.lower()
        assert any(name.lower() in lowered for name in names), (names, message)
    return message


def refused_or_taken(build: Any, *names: str) -> None:
    """``build()`` either works or raises a clear keyscope error naming one of ``names``."""
    try:
        build()
    except Exception as error:
        assert_clear(error, *names)


def _field_names(field: str) -> tuple[str, ...]:
    # a check across fields (a model validator's) names the field in words: "takes exactly one reference value"
    return (field, rpc_name(field), field.replace("_", " "), field.replace("_", "-"), field.removesuffix("s"))


# --------------------------------------------------------------------------------------------------
# the models, built directly
# --------------------------------------------------------------------------------------------------

_PERMISSION = Policy.call(TARGET, "f(uint256 a)", rules=[arg("a") <= 5])
_BASES: dict[type, dict[str, Any]] = {
    Rule: _PERMISSION.rules[0].model_dump(),
    Permission: _PERMISSION.model_dump(),
    Limit: Limits.native(10, per="day").model_dump(),
    Session: {"session_key": TARGET, "permissions": (_PERMISSION,)},
    UserOperation: {"sender": TARGET, "nonce": 0},
}
_FIELDS = [(model, field) for model in _BASES for field in model.model_fields]


@SETTINGS
@given(pick=st.sampled_from(_FIELDS), value=junk)
def test_a_model_built_from_junk_names_the_field_under_keyscopes_root(
    pick: tuple[type, str], value: Any
) -> None:
    """Once pydantic's ValidationError (outside keyscope's root), with b'..' literals and a documentation URL."""
    model, field = pick
    refused_or_taken(lambda: model(**{**_BASES[model], field: value}), *_field_names(field))


def test_a_model_refusal_says_each_field_and_keeps_bytes_in_hex() -> None:
    with pytest.raises(InvalidFieldsError) as info:
        Permission(target=b"\x01" * 3, selector=b"\x01")
    assert str(info.value) == (
        "cannot build a Permission: target: '0x010101' is not a valid address: 3 bytes, expected 20. Give 0x "
        "followed by 40 hex digits (all lowercase, or with a correct EIP-55 checksum). (got '0x010101'); "
        "selector: Data should have at least 4 bytes (got '0x01')"
    )
    assert info.value.model == "Permission" and [p["loc"] for p in info.value.problems] == [
        ("target",),
        ("selector",),
    ]
    with pytest.raises(BadInputError, match="cannot build a UserOperation: nonce: Field required"):
        UserOperation(sender=TARGET)
    with pytest.raises(
        BadInputError, match=r"^cannot build a UserOperation: call_data: value '0xzz' is not hex"
    ):
        UserOperation(sender=TARGET, nonce=0).replace(call_data="0xzz")


def test_a_private_key_given_to_any_field_of_a_model_is_never_shown() -> None:
    """Any field, not only an address: a key pasted as a selector, an id or an amount is named by its form."""
    key = SessionKey.generate().private_key.hex()
    for pasted in ("0x" + key, bytes.fromhex(key)):
        with pytest.raises(InvalidFieldsError) as info:
            Permission(target=TARGET, selector=pasted)
        said = str(info.value)
        assert said.startswith("cannot build a Permission: selector: ") and "form of a private key" in said, (
            said
        )
        assert key[:16] not in said.lower()


def test_model_validate_keeps_pydantics_error_with_its_locations() -> None:
    """model_validate is pydantic's own API: its errors stay pydantic's (nested locations included)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        Session.model_validate(
            {"session_key": TARGET, "permissions": [{"target": "0x12", "selector": "0x00000000"}]}
        )
    assert info.value.errors()[0]["loc"][:2] == ("permissions", 0)


# --------------------------------------------------------------------------------------------------
# Policy, arg rules, limits, keys
# --------------------------------------------------------------------------------------------------


@SETTINGS
@given(target=junk)
def test_a_policy_for_a_junk_target(target: Any) -> None:
    refused_or_taken(lambda: Policy.call(target, "mint()"), "address", "target")


@SETTINGS
@given(kind=st.sampled_from(["uint8", "int16", "bytes32", "bytes4", "address", "bool"]), value=junk)
def test_a_rule_compared_with_junk_names_the_argument(kind: str, value: Any) -> None:
    for build in (
        lambda: arg("x") == value,
        lambda: arg("x").one_of(value, value),
        lambda: arg("x") <= value,
    ):
        refused_or_taken(
            lambda build=build: Policy.call(TARGET, f"f({kind} x)", rules=[build()]), "`x`", "argument"
        )


@SETTINGS
@given(rules=junk)
def test_rules_that_are_not_rules(rules: Any) -> None:
    refused_or_taken(lambda: Policy.call(TARGET, "f(uint256 x)", rules=rules), "rule")


@SETTINGS
@given(name=junk, path=st.lists(junk, max_size=2))
def test_arg_of_junk(name: Any, path: list[Any]) -> None:
    refused_or_taken(
        lambda: Policy.call(TARGET, "f(uint256 x)", rules=[arg(name, *path) == 1]), "arg", "argument"
    )


@SETTINGS
@given(value=junk, per=junk)
def test_limits_of_junk(value: Any, per: Any) -> None:
    refused_or_taken(lambda: Limits.native(value, per=per), "native", "period")
    refused_or_taken(lambda: Limits.operations(value, per=per), "operations", "period", "count")
    refused_or_taken(lambda: Policy.call(TARGET, "mint()", value_limit=value), "value_limit")
    refused_or_taken(lambda: Policy.erc20_allowance(TARGET, value, per, decimals=6), "allowance", "period")


@SETTINGS
@given(key=junk)
def test_a_session_key_of_junk_never_shows_the_key(key: Any) -> None:
    try:
        SessionKey(key)
    except Exception as error:
        message = assert_clear(error, "private key")
        if isinstance(key, str) and len(key) > 3:
            assert key not in message


def test_a_mistyped_private_key_is_not_echoed() -> None:
    """Once ``private key '0x1111…11g' is not hex data``: the key, one typo away, went into the log."""
    typo = KEY[:-1] + "g"
    with pytest.raises(BadInputError) as info:
        SessionKey(typo)
    assert str(info.value) == (
        "private key (66 characters) is not hex data: give 0x followed by an even number of hex digits"
    )


@pytest.mark.parametrize("cut", [KEY[:-1], KEY + "a", KEY[2:-2]])
def test_a_private_key_a_digit_short_or_long_says_how_many_digits_it_has(cut: str) -> None:
    """A key copied a digit short was refused as "is not hex data: give 0x followed by an even number of hex
    digits" (it is hex; one digit is missing), one cut by a byte as "must be 32 bytes, got 31"."""
    digits = len(cut) - (2 if cut.startswith("0x") else 0)
    for make in (SessionKey, LocalSigner):
        with pytest.raises(BadInputError) as info:
            make(cut)
        assert (
            str(info.value) == f"the private key has {digits} hex digits, not 64: give 0x and 64 hex digits"
        )
    with pytest.raises(BadInputError) as info:
        connect("http://127.0.0.1:9", "http://127.0.0.1:9", module=TARGET).owner(cut)
    message = str(info.value)
    assert f"has {digits} hex digits, not 64" in message and cut[2:12] not in message and cut not in message


# --------------------------------------------------------------------------------------------------
# operations, sponsorship policies, stores, connect, function calls
# --------------------------------------------------------------------------------------------------

_OP_FIELDS = [
    "sender",
    "nonce",
    "callData",
    "callGasLimit",
    "maxFeePerGas",
    "paymaster",
    "signature",
    "factory",
]


@SETTINGS
@given(data=st.dictionaries(st.sampled_from(_OP_FIELDS) | text, junk, max_size=4) | junk)
def test_a_user_operation_read_from_junk(data: Any) -> None:
    names = (*(shown(key) for key in (data if isinstance(data, dict) else ())), "UserOperation")
    refused_or_taken(lambda: UserOperation.from_rpc(data), *(name.strip("'") for name in names))


def test_a_user_operation_refusal_is_one_line_naming_each_field() -> None:
    """Once pydantic's multi-line text, with its URLs and the input's b'..' reprs."""
    with pytest.raises(BadInputError) as info:
        UserOperation.from_rpc({"sender": b"\x01", "nonce": "zz"})
    assert str(info.value).startswith(
        "not a v0.7 UserOperation: sender: '0x01' is not a valid address: 1 bytes, expected 20."
    )
    assert "nonce: value 'zz' is not an integer or a 0x-hex quantity" in str(info.value)
    assert "\n" not in str(info.value)


_POLICY_FIELDS = [
    "accounts",
    "factories",
    "delegates",
    "targets",
    "budget_wei",
    "total_budget_wei",
    "validity_seconds",
    "name",
]


@SETTINGS
@given(data=st.dictionaries(st.sampled_from(_POLICY_FIELDS), junk, max_size=4) | junk)
def test_a_sponsorship_policy_read_from_junk(data: Any) -> None:
    names = (
        *(shown(key) for key in (data if isinstance(data, dict) else ())),
        "sponsorship policy",
        "targets",
    )
    refused_or_taken(lambda: SponsorshipPolicy.from_dict(data), *(name.strip("'") for name in names))


def test_a_sponsorship_policy_refusal_names_the_field_not_pydantics_types() -> None:
    """Once: ``targets.`dict[function-before[_parse_address(), str],union[...]]`.0x12.[key]`` over 12 lines."""
    with pytest.raises(BadInputError) as info:
        SponsorshipPolicy.from_dict({"targets": {"0x12": ["safeMint(address)"]}})
    message = str(info.value)
    assert message.startswith("not a sponsorship policy: targets.0x12.[key]: '0x12' is not a valid address")
    assert "function-before" not in message and "Input should be 'any'" not in message


@SETTINGS
@given(url=junk.filter(lambda value: not isinstance(value, str)))
def test_a_store_url_of_junk(url: Any) -> None:
    refused_or_taken(lambda: open_store(url), "store URL")


@SETTINGS
@given(
    which=st.sampled_from(["node", "bundler", "paymaster", "module", "factory", "entry_point", "timeout"]),
    value=junk,
)
def test_connect_to_junk(which: str, value: Any) -> None:
    given: dict[str, Any] = {"node": "http://127.0.0.1:9", "bundler": "http://127.0.0.1:9", "module": TARGET}
    given[which] = value
    names = (which, which.replace("_", " "), "address", "url")
    refused_or_taken(lambda: connect(given.pop("node"), given.pop("bundler"), **given), *names)


@SETTINGS
@given(args=st.tuples(junk, junk, junk))
def test_a_function_call_with_junk_arguments(args: tuple[Any, Any, Any]) -> None:
    refused_or_taken(
        lambda: function_call(TARGET, "f(uint8 n,bytes32 h,address to)", *args), "`n`", "`h`", "`to`"
    )


def test_a_function_call_refusal_names_the_argument_and_shows_hex() -> None:
    """Once eth_abi's ``Value `b'\\x01\\x01\\x01'` of type <class 'bytes'> cannot be encoded by AddressEncoder``."""
    with pytest.raises(BadInputError) as info:
        function_call(TARGET, "f(uint8 n,address to)", 1, b"\x01" * 3)
    assert str(info.value).startswith(
        "cannot encode the arguments of f(uint8,address): `to` (address) cannot take '0x010101' (bytes); give "
    )


def test_bytes_read_as_hex_in_every_message() -> None:
    assert shown({b"k": [b"\x01", (b"\x02",)]}) == "{'0x6b': ['0x01', ('0x02',)]}"
    with pytest.raises(BadInputError, match=r"got bytes '0x687474703a2f2f78'"):
        connect(b"http://x", "http://127.0.0.1:9", module=TARGET)
    with pytest.raises(BadInputError, match=r"got '0x646179'$"):
        Limits.native(5, per=b"day")
    with pytest.raises(BadInputError, match=r"expected exactly 32 bytes, got 33 \('0x(01){33}'\)$"):
        Policy.call(TARGET, "f(bytes32 a)", rules=[arg("a") == b"\x01" * 33])


def test_a_value_of_the_wrong_length_says_how_to_write_it_and_shows_it_unless_it_is_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ape run status 0x1234`` once said only "must be 32 bytes, got 2"; a session id's prefix given to it (as the
    listings show ids) is told where the hash is."""
    from keyscope.bundler.client import BundlerClient
    from keyscope.cli.actions import operation_status
    from keyscope.scale.runner import _store_secret

    with pytest.raises(BadInputError) as info:
        operation_status(BundlerClient("http://127.0.0.1:9"), "0x1234")  # refused before the bundler is asked
    assert str(info.value) == (
        "the UserOperation hash must be 32 bytes (0x and 64 hex digits), got 2 bytes: 0x1234: give the hash that "
        "`ape run send` printed on its `UserOperation 0x…` line (a session's state is in `ape run sessions`)"
    )
    kek = "ab" * 31
    monkeypatch.setenv("KEYSCOPE_STORE_KEK", kek)
    with pytest.raises(BadInputError) as info:
        _store_secret()
    assert str(info.value) == "KEYSCOPE_STORE_KEK must be 32 bytes (0x and 64 hex digits), got 31 bytes"
    with pytest.raises(BadInputError) as info:
        SessionKey("0x" + kek)
    assert kek[:8] not in str(info.value)


def test_an_address_refusal_names_the_value_it_was_for() -> None:
    """``to_address(value, name=...)`` once dropped the name: a bad ``address`` deep in an ERC-7715 request, or the
    sponsor's ``--paymaster``, was refused as a bare "'0x12' is not a valid address"."""
    from keyscope.erc7715 import plan_from_requests

    with pytest.raises(InvalidAddressError) as info:
        to_address("0x12", name="paymaster")
    assert str(info.value).startswith(
        "paymaster: '0x12' is not a valid address: expected 0x and 40 hex digits."
    )
    with pytest.raises(InvalidAddressError) as info:
        to_address("0x12")
    assert str(info.value).startswith("'0x12' is not a valid address")  # no name given: none made up
    request = {
        "chainId": "0x1",
        "expiry": 2_000_000_000,
        "signer": {"type": "key", "data": {"id": "0x" + "ab" * 20}},
        "permission": {
            "type": "contract-call",
            "data": {"address": "0x12", "function": "safeMint(address to)"},
        },
    }
    with pytest.raises(BadInputError) as info:
        plan_from_requests([request])
    assert str(info.value).startswith(
        "request 0 permission contract-call.address: '0x12' is not a valid address"
    )


def test_a_kek_given_as_hex_text_says_how_to_pass_it_and_never_shows_it(tmp_path) -> None:
    """docs/scaling.md opens a store with ``kek=``: a KEK kept as 64 hex digits (as KEYSCOPE_STORE_KEK holds it) is
    refused with the conversion to write, and without its digits."""
    for kek in ("ab" * 32, "0x" + "ab" * 32):
        with pytest.raises(BadInputError) as info:
            open_store(f"sqlite:///{tmp_path / 'keys.db'}", kek=kek)
        message = str(info.value)
        assert "(got str): for 64 hex digits, pass bytes.fromhex(text.removeprefix('0x'))" in message
        assert "abab" not in message


class _Pair(NamedTuple):
    number: int
    data: bytes


class _Sized(list):
    def __init__(self, items: list[Any], size: int) -> None:
        super().__init__(items)
        self.size = size


def test_containers_that_cannot_be_rebuilt_from_one_iterable_are_still_refused_as_bad_input() -> None:
    """A named tuple (or a list subclass whose constructor takes more) where an address or a field goes: the
    refusal is the documented one, not a TypeError raised while its message shows the value."""
    assert shown(_Pair(1, b"\x01")) == "_Pair(number=1, data='0x01')"
    assert shown(_Sized([b"\x02"], 1)) == "['0x02']"
    with pytest.raises(InvalidAddressError, match=r"_Pair\(number=1, data='0x01'\) is not a valid address"):
        to_address(_Pair(1, b"\x01"))
    with pytest.raises(InvalidFieldsError, match=r"nonce"):
        UserOperation(sender=TARGET, nonce=_Pair(1, b"\x01"))


def test_a_container_holding_itself_is_refused_as_bad_input() -> None:
    """A list that holds itself (or junk nested deeper than a message can show) where an address goes: the refusal
    is the documented one, cut short, not a RecursionError raised while its message shows the value."""
    looped: list[Any] = [b"\x01"]
    looped.append(looped)
    assert (
        shown(looped) == "['0x01', ['0x01', ['0x01', ['0x01', ['0x01', ['0x01', ['0x01', ['0x01', '…']]]]]]]]"
    )
    with pytest.raises(InvalidAddressError, match=r"\['0x01', \['0x01', "):
        to_address(looped)


# --------------------------------------------------------------------------------------------------
# the sponsor's command
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def sponsor_args(tmp_path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    policy = tmp_path / "policy.json"
    policy.write_text('{"targets": "any", "total_budget_wei": "1"}')
    monkeypatch.setenv("KEYSCOPE_TEST_SPONSOR_KEY", KEY)
    return ["--policy", str(policy), "--paymaster", TARGET, "--signer-key-env", "KEYSCOPE_TEST_SPONSOR_KEY"]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--port", "70000"], "error: cannot listen on 127.0.0.1:70000: bind(): port must be "),
        (["--port", "-1"], "give a port from 1 to 65535 that no other program holds"),
    ],
)
def test_the_sponsor_command_refuses_a_port_past_65535_in_one_line(
    sponsor_args: list[str], extra: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once OverflowError's traceback."""
    assert sponsor_main([*sponsor_args, "--chain-id", "1", *extra]) == 1
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--chain-id", "-5"], "--chain-id must be a positive integer (the chain's EIP-155 id), got -5"),
        (
            ["--chain-id", "1", "--verification-gas-limit", "-1"],
            "--verification-gas-limit must be an integer from 0",
        ),
        (
            ["--chain-id", "1", "--valid-after-slack", "-1"],
            "--valid-after-slack must not be negative, got -1",
        ),
        (["--chain-id", "1", "--entry-point", "0x12"], "--entry-point: '0x12' is not a valid address"),
    ],
)
def test_the_sponsor_command_refuses_a_chain_or_gas_limit_it_cannot_use(
    sponsor_args: list[str], extra: list[str], said: str
) -> None:
    """Once served: a sponsor for chain -5 signed what no paymaster could verify. Each refusal names the option
    (once the Python argument: ``chain_id``)."""
    with pytest.raises(BadInputError) as info:
        sponsor_build(sponsor_parser().parse_args([*sponsor_args, *extra]))
    assert said in str(info.value)


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("0x1234", "the private key has 4 hex digits, not 64"),
        ("0x" + "g5" * 32, "is not hex data"),
        ("0x" + "00" * 32, "out of range for secp256k1"),
    ],
)
@pytest.mark.parametrize("source", ["env", "file"])
def test_a_sponsor_key_that_is_no_key_names_where_it_came_from_and_never_shows_it(
    sponsor_args: list[str],
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str,
    said: str,
    source: str,
) -> None:
    """docs/sponsorship.md's ``export KEYSCOPE_SPONSOR_KEY=0x…`` with a key cut short: once "error: private key must be
    32 bytes (0x and 64 hex digits), got 2", which named neither the variable (or the file) nor what to give."""
    extra: list[str] = []
    if source == "env":
        monkeypatch.setenv("KEYSCOPE_TEST_SPONSOR_KEY", key)
        where = "KEYSCOPE_TEST_SPONSOR_KEY"
    else:
        key_file = tmp_path / "sponsor.key"
        key_file.write_text(key + "\n")
        extra = ["--signer-key-file", str(key_file)]
        where = f"the signing key file {key_file}"
    assert sponsor_main([*sponsor_args, "--chain-id", "1", *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {where} holds no private key ("), err
    assert said in err and err.rstrip().endswith("0x and 64 hex digits"), err
    assert "Traceback" not in err and err.count("\n") == 1
    assert key[2:12] not in err


@pytest.mark.parametrize("option", ["--signer-key-env", "--signer-key-file", "--paymaster", "--entry-point"])
def test_a_sponsor_key_given_in_place_of_a_name_a_path_or_an_address_is_never_shown(
    sponsor_args: list[str], capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """``--signer-key-env 0x…`` (the key where its variable's name goes) was refused as "no signing key: set 0x… to
    the sponsor's private key", ``--signer-key-file 0x…`` as "the signing key file 0x…: no such file", an address
    option as "'0x…' is not a valid address": the key on the terminal and in the service's log."""
    given = dict(zip(sponsor_args[::2], sponsor_args[1::2], strict=True)) | {option: KEY}
    assert sponsor_main([*(word for pair in given.items() for word in pair), "--chain-id", "1"]) == 1
    err = capsys.readouterr().err
    assert KEY[2:].lower() not in err.lower(), err
    assert err.startswith(f"error: {option}: a value of 32 bytes, the form of a private key (not shown)"), err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("option", ["--ledger", "--host"])
def test_a_sponsor_key_given_as_the_ledger_s_path_or_the_host_is_never_written_nor_shown(
    sponsor_args: list[str],
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: str,
) -> None:
    """``--ledger 0x…`` (the key where the ledger file's path goes: two variables mixed up in a script) started the
    service on a SQLite file named as the key in the current folder, which any user of the machine can list, and
    every budget refusal (-32005) quoted that path to whoever reached the service ("read back from the ledger
    0x…"); ``--host 0x…`` was refused as "cannot listen on 0x…:0", the key on the terminal. The command's other
    options refuse a key by its form (attack 217)."""
    monkeypatch.chdir(tmp_path)
    args = [*sponsor_args, "--chain-id", "1", option, KEY]
    with pytest.raises(BadInputError) as refused:
        sponsor_build(sponsor_parser().parse_args(args))
    message = str(refused.value)
    assert message.startswith(f"{option}: a value of 32 bytes, the form of a private key (not shown)"), (
        message
    )
    assert KEY[2:] not in message
    assert not [path.name for path in tmp_path.iterdir() if KEY[2:] in path.name]
    assert sponsor_main(args) == 1
    err = capsys.readouterr().err
    assert KEY[2:] not in err, err
    assert err.startswith(f"error: {option}: a value of 32 bytes, the form of a private key (not shown)"), err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not [path.name for path in tmp_path.iterdir() if KEY[2:] in path.name]


def test_a_sponsor_for_no_chain_is_refused() -> None:
    policy = SponsorshipPolicy.from_dict({"targets": "any", "total_budget_wei": "1"})
    with pytest.raises(BadInputError, match="chain_id must be a positive integer"):
        Sponsor(paymaster=TARGET, signer=KEY, chain_id=0, policy=policy)


# --------------------------------------------------------------------------------------------------
# the local policy check, given junk beside a good operation
# --------------------------------------------------------------------------------------------------


def _limited_checker() -> tuple[Any, bytes]:
    from keyscope.checker import PolicyChecker
    from keyscope.execution import Call, encode_execute

    session = Session(session_key=TARGET, permissions=(_PERMISSION,), limits=(Limits.operations(3),))
    checker = PolicyChecker(session, "0x" + "aa" * 20, "0x" + "bb" * 20)
    call_data = encode_execute(Call(to_address(TARGET), 0, _PERMISSION.selector + (5).to_bytes(32, "big")))
    return checker, call_data


@SETTINGS
@given(now=junk, counters=junk | st.tuples(junk), which=st.sampled_from(["now", "counters"]))
def test_the_checker_given_a_junk_time_or_counters(now: Any, counters: Any, which: str) -> None:
    """``now`` and ``counters`` (which a caller passes beside the operation) are refused as bad input, never met by
    a comparison or an index that fails inside the checker."""
    checker, call_data = _limited_checker()
    if which == "now":
        refused_or_taken(lambda: checker.check(call_data, now=now), "now")
    else:
        refused_or_taken(lambda: checker.check(call_data, now=0, counters=counters), "counter")


def test_the_checker_refuses_a_junk_time_and_counters_naming_them() -> None:
    from keyscope.limits import Counter

    checker, call_data = _limited_checker()
    for now in ("x", -1, 1.5, True, 2**64):
        with pytest.raises(BadInputError) as refused:
            checker.check(call_data, now=now)
        assert "now=" in assert_clear(refused.value, "int(time.time())")
    for counters in (
        (),
        (Counter(1, 0), Counter(1, 0)),
        (1,),
        (Counter(-1, 0),),
        (Counter(1, -1),),
        "counters",
    ):
        with pytest.raises(BadInputError) as refused:
            checker.check(call_data, now=0, counters=counters)
        assert_clear(refused.value, "one Counter per limit", "keyscope.limits.Counter")
    assert checker.check(call_data, now=0, counters=(Counter(3, 0),)).counters == (Counter(2, 0),)

    class Uint(int):
        """An int subclass, as client libraries return numbers (ape's contract calls do)."""

    counted = checker.check(call_data, now=Uint(5), counters=(Counter(Uint(3), Uint(0)),))
    assert counted.counters == (Counter(2, 0),)


def test_check_of_an_operation_that_is_none_of_the_kinds_it_takes() -> None:
    from keyscope.checker import check

    checker, _ = _limited_checker()
    for operation in (12, None, 1.5, {"callData": "0x"}):
        with pytest.raises(BadInputError) as refused:
            check(checker.session, operation, account=checker.account, module=checker.module)
        assert_clear(refused.value, "UserOperation")


def test_the_checker_built_or_called_with_what_it_does_not_take() -> None:
    from keyscope.checker import PolicyChecker

    checker, _ = _limited_checker()
    account, module = checker.account, checker.module
    attempts = {
        "a session": lambda: PolicyChecker("0x" + "ab" * 20, account, module),  # type: ignore[arg-type]
        "no session": lambda: PolicyChecker(None, account, module),  # type: ignore[arg-type]
        "a session id": lambda: PolicyChecker(checker.session, account, module, session_id=5),  # type: ignore[arg-type]
        "a grant": lambda: PolicyChecker.for_grant(checker.session),  # type: ignore[arg-type]
        "an operation": lambda: checker.check_operation(b"\x00" * 100),  # type: ignore[arg-type]
        "an operation's fields": lambda: checker.check_operation({"sender": TARGET}),  # type: ignore[arg-type]
        "an operation's gas": lambda: checker.check_gas_cost(5),  # type: ignore[arg-type]
    }
    for what, attempt in attempts.items():
        with pytest.raises(BadInputError) as refused:
            attempt()
        assert_clear(refused.value, "Session", "session_id", "UserOperation"), what


def test_the_worker_runner_says_what_its_spec_is_and_what_is_wrong_with_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m keyscope.scale.runner --help`` once read ``--help`` as the spec's path ("[Errno 2] No such file or
    directory: '--help'")."""
    from keyscope.scale.runner import main

    assert main(["--help"]) == 0
    assert "The spec is a JSON object" in capsys.readouterr().out
    assert main(["--verbose"]) == 2
    assert capsys.readouterr().err.startswith("usage: python -m keyscope.scale.runner SPEC.json")
    cases = {
        "absent.json": None,
        "list.json": "[1]",
        "broken.json": "{",
    }
    expected = {
        "absent.json": "no spec file at",
        "list.json": "holds a JSON list, not an object",
        "broken.json": "is not JSON",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        assert main([str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected[name] in err and "Traceback" not in err, err


def test_the_worker_runner_refuses_a_log_level_it_does_not_know(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``KEYSCOPE_LOG_LEVEL=verbose python -m keyscope.scale.runner SPEC.json`` ended in a traceback from the
    logging module (``ValueError: Unknown level: 'VERBOSE'``) rather than saying which variable was wrong."""
    from keyscope.scale.runner import main

    spec = tmp_path / "spec.json"
    spec.write_text("{}")  # refused for the level before the spec is read
    for value in ("verbose", "10", "warn ing"):
        monkeypatch.setenv("KEYSCOPE_LOG_LEVEL", value)
        assert main([str(spec)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: KEYSCOPE_LOG_LEVEL is ") and repr(value) in err, err
        assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in err and "Traceback" not in err, err
    # a level in any case is taken: the run goes on to the spec (which lacks its fields)
    monkeypatch.setenv("KEYSCOPE_LOG_LEVEL", "info")
    assert main([str(spec)]) == 1
    assert "the spec has no 'store'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "escaped", ['"\\ud800"', '"pay \\udc00 now"', '"\\ude00\\ud83d"'], ids=["high", "low", "halves-swapped"]
)
def test_a_json_string_with_half_a_surrogate_pair_is_refused_where_it_would_be_hashed(escaped: str) -> None:
    """A JSON ``\\ud800`` escape without its other half parses to a string with no UTF-8 bytes: typed data holding
    one (in its message, domain or type names), a sign-in message, or a signing permission's domain, type or rule
    value is refused naming where it is, never with Python's codec error; the whole character, escaped as a pair,
    is taken."""
    import json

    from keyscope.message_signing import check_sign_in
    from keyscope.typed_data import TypedData

    text = json.loads(escaped)
    types = {"Mail": [{"name": "memo", "type": "string"}]}
    for data, where in (
        ({"types": types, "primaryType": "Mail", "domain": {}, "message": {"memo": text}}, "message.memo"),
        ({"types": types, "primaryType": "Mail", "domain": {"name": text}, "message": {"memo": ""}}, "domain.name"),
        ({"types": {"Mail": [{"name": text, "type": "string"}]}, "primaryType": "Mail", "domain": {},
          "message": {text: ""}}, "types.Mail[0].name"),
    ):  # fmt: skip
        with pytest.raises(
            BadInputError, match=re.escape(where) + r" holds U\+D[89A-F][0-9A-F]{2} at position"
        ):
            TypedData(data)
    session = Session(session_key=TARGET, sign_in=("app.example.com",))
    with pytest.raises(BadInputError, match=r"the sign-in message holds U\+D"):
        check_sign_in(session, f"app.example.com{text}", account=TARGET, session_id="0x00")
    with pytest.raises(BadInputError, match=r"domain.name holds U\+D"):
        Policy.typed_data({"name": text}, types, "Mail")
    with pytest.raises(BadInputError, match=r"field `memo` \(string\) of Mail holds U\+D"):
        Policy.typed_data({}, types, "Mail", [arg("memo") == text])
    whole = json.loads('"\\ud83d\\ude00"')
    assert whole == "\U0001f600"
    typed = TypedData({"types": types, "primaryType": "Mail", "domain": {}, "message": {"memo": whole}})
    assert len(typed.digest) == 32
    Policy.typed_data({"name": whole}, types, "Mail", [arg("memo") == whole])
