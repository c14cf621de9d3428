"""The README's examples and instructions that run without a real node: the ``ape test`` example with the pytest
plugin's own fixtures, and the npm packages the README tells a project to install for keyscope's local stack;
docs/networks.md's addresses computed offline; and docs/erc7715.md's examples, with and without the consent page.

(tests/e2e/test_readme.py runs the SDK and accounts examples from an installed wheel against anvil and Alto, and
tests/e2e/test_eip7702.py the EIP-7702 one.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keyscope import SessionKey, arg
from keyscope.artifacts import ENTRY_POINTS
from keyscope.deterministic import deterministic_plan
from keyscope.local.alto import ALTO_NPM_PACKAGE, ALTO_VERSION
from keyscope.local.anvil import anvil_npm_package
from keyscope.module import SessionStatus
from keyscope.policy import Policy
from keyscope.signing import LocalSigner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
APE_HEADING = "### In your own `ape test` suite"


def python_block(heading: str, document: Path = README, language: str = "python") -> str:
    """The first ``language`` block under ``heading`` in ``document`` (the README by default)."""
    text = document.read_text()
    found = re.search(rf"```{language}\n(.*?)```", text[text.index(heading) :], re.S)
    assert found, f"{document.name} has no {language} example under {heading!r}"
    return found.group(1)


def test_the_ape_test_example_runs_with_the_plugins_fixtures(
    request: pytest.FixtureRequest, harness: Any, nft: Any
) -> None:
    """The example's test function, as written, given the fixtures it names (the plugin's, registered by the
    installed package); its ``...`` is where a dapp's test goes on, here with a session that mints."""
    code = python_block(APE_HEADING)
    assert code.count("\n    ...\n") == 1, code
    scope: dict[str, Any] = {}
    exec(compile(code.replace("\n    ...\n", "\n    return net\n"), "README.md", "exec"), scope)
    test = next(value for name, value in scope.items() if name.startswith("test_") and callable(value))
    names = test.__code__.co_varnames[: test.__code__.co_argcount]
    assert {"keyscope_bundler", "keyscope_module", "keyscope_entry_point", "keyscope_factory"} <= set(names)
    net = test(**{name: request.getfixturevalue(name) for name in names})

    owner = net.owner(LocalSigner.generate())
    harness.fund(owner.account)
    mint = Policy.call(nft.address, "safeMint(address to)", rules=[arg("to") == owner.account])
    key = SessionKey.generate()
    session = net.session(owner.grant(key, [mint]), key)
    assert session.execute(nft.address, "safeMint(address)", owner.account).wait().success
    assert nft.balanceOf(owner.account) == 1
    # a second grant on the account that now exists: the owner's signature is checked on chain before use
    again = SessionKey.generate()
    second = net.session(owner.grant(again, [mint]), again)
    assert second.execute(nft.address, "safeMint(address)", owner.account).wait().success
    assert second.status().status == SessionStatus.ACTIVE.value


def _npm_install_packages(text: str) -> set[str]:
    """The package names (aliases included) of every ``npm install --save-dev ...`` command in ``text``."""
    names: set[str] = set()
    for command in re.findall(r"npm install --save-dev((?:\s+(?:@[^\s`]+|\\))+)", text):
        for spec in command.split():
            if spec == "\\":  # a line continued
                continue
            names.add(spec[: spec.index("@", 1)] if "@" in spec[1:] else spec)
            if "@npm:" in spec:
                names.add(spec.split("@npm:", 1)[1].rsplit("@", 1)[0])
    return names


def test_the_readme_names_every_npm_package_the_local_stack_needs() -> None:
    """keyscope.local deploys both EntryPoints and runs anvil and Alto, each from an npm package of the project
    that installs keyscope: the README's install commands must name them all, at the versions keyscope wants."""
    text = " ".join(README.read_text().split())
    section = text[text.index("## Installing keyscope into a project") : text.index("## Using the SDK")]
    named = _npm_install_packages(section)
    needed = {anvil_npm_package(), ALTO_NPM_PACKAGE}
    assert "@account-abstraction/contracts-v0.8" in named  # beside v0.7, where keyscope looks for it
    for release in ENTRY_POINTS.values():
        assert any(package in named for package in release.npm_packages), (
            f"the README does not say how to install the EntryPoint v{release.version} ({release.npm_packages})"
        )
        assert f"@account-abstraction/contracts@{release.npm_version}" in section
    assert needed <= named, needed - named
    assert f"{ALTO_NPM_PACKAGE}@{ALTO_VERSION}" in section


def _documented_commands() -> list[tuple[str, str, list[str]]]:
    """Each ``keyscope COMMAND ...`` the README and the docs show, in code spans and at the start of code block
    lines: (document, command, its ``--options``)."""
    found = []
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        shown = re.findall(r"`keyscope +([a-z]+)([^`]*)`", text)
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            shown += re.findall(r"^keyscope +([a-z]+)(.*)$", block, re.M)
        for command, rest in shown:
            options = re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest.split("#", 1)[0])
            found.append((path.name, command, options))
    return found


def test_every_keyscope_command_and_option_the_docs_show_exists() -> None:
    from keyscope.cli import main

    shown = _documented_commands()
    assert {command for _, command, _ in shown} >= {"sessions", "outbox", "revoke", "recover", "consent"}
    for document, command, options in shown:
        assert command in main.commands, f"{document} shows `keyscope {command}`, which does not exist"
        known = {name for param in main.commands[command].params for name in getattr(param, "opts", [])}
        assert set(options) <= known, f"{document}: `keyscope {command}` has no {set(options) - known}"


def _documented_ape_runs() -> list[tuple[str, str, list[str]]]:
    """Each ``ape run SCRIPT ...`` the README and the docs show, in code spans and as code block lines (with the
    lines that continue them): (document, script, its ``--options``)."""
    found = []
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        shown = re.findall(r"`[^`\n]*?\bape run +([a-z_]+)([^`]*)`", text)
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            lines = block.splitlines()
            for index, line in enumerate(lines):
                start = re.match(r"^(?:echo y \| )?(?:\.venv/bin/)?ape run +([a-z_]+)(.*)$", line.strip())
                if start is None:
                    continue
                rest, following = start.group(2), lines[index + 1 :]
                while following and (rest.rstrip().endswith("\\") or following[0].startswith(" ")):
                    rest += " " + following.pop(0)
                shown.append((start.group(1), rest))
        for script, rest in shown:
            options = re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest.split("#", 1)[0])
            found.append((path.name, script, options))
    return found


def test_every_ape_run_script_and_option_the_docs_show_exists() -> None:
    """The ``ape run`` scripts' options as docs/scripts.md, docs/networks.md and the README write them (the
    ``--network`` and ``-v`` of every ape command are ape's own)."""
    import importlib.util

    shown = _documented_ape_runs()
    assert {script for _, script, _ in shown} >= {
        "deploy",
        "create_account",
        "grant",
        "send",
        "status",
        "revoke",
    }
    for document, script, options in shown:
        path = ROOT / "scripts" / f"{script}.py"
        assert path.is_file(), f"{document} shows `ape run {script}`, which does not exist"
        spec = importlib.util.spec_from_file_location(f"keyscope_script_{script}", path)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        known = {"--network", "--verbosity"} | {name for param in loaded.cli.params for name in param.opts}
        assert set(options) <= known, f"{document}: `ape run {script}` has no {set(options) - known}"


NETWORKS = ROOT / "docs" / "networks.md"


def test_the_networks_offline_address_plan_runs_as_written() -> None:
    """docs/networks.md's command printing keyscope's addresses for an admin and a paymaster signer, one per line."""
    admin, signer = LocalSigner.generate().address, LocalSigner.generate().address
    command = python_block("The addresses for an admin", NETWORKS, "sh")
    assert command.startswith(".venv/bin/python -c "), command
    command = command.replace(".venv/bin/python", sys.executable, 1)
    command = command.replace("0xADMIN", admin).replace("0xSIGNER", signer)
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    plan = deterministic_plan(admin, paymaster_signer=signer)
    assert done.stdout.splitlines() == [f"{c.name} {c.address}" for c in plan.contracts]
    assert [c.name for c in plan.contracts] == [
        "SessionKeyValidator",
        "KeyscopeAccountFactory",
        "SponsorPaymaster",
    ]


def test_every_error_warning_and_signer_the_readme_names_is_importable_from_keyscope() -> None:
    """The README names ``HashSigner`` and ``CoSignerMismatchError`` as it names ``SessionRevokedError``: each is
    ``from keyscope import ...`` (once HashSigner, CoSignerMismatchError and GasCostTooHighError were not)."""
    import keyscope

    named = set(re.findall(r"`([A-Z][A-Za-z0-9]+(?:Error|Warning|Signer))`", README.read_text()))
    assert {"HashSigner", "CoSignerMismatchError", "SessionRevokedError"} <= named
    assert sorted(name for name in named if not hasattr(keyscope, name)) == []
    assert {"HashSigner", "CoSignerMismatchError", "GasCostTooHighError"} <= set(keyscope.__all__)


@pytest.mark.parametrize("document", ["accounts.md", "networks.md", "scripts.md", "session-module.md"])
def test_every_error_the_guides_say_is_raised_is_importable_from_keyscope(document: str) -> None:
    """An error a guide says the SDK raises can be caught as ``from keyscope import ...``, as the README's can
    (once ``AccountSetupError``, ``UnsupportedEntryPointError``, ``CoSignerRefusedError`` and
    ``SignatureRefusedError`` had to be looked for in the modules that raise them)."""
    import keyscope

    named = set(re.findall(r"`([A-Z][A-Za-z0-9]+(?:Error|Warning))`", (ROOT / "docs" / document).read_text()))
    assert sorted(name for name in named if not hasattr(keyscope, name)) == []
    assert all(name in keyscope.__all__ and issubclass(getattr(keyscope, name), Exception) for name in named)


ERC7715 = ROOT / "docs" / "erc7715.md"


class _AnsweringServer:
    """The ConsentServer the ERC-7715 example names, with an owner's wallet that answers each request it opens
    as the page's script does: connect the wallet, sign the grant request's typed data, hand in the signature."""

    def __init__(self, server: Any, wallet: Any, chain_id: int) -> None:
        self.server, self.wallet, self.chain_id = server, wallet, chain_id

    def request_permissions(self, params: Any) -> Any:
        import threading

        from eth_account.messages import encode_typed_data

        consent = self.server.request_permissions(params)

        def answer() -> None:
            request = consent.connect(self.server.network, self.wallet.address, self.chain_id)
            signed = self.wallet.sign_message(encode_typed_data(full_message=request.typed_data))
            consent.complete("0x" + bytes(signed.signature).hex(), None)

        threading.Thread(target=answer, daemon=True).start()
        return consent


def _erc7715_mint_params(key: SessionKey, nft: str, chain_id: int) -> list[dict[str, Any]]:
    """wallet_grantPermissions' params: the session key may call ``safeMint(address to)`` on ``nft``."""
    return [
        {
            "chainId": hex(chain_id),
            "expiry": 2_000_000_000,
            "signer": {"type": "key", "data": {"id": key.address}},
            "permission": {
                "type": "contract-call",
                "data": {"address": nft, "function": "safeMint(address to)"},
            },
            "policies": [],
        }
    ]


def test_the_erc7715_examples_run_as_written(net: Any, harness: Any, nft: Any) -> None:
    """docs/erc7715.md's block, as written, with an owner's wallet answering the consent page; then its path
    without the page, as the text after the block writes it. Both grants are the requested sessions: the key mints
    with each, and the revocation's params name the grant."""
    import secrets

    from eth_account import Account

    from keyscope.consent import ConsentServer
    from keyscope.erc7715 import grant_from_response, plan_from_requests, responses_for
    from keyscope.owner import DEFAULT_MAX_GAS_COST

    code = python_block("# ERC-7715 in keyscope", ERC7715)
    wallet = Account.create()
    key = SessionKey.generate()
    with ConsentServer(net) as server:
        scope: dict[str, Any] = {
            "server": _AnsweringServer(server, wallet, net.chain_id),
            "params": _erc7715_mint_params(key, nft.address, net.chain_id),
        }
        exec(compile(code, "docs/erc7715.md", "exec"), scope)
    grant, result = scope["grant"], scope["result"]
    assert scope["owner_revokes"].session_id == grant.session_id
    assert [grant_from_response(r.to_wire()) for r in result] == [grant]
    (answer,) = scope["answer"]  # the JSON the dapp returns: the ERC's names
    assert answer["chainId"] == hex(net.chain_id) and "chain_id" not in answer and "context" in answer, answer
    harness.fund(grant.account)
    assert net.session(grant, key).execute(nft.address, "safeMint(address)", grant.account).wait().success

    # without the page
    params = _erc7715_mint_params(key := SessionKey.generate(), nft.address, net.chain_id)
    plan = plan_from_requests(params)
    session = plan.session(max_gas_cost=DEFAULT_MAX_GAS_COST, salt=secrets.randbits(64))
    owner = net.owner(LocalSigner.generate())
    grant = owner.sign_grant(owner.request_for(session))
    (response,) = responses_for(plan, grant)
    assert grant_from_response(response.to_wire()) == grant and response.address == owner.account
    harness.fund(owner.account)
    assert net.session(grant, key).execute(nft.address, "safeMint(address)", owner.account).wait().success


def test_every_dotted_keyscope_name_the_readme_writes_resolves_after_import_keyscope() -> None:
    """The README writes ``keyscope.local.LocalStack()``, ``keyscope.store.open_store(url)``,
    ``keyscope.consent.ConsentServer`` and the like: each such name must resolve after a bare ``import keyscope``
    (a fresh interpreter, nothing else imported), as a newcomer copying it would have it."""
    names = sorted(set(re.findall(r"\bkeyscope((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", README.read_text())))
    files = (".py", ".md", ".json", ".db")  # file names, not Python names
    dotted = [name for name in names if not name.endswith(files)]
    assert len(dotted) >= 8, dotted
    probe = "import keyscope\nimport functools\n" + "".join(
        f"functools.reduce(getattr, {name[1:].split('.')!r}, keyscope)\n" for name in dotted
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
