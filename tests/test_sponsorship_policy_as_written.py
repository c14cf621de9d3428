"""The sponsor enforces the policy its operator wrote, or refuses to start: a value written twice (a key twice in
the policy file, one contract listed under two spellings, a command-line option given twice) is refused, never
read as whichever copy came last."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from keyscope.errors import BadInputError
from keyscope.execution import Call, encode_execute
from keyscope.signing import LocalSigner
from keyscope.sponsor.__main__ import _parser, build
from keyscope.sponsor.__main__ import main as sponsor_main
from keyscope.sponsor.errors import SponsorshipRefused
from keyscope.sponsor.policy import SponsorshipPolicy
from keyscope.sponsor.service import Sponsor
from keyscope.userop import UserOperation

TARGET = LocalSigner.generate().address
OTHER = LocalSigner.generate().address
TRANSFER = bytes.fromhex("a9059cbb")
APPROVE = bytes.fromhex("095ea7b3")


def test_a_key_written_twice_in_the_policy_file_is_refused(tmp_path: Path) -> None:
    """Python's JSON reader keeps the last of two equal keys: a budget the operator set, followed by a ``null``
    left from a template, was read as no budget at all."""
    path = tmp_path / "policy.json"
    path.write_text(
        '{"targets": "any", "budget_wei": "1000", "total_budget_wei": "5000", "budget_wei": null}'
    )
    with pytest.raises(BadInputError, match=r"'budget_wei' twice.*keep one") as info:
        SponsorshipPolicy.from_file(path)
    assert str(path) in str(info.value)


def test_a_contract_written_twice_in_the_policy_file_is_refused(tmp_path: Path) -> None:
    """The same address key twice inside ``targets``: the last list (here ``"any"``) was enforced."""
    path = tmp_path / "policy.json"
    entry = f'"{TARGET}"'
    path.write_text(f'{{"targets": {{{entry}: ["0xa9059cbb"], {entry}: "any"}}, "total_budget_wei": "1"}}')
    with pytest.raises(BadInputError, match=f"'{TARGET}' twice"):
        SponsorshipPolicy.from_file(path)


@pytest.mark.parametrize("spelling", [str.lower, str.upper, lambda a: a], ids=["lower", "upper", "same"])
def test_one_contract_under_two_spellings_in_targets_is_refused(spelling) -> None:  # type: ignore[no-untyped-def]
    """``{"0xabc…": ["transfer"], "0xABC…": "any"}`` names one contract twice; the last entry was kept, so the
    contract was open to every function while the operator's first line allowed one."""
    written = "0x" + spelling(TARGET[2:])
    data: dict[str, dict[str, object]] = {"targets": {TARGET: ["0xa9059cbb"], OTHER: "any"}}
    if written != TARGET:
        data["targets"][written] = "any"
        with pytest.raises(BadInputError, match=f"lists {TARGET} twice") as info:
            SponsorshipPolicy.from_dict(data)
        assert written in str(info.value) and "one entry" in str(info.value)
    else:  # a dict cannot hold one key twice: the file's reader refuses that (above)
        assert SponsorshipPolicy.from_dict(data).targets[TARGET] == (TRANSFER,)


def test_a_policy_with_each_contract_once_covers_what_it_lists() -> None:
    """The refusal above does not touch a policy that lists each contract once, in any spelling."""
    policy = SponsorshipPolicy.from_dict(
        {
            "targets": {
                TARGET.lower(): ["transfer(address to, uint256 amount)"],
                OTHER.upper().replace("0X", "0x"): "any",
            }
        }
    )
    assert policy.targets == {TARGET: (TRANSFER,), OTHER: "any"}
    allowed = UserOperation(
        sender=OTHER, nonce=0, call_data=encode_execute(Call(TARGET, 0, TRANSFER + bytes(64)))
    )
    assert [c.target for c in policy.check(allowed)] == [TARGET]
    refused = UserOperation(
        sender=OTHER, nonce=0, call_data=encode_execute(Call(TARGET, 0, APPROVE + bytes(64)))
    )
    with pytest.raises(SponsorshipRefused, match="not in the sponsorship policy"):
        policy.check(refused)


def test_a_refused_selector_is_told_with_the_allowed_functions_as_the_policy_wrote_them(
    tmp_path: Path,
) -> None:
    """A policy file naming its functions by signature (``"safeMint(address)"``) had its refusal list them as hex
    only (``allows there: 0x40d097c3``), which the operator who wrote the signature cannot match to a line of it:
    the refusal says each allowed function as written, with its selector beside it, and a selector written as hex
    stays hex."""
    path = tmp_path / "policy.json"
    path.write_text(
        json.dumps(
            {"targets": {TARGET: ["safeMint(address)", " transfer(address to, uint256) ", "0x095ea7b3"]}}
        )
    )
    policy = SponsorshipPolicy.from_file(path)
    other_call = UserOperation(
        sender=OTHER,
        nonce=0,
        call_data=encode_execute(Call(TARGET, 0, bytes.fromhex("23b872dd") + bytes(96))),
    )
    with pytest.raises(SponsorshipRefused) as info:
        policy.check(other_call)
    assert str(info.value).endswith(
        "which allows there: safeMint(address) (0x40d097c3), transfer(address to, uint256) (0xa9059cbb), 0x095ea7b3"
    )
    assert info.value.data is not None and info.value.data["selector"] == "0x23b872dd"
    # the policy's JSON form and its decisions are unchanged: selectors, in hex
    assert policy.to_dict()["targets"] == {TARGET: ["0x40d097c3", "0xa9059cbb", "0x095ea7b3"]}
    assert policy.targets == {TARGET: (bytes.fromhex("40d097c3"), TRANSFER, APPROVE)}


@pytest.mark.parametrize(
    "written",
    [
        "\u0661\u0660\u0660\u0660",  # Arabic-Indic digits: int() reads them as 1000
        "\uff11\uff10\uff10\uff10",  # fullwidth digits
        "1\u0660\u0660\u0660",  # mixed scripts
        "1_000",
        " 1000",
    ],
    ids=["arabic-indic", "fullwidth", "mixed", "underscore", "space"],
)
@pytest.mark.parametrize("field", ["budget_wei", "total_budget_wei"])
def test_a_budget_in_other_than_ascii_digits_is_refused(tmp_path: Path, field: str, written: str) -> None:
    """A budget is decimal text in digits 0-9 (or 0x-hex), as every number keyscope reads: ``int()`` also took
    other scripts' digits, so a budget the operator's tools and eyes read differently was enforced."""
    with pytest.raises(BadInputError, match=f"{field}.*write decimal digits 0-9"):
        SponsorshipPolicy.from_dict({"targets": "any", "total_budget_wei": "5000", field: written})
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"targets": "any", "total_budget_wei": "5000", field: written}))
    with pytest.raises(BadInputError, match=f"{field}.*write decimal digits 0-9"):
        SponsorshipPolicy.from_file(path)


def test_a_budget_in_ascii_digits_or_hex_is_read() -> None:
    policy = SponsorshipPolicy.from_dict(
        {"targets": "any", "budget_wei": "1000", "total_budget_wei": "0x1388"}
    )
    assert (policy.budget_wei, policy.total_budget_wei) == (1000, 5000)
    assert SponsorshipPolicy.from_dict({"targets": "any", "budget_wei": 7}).budget_wei == 7


@pytest.mark.parametrize(
    ("written", "said"),
    [(True, "bool"), (600.0, "float"), (600.5, "float"), ("\u0666\u0660\u0660", "digits 0-9")],
)
def test_a_signature_validity_that_is_not_whole_seconds_is_refused(written: object, said: str) -> None:
    """``"validity_seconds": true`` was read as 1 second, and a float as its integer part."""
    with pytest.raises(BadInputError, match=f"validity_seconds.*{said}"):
        SponsorshipPolicy.from_dict({"targets": "any", "validity_seconds": written})
    assert SponsorshipPolicy.from_dict({"targets": "any", "validity_seconds": "900"}).validity_seconds == 900


@pytest.fixture
def sponsor_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"targets": {TARGET: ["0xa9059cbb"]}, "total_budget_wei": "1"}))
    monkeypatch.setenv("KEYSCOPE_TEST_SPONSOR_KEY", "0x" + "11" * 32)
    return ["--policy", str(strict), "--paymaster", TARGET, "--signer-key-env", "KEYSCOPE_TEST_SPONSOR_KEY"]


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--policy", "{loose}"], "--policy"),
        (["--policy={loose}"], "--policy"),
        (["--chain-id", "2"], "--chain-id"),
        (["--paymaster", OTHER], "--paymaster"),
        (["--signer-key-env", "HOME"], "--signer-key-env"),
        (["--ledger", "a.sqlite", "--ledger", "b.sqlite"], "--ledger"),
    ],
)
def test_a_sponsor_option_given_twice_is_refused(
    sponsor_args: list[str], tmp_path: Path, extra: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--policy strict.json ... --policy loose.json`` (a wrapper script adding its own default): argparse kept
    the last, and the sponsor signed for the loose policy."""
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps({"targets": "any", "total_budget_wei": "1"}))
    # --port -1 makes the command end at once (exit 1) should the repeated option be let through
    args = [*sponsor_args, "--chain-id", "1", "--port", "-1", *(word.format(loose=loose) for word in extra)]
    with pytest.raises(SystemExit) as info:
        sponsor_main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{option} is given 2 times" in err and "give it once" in err and "Traceback" not in err


def test_the_sponsor_command_keeps_its_budgets_in_the_ledger_it_is_given(
    sponsor_args: list[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Attack 221 for the command: without ``--ledger`` a restart forgets what the signatures made before it may still
    cost, which the command says at start when the policy has a budget; with it the service keeps its reservations
    in the file, and a second service given the same file is refused, in one line, before it serves."""
    ledger = tmp_path / "ledger.sqlite"
    with caplog.at_level("WARNING", logger="keyscope.sponsor"):
        build(_parser().parse_args([*sponsor_args, "--chain-id", "1"])).sponsor.close()
    assert "kept in memory only (no --ledger): a restart forgets" in caplog.text
    assert "give --ledger FILE" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="keyscope.sponsor"):
        server = build(_parser().parse_args([*sponsor_args, "--chain-id", "1", "--ledger", str(ledger)]))
    assert caplog.text == ""
    assert server.sponsor.ledger.path == ledger
    # --port -1 makes the command end at once (exit 1) should the second service be let through
    assert sponsor_main([*sponsor_args, "--chain-id", "1", "--port", "-1", "--ledger", str(ledger)]) == 1
    err = capsys.readouterr().err
    assert f"error: the sponsor's ledger {ledger} is held by another sponsor service" in err
    assert "Traceback" not in err
    server.sponsor.close()


@pytest.mark.parametrize(
    "option", ["--chain-id", "--port", "--valid-after-slack", "--verification-gas-limit"]
)
@pytest.mark.parametrize(
    "written",
    ["\u0667\u0660\u0660\u0660\u0660", "\uff17\uff10\uff10\uff10\uff10", "70_000"],
    ids=["arabic-indic", "fullwidth", "underscore"],
)
def test_a_sponsor_number_in_other_than_ascii_digits_is_refused(
    sponsor_args: list[str], option: str, written: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's numbers are digits 0-9, as the policy file's are: argparse's ``int`` read 70000 written in Arabic-Indic
    or fullwidth digits as 70000."""
    # should the number be let through, the command ends at once (exit 1): port -1, or 70000, cannot be bound
    others = [] if option == "--port" else ["--port", "-1"]
    chain = [] if option == "--chain-id" else ["--chain-id", "1"]
    with pytest.raises(SystemExit) as info:
        sponsor_main([*sponsor_args, *chain, *others, option, written])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "write digits 0-9" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "slack", [True, False, 1.5, -1, "60"], ids=["true", "false", "float", "negative", "text"]
)
def test_a_valid_after_slack_that_is_not_whole_seconds_is_refused(slack: object) -> None:
    """``valid_after_slack=True`` was 1 second; a float reached the signed window and failed every request with an
    internal error."""
    with pytest.raises(
        BadInputError, match=r"valid_after_slack (is whole seconds from 0|must not be negative)"
    ):
        Sponsor(
            paymaster=TARGET,
            signer=LocalSigner.generate(),
            chain_id=1,
            policy=SponsorshipPolicy(targets="any", total_budget_wei=1),
            valid_after_slack=slack,  # type: ignore[arg-type]
        )


def test_a_misspelt_policy_key_is_named_with_the_key_meant(tmp_path: Path) -> None:
    """``"budget_wie"`` for ``budget_wei`` (the budget the operator meant to set): refused, as every unknown key
    is, but once as "budget_wie: Extra inputs are not permitted (got '50000')", which named neither the key meant nor
    the keys there are."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"acounts": "any", "targets": "any", "budget_wie": "50000"}))
    with pytest.raises(BadInputError) as info:
        SponsorshipPolicy.from_file(policy)
    message = str(info.value)
    assert message.startswith(
        "the sponsorship policy has unknown keys 'acounts' (did you mean 'accounts'?), 'budget_wie' (did you mean "
        "'budget_wei'?): its keys are name, accounts, factories, delegates, targets, budget_wei, total_budget_wei, "
        "validity_seconds"
    ), message
    assert "Extra inputs" not in message and "50000" not in message


@pytest.mark.parametrize("host", ["", " "])
def test_a_blank_host_is_refused_rather_than_serving_every_interface(
    sponsor_args: list[str], host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--host "$HOST"`` with the variable unset: a blank host binds every interface of the machine, as 0.0.0.0
    does, so the signing service served other machines without a word. The command refuses it before anything
    starts, and so do the servers it and the co-signer are built on (serving others stays a deliberate 0.0.0.0)."""
    from keyscope.cosigner import CoSignerServer, CoSignerService
    from keyscope.errors import BadInputError
    from keyscope.signing import LocalSigner
    from keyscope.sponsor import SponsorServer

    # --port -1 makes the command end at once (exit 1) should the blank host be let through
    assert sponsor_main([*sponsor_args, "--chain-id", "1", "--port", "-1", "--host", host]) == 1
    err = capsys.readouterr().err
    assert f"error: --host: host {host!r} names no interface" in err and "nothing was started" in err
    assert "Traceback" not in err
    sponsor = build(_parser().parse_args([*sponsor_args, "--chain-id", "1"])).sponsor
    try:
        with pytest.raises(
            BadInputError, match=re.escape("give 127.0.0.1 to serve this machine only, or 0.0.0.0")
        ):
            SponsorServer(sponsor, host=host)
    finally:
        sponsor.close()
    service = CoSignerService(
        LocalSigner.generate(), chain_id=1, module="0x" + "11" * 20, entry_point="0x" + "22" * 20
    )
    with pytest.raises(BadInputError, match="names no interface"):
        CoSignerServer(service, host=host)


def test_the_guide_s_policy_file_names_the_local_stack_s_contracts(tmp_path: Path) -> None:
    """docs/sponsorship.md's policy file, copied as printed for the local stack, named as its factory an address the
    stack deploys nothing at and as its target another, so the first sponsored operation was refused
    (``through factory 0xe7f1…, which the sponsorship policy does not list``)."""
    docs = Path(__file__).resolve().parents[1] / "docs"
    guide = (docs / "sponsorship.md").read_text()
    block = re.search(r"### Policy file\n+```json\n(.*?)```", guide, re.S)
    assert block, "docs/sponsorship.md has no policy file under '### Policy file'"
    path = tmp_path / "policy.json"
    path.write_text(block.group(1))
    policy = SponsorshipPolicy.from_file(path)
    scripts = (docs / "scripts.md").read_text()
    stack = json.loads(re.search(r"### The deployments file\n.*?```json\n(.*?)```", scripts, re.S).group(1))  # type: ignore[union-attr]
    assert policy.factories == (stack["factory"],)
    assert set(policy.targets) == {stack["nft"]}
