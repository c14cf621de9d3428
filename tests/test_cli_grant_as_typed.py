"""``ape run grant`` grants what the operator typed or nothing: an option given twice is refused (neither value
is guessed), a period of 0 is refused rather than read as the session's life, and numbers the parsers cannot
hold (hex past a 256-bit word, digits of other scripts) are refused with a message naming the option.

The grant script runs in process on ape's local chain, its grant signed and stored as the command does it.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from keyscope import Limits, Policy
from keyscope.cli import parse_amount, parse_rule
from keyscope.cli.parsing import parse_budget, parse_count, parse_total
from keyscope.errors import BadInputError, InvalidAbiError
from keyscope.limits import period_seconds
from keyscope.policy import parse_signature
from keyscope.session import LimitKind
from keyscope.signing import LocalSigner
from keyscope.store import open_store

ROOT = Path(__file__).resolve().parent.parent
TARGET = "0x" + "11" * 20


def _grant_command() -> click.Command:
    """``scripts/grant.py``'s command, as ``ape run grant`` loads it."""
    spec = importlib.util.spec_from_file_location("keyscope_script_grant", ROOT / "scripts" / "grant.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    command: click.Command = module.cli
    return command


@pytest.fixture
def grant(net, nft, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``grant(*options)``: ``ape run grant NFT "safeMint(address to)" OPTIONS...`` for a new owner, into a
    store in ``tmp_path``; returns the click result and the store's URL."""
    monkeypatch.setenv("KEYSCOPE_OWNER_KEY", "0x" + LocalSigner.generate().private_key.hex())
    monkeypatch.setenv("KEYSCOPE_STORE_PASSPHRASE", "a passphrase for the test store")
    store = tmp_path / "store"
    command = _grant_command()
    connection = ["--module", net.module, "--factory", net.factory, "--entry-point", net.entry_point]

    def run(*options: str) -> Result:
        return CliRunner().invoke(
            command,
            [nft.address, "safeMint(address to)", *options, *connection, "--store", str(store), "--json"],
        )

    run.store = store  # type: ignore[attr-defined]
    return run


def _granted(store: Path) -> list[Any]:
    if not store.exists():
        return []
    return open_store(store).list_grants()


# --------------------------------------------------------------------------------------------------
# an option given twice
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "first", "second"),
    [
        ("--valid-for", "1h", "never"),
        ("--valid-for", "never", "1h"),
        ("--value-limit", "1", "2ether"),
        ("--calls", "1", "1000"),
        ("--rate", "1/day", "100/minute"),
        ("--native-total", "1gwei", "5ether/day"),
        ("--operations", "1", "1000/hour"),
        ("--gas-budget", "1gwei", "1ether/day"),
    ],
)
def test_a_grant_option_given_twice_is_refused_and_nothing_is_granted(
    grant: Any, option: str, first: str, second: str
) -> None:
    """With ``--valid-for 1h ... --valid-for never`` click kept the last and the owner signed a session that never
    expires; with the first kept, the other order would do it. Neither is guessed: nothing is signed."""
    result = grant(option, first, "--rule", "to==account", option, second)
    assert result.exit_code == 2, result.output
    assert f"{option} is given 2 times: give it once" in result.output
    assert "Traceback" not in result.output
    assert _granted(grant.store) == []


def test_a_grant_option_given_once_is_granted_as_typed(grant: Any) -> None:
    """The same options, each once, grant exactly what they say: the refusal above is of the repetition."""
    result = grant("--valid-for", "1h", "--value-limit", "2ether", "--calls", "3", "--rule", "to==account")
    assert result.exit_code == 0, result.output
    granted = json.loads(result.output)
    assert granted["valid_until"] != 0
    (stored,) = _granted(grant.store)
    (permission,) = stored.session.permissions
    assert permission.value_limit == 2 * 10**18
    assert [(limit.kind, limit.amount, limit.period) for limit in stored.session.limits] == [
        (LimitKind.CALLS, 3, 0)
    ]


@pytest.mark.parametrize("typed", ["10/hour", "3/day", "5/90s"])
def test_calls_with_a_period_is_refused_not_granted_as_a_total_over_the_life(grant: Any, typed: str) -> None:
    """``--calls 10/hour`` was granted as "at most 10 calls over the session's life": the period was dropped
    silently, and the session got another limit than typed. ``--rate`` is the option for calls per period."""
    result = grant("--calls", typed, "--rule", "to==account")
    assert result.exit_code == 1, result.output
    count = typed.partition("/")[0]
    assert (
        f"error: --calls: '{typed}' has a period, and --calls counts over the session's life: give --rate "
        f"{typed} for calls per period, or --calls {count} for a total"
    ) in result.output
    assert _granted(grant.store) == []
    result = grant("--rate", typed, "--rule", "to==account")  # as the message says
    assert result.exit_code == 0, result.output
    (stored,) = _granted(grant.store)
    assert [(limit.kind, limit.amount, limit.period > 0) for limit in stored.session.limits] == [
        (LimitKind.CALLS, int(count), True)
    ]


def test_a_native_total_where_no_call_carries_eth_says_to_give_a_value_limit(grant: Any) -> None:
    """``--native-total 0.1ether/day`` on a permission of value limit 0 said only that no permission "can carry
    any"; it says which option lets one, and nothing is granted."""
    result = grant("--native-total", "0.1ether/day", "--rule", "to==account")
    assert result.exit_code == 1, result.output
    assert "no permission of the session can carry any: give a permission a value limit" in result.output
    assert "--value-limit" in result.output and "Traceback" not in result.output
    assert _granted(grant.store) == []
    assert grant("--native-total", "0.1ether/day", "--value-limit", "0.01ether").exit_code == 0


def test_a_total_on_an_argument_that_is_no_unsigned_integer_says_which_one_to_total(grant: Any) -> None:
    """``--total "to<=5"`` said "argument `to` of safeMint(address) is a address: totals add unsigned integers only",
    and nothing of what to total instead."""
    result = grant("--total", "to<=5")
    assert result.exit_code == 1, result.output
    assert (
        "error: argument `to` of safeMint(address) is of type address: totals add unsigned integers (uintN) only; the "
        "function has no unsigned integer argument to total"
    ) in result.output
    assert _granted(grant.store) == []
    with pytest.raises(BadInputError) as info:
        Policy.call(TARGET, "mintBatch(address to,uint256 count)", totals=[parse_total("to<=5", _MINT_BATCH)])
    assert str(info.value).endswith("only; give an unsigned integer argument instead (count)"), str(
        info.value
    )


_MINT_BATCH = parse_signature("mintBatch(address to,uint256 count)")


def test_a_function_that_cannot_be_read_says_how_to_write_one(grant: Any, net, nft) -> None:
    """``ape run grant nft "mintBatch(address to,uint256 count"`` (the closing parenthesis left out) said where
    reading stopped, and nothing of how a function is written."""
    connection = ["--module", net.module, "--factory", net.factory, "--entry-point", net.entry_point]
    result = CliRunner().invoke(
        _grant_command(),
        [nft.address, "mintBatch(address to,uint256 count", *connection, "--store", str(grant.store)],
    )
    assert result.exit_code == 1, result.output
    assert (
        "error: cannot read 'mintBatch(address to,uint256 count' at position 34: expected ',' or ')'; write a "
        "function as Solidity declares it: name(type name, ...), e.g. transfer(address to, uint256 amount)"
    ) in result.output
    with pytest.raises(InvalidAbiError, match=r"is not an ABI type \(expected e\.g\. uint256"):  # as before
        parse_signature("f(uint7 x)")


def test_repeatable_options_still_add_up(grant: Any) -> None:
    """``--rule`` and ``--total`` are meant to be repeated: each one given is granted."""
    result = grant("--rule", "to==account", "--rule", "to!=owner")
    assert result.exit_code == 0, result.output
    (stored,) = _granted(grant.store)
    (permission,) = stored.session.permissions
    assert len(permission.rules) == 2


# --------------------------------------------------------------------------------------------------
# a period of 0
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0", "00", "0s", "0 days", "0w", "0 hours"])
def test_a_period_of_zero_is_refused_not_read_as_the_session_s_life(text: str) -> None:
    """``0.1ether/0`` asks for a budget per 0 seconds; a period of 0 in the module is "over the session's life",
    so the text read as 0 made a different limit than typed (the integer 0 was refused already)."""
    with pytest.raises(BadInputError, match="a period must be a positive number of seconds"):
        period_seconds(text)
    with pytest.raises(BadInputError, match="a period must be a positive number of seconds"):
        Limits.native(10**17, per=text)
    with pytest.raises(BadInputError, match="a period must be a positive number of seconds"):
        Policy.call(TARGET, "f(uint256 a)", rate=f"10/{text}")
    with pytest.raises(BadInputError, match=re.escape("--native-total: a period must be")):
        parse_budget(f"0.1ether/{text}", "--native-total")
    with pytest.raises(BadInputError, match=re.escape("--rate: a period must be")):
        parse_count(f"10/{text}", "--rate")
    with pytest.raises(BadInputError, match=re.escape("--total: a period must be")):
        parse_total(f"a<=5/{text}", parse_signature("f(uint256 a)"))


def test_a_period_of_zero_on_the_command_line_names_the_option(grant: Any) -> None:
    result = grant("--rule", "to==account", "--native-total", "1ether/0s")
    assert result.exit_code == 1, result.output
    assert "--native-total: a period must be a positive number of seconds" in result.output
    assert _granted(grant.store) == []


# --------------------------------------------------------------------------------------------------
# numbers the parsers cannot hold
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("digits", [65, 70, 200])
def test_a_hex_amount_past_a_256_bit_word_is_refused_as_typed(digits: int) -> None:
    """Decimal amounts past 2**256 - 1 were refused by the parser; hex ones went on, to an error showing them in
    decimal and naming no option."""
    text = "0x1" + "0" * (digits - 1)
    with pytest.raises(BadInputError, match=re.escape(f"--value-limit: {text!r} is too large")):
        parse_amount(text, "--value-limit")
    assert parse_amount("0x" + "f" * 64) == 2**256 - 1


def test_a_hex_value_limit_past_a_256_bit_word_names_the_option(grant: Any) -> None:
    text = "0x1" + "0" * 64
    result = grant("--rule", "to==account", "--value-limit", text)
    assert result.exit_code == 1, result.output
    assert f"--value-limit: {text!r} is too large" in result.output
    assert _granted(grant.store) == []


@pytest.mark.parametrize("text", ["\u00b2", "1\u00b2", "\u0665", "\uff15/hour"])
def test_a_count_in_digits_of_another_script_is_refused_clearly(text: str) -> None:
    """``str.isdigit`` takes superscripts (which ``int`` then refuses: an unexpected ValueError) and digits of
    other scripts; counts take 0-9 only, as amounts and durations do."""
    with pytest.raises(BadInputError, match=re.escape(f"--calls: {text!r} is not a positive whole number")):
        parse_count(text, "--calls")


@pytest.mark.parametrize("step", ["\u00b2", "\u0661"])
def test_a_rule_path_step_in_digits_of_another_script_is_refused_clearly(step: str) -> None:
    function = parse_signature("f((uint256 x,uint256 y) o)")
    with pytest.raises(BadInputError, match=re.escape(f"has no component named {step!r}")):
        parse_rule(f"o.{step}<=1", function)
    assert parse_rule("o.1<=1", function).ref.path == ("o", 1)


def test_a_superscript_count_on_the_command_line_is_bad_input(grant: Any) -> None:
    result = grant("--rule", "to==account", "--calls", "\u00b2")
    assert result.exit_code == 1, result.output
    assert "--calls: '\u00b2' is not a positive whole number" in result.output
    assert "ValueError" not in result.output


@pytest.mark.parametrize("length", ["\u00b2", "\u0663"])
def test_an_array_length_in_digits_of_another_script_is_refused_clearly(length: str) -> None:
    """The grant's FUNCTION: ``uint256[²]`` was an unexpected ValueError, ``uint256[٣]`` a uint256[3]."""
    with pytest.raises(
        InvalidAbiError, match=re.escape(f"array length {length!r} is not a positive integer")
    ):
        parse_signature(f"f(uint256[{length}] xs)")
    assert parse_signature("f(uint256[3] xs)").signature == "f(uint256[3])"


@pytest.mark.parametrize("rate", ["\u0665/day", "\uff15 per hour"])
def test_a_rate_in_digits_of_another_script_is_refused(rate: str) -> None:
    with pytest.raises(BadInputError, match="a rate reads like '10/minute'"):
        Policy.call(TARGET, "f(uint256 a)", rate=rate)
