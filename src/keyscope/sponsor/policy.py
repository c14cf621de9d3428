"""The sponsorship policy: which accounts, which calls, how much per account, and for how long a signature
is valid.

As a JSON file (``SponsorshipPolicy.from_file``)::

    {
      "name": "Demo NFT mints",                       // optional: shown to wallets as the sponsor
      "accounts": "any",                              // or a list of account addresses
      "factories": ["0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"],  // or "any": who may create an account
      "delegates": ["0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6"],  // or "any": what an EOA may delegate to
      "targets": {                                    // or "any": every contract and function
        "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9": ["safeMint(address)"]   // or "any": every function
      },
      "budget_wei": "50000000000000000",              // per account; null (or absent) = no limit
      "total_budget_wei": "5000000000000000000",      // all accounts together; null (or absent) = no limit
      "validity_seconds": 600                         // how long each signature is valid
    }

Selectors are 4-byte hex (``"0x40d097c3"``) or function signatures (``"safeMint(address to)"``); the
selector ``"0x00000000"`` stands for a call without data (a plain transfer). An operation is covered when
its sender is listed (or ``accounts`` is ``"any"``), an account it creates comes from a listed factory (or
``factories`` is ``"any"``, the default), it carries no EIP-7702 init call (an initCode of the ``0x7702`` marker
followed by data, which EntryPoint v0.8 sends to the account before validation, where no policy sees it), and its
callData is an ERC-7579 ``execute`` whose every call (one, or each of a batch) goes
to a listed target with an allowed selector.

An EOA's operation that delegates it (EIP-7702, EntryPoint v0.8: ``factory`` ``"0x7702"``) must carry the
authorization (``eip7702Auth``) it lands with, naming a listed delegate (or any, when ``delegates`` is ``"any"``,
the default); an authorization on an operation without that marker is refused. The sponsor's signature covers
the delegate (``SponsorPaymaster`` hashes the one the sender's code names when the operation is validated), so
the operation cannot land with an authorization to other code.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
)

from ..errors import BadInputError, RaisesBadInput, shown, validation_problems
from ..execution import Call, ExecuteDecodeError, decode_execute
from ..hexutil import Address, WireInt, to_address, to_bytes, to_int
from ..json_objects import one_of_each_key
from ..textfile import read_text_file
from ..userop import EIP7702_FACTORY, UserOperation
from .errors import NOT_SPONSORED, SponsorshipRefused

__all__ = ["PolicySelector", "SponsorshipPolicy", "parse_selector"]


class PolicySelector(bytes):
    """A 4-byte selector the policy allows, with the function signature the policy wrote it as (``None`` when it
    was written as hex): a refusal names the functions allowed as the operator wrote them."""

    signature: str | None

    def __new__(cls, raw: bytes, signature: str | None = None) -> PolicySelector:
        """The selector ``raw``, written as ``signature`` (or as hex, when ``None``)."""
        selector = super().__new__(cls, raw)
        selector.signature = signature
        return selector

    def label(self) -> str:
        """The selector as the policy wrote it: ``"safeMint(address) (0x40d097c3)"``, or ``"0x40d097c3"``."""
        selector = "0x" + self.hex()
        return selector if self.signature is None else f"{self.signature} ({selector})"


def _policy_selector(value: object) -> PolicySelector:
    """A selector of the policy file, keeping the function signature it was written as."""
    if isinstance(value, PolicySelector):
        return value
    signature = value.strip() if isinstance(value, str) and not value.startswith(("0x", "0X")) else None
    return PolicySelector(parse_selector(value), signature)


def parse_selector(value: object) -> bytes:
    """A 4-byte selector from ``"0x12345678"``, 4 bytes, or a function signature."""
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str) and value.startswith(("0x", "0X")):
        raw = to_bytes(value, name="selector")
    elif isinstance(value, str):
        from ..policy import parse_signature

        raw = parse_signature(value).selector
    else:
        raise BadInputError(f"a selector must be 0x-hex or a function signature, got {shown(value)}")
    if len(raw) != 4:
        raise BadInputError(f"a selector is 4 bytes, got {len(raw)} ({shown(value)})")
    return raw


def _parse_wei(value: object) -> int | None:
    return None if value is None else to_int(value, name="a budget in wei")


Selector = Annotated[
    PolicySelector,
    PlainValidator(_policy_selector),
    PlainSerializer(lambda b: "0x" + b.hex(), return_type=str),
]
Wei = Annotated[
    int | None, BeforeValidator(_parse_wei), PlainSerializer(lambda v: None if v is None else str(v))
]


class SponsorshipPolicy(RaisesBadInput, BaseModel):
    """What the sponsor pays for (see the module's documentation for the JSON form).

    * ``name``: the sponsor's name, returned to wallets in ``pm_getPaymasterStubData``'s ``sponsor``;
    * ``accounts``: ``"any"`` or the sponsored accounts;
    * ``factories``: ``"any"`` or the factories whose accounts' first operations (with ``factory`` and
      ``factoryData``) are sponsored. The policy judges an operation's callData as an ERC-7579 ``execute``, which
      means what it says only on an account that implements it so: listing the factories keeps the sponsor off
      accounts made by other code, and off the gas of that code's creation;
    * ``delegates``: ``"any"`` or the EIP-7702 delegates an EOA's delegating operation (``factory`` ``"0x7702"``)
      may install through its ``eip7702Auth``, for the same reason as ``factories``: the paymaster pays only for
      the delegate the sponsor signed for, and this list says which ones the policy's reading of the callData
      holds for (keyscope's ``KeyscopeDelegate``, say);
    * ``targets``: ``"any"``, or contract -> ``"any"`` or its allowed selectors;
    * ``budget_wei``: per account, the most the sponsor signs for (None: no limit);
    * ``total_budget_wei``: every account together, the most the sponsor signs for (None: no limit); with
      ``accounts`` ``"any"`` only this bounds the deposit, since anyone can make fresh accounts;
    * ``validity_seconds``: how long a signature stays valid.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    accounts: Literal["any"] | tuple[Address, ...] = "any"
    factories: Literal["any"] | tuple[Address, ...] = "any"
    delegates: Literal["any"] | tuple[Address, ...] = "any"
    targets: Literal["any"] | dict[Address, Literal["any"] | tuple[Selector, ...]]
    budget_wei: Wei = None
    total_budget_wei: Wei = None
    validity_seconds: WireInt = Field(default=600, gt=0, le=365 * 86_400)  # not True (1 s) or 600.5

    @field_validator("targets", mode="before")
    @classmethod
    def _each_contract_once(cls, value: Any) -> Any:
        """Refuse one contract listed under two spellings (lowercase and checksummed, say): as a dict, the last
        entry would replace the first silently, a list of selectors by ``"any"`` or the other way round. A value of
        neither shape (a list of contracts, ``"all"``) is said in those words, not in the union's two refusals."""
        if value == "any":
            return value
        if not isinstance(value, dict):
            raise ValueError(
                f'give "any", or an object mapping each contract to "any" or a list of its selectors, got {shown(value)}'
            )
        seen: dict[str, object] = {}
        for written in value:
            try:
                address = to_address(written)
            except BadInputError:
                continue  # the address check says what is wrong with it
            if address in seen:
                raise ValueError(
                    f"targets lists {address} twice ({shown(seen[address])} and {shown(written)}): give each "
                    "contract one entry, with all its selectors"
                )
            seen[address] = written
        return value

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SponsorshipPolicy:
        """Read a policy from its JSON object; raises :class:`~keyscope.errors.BadInputError` saying what is
        wrong."""
        if not isinstance(data, dict):
            raise BadInputError(f"a sponsorship policy is a JSON object, got {type(data).__name__}")
        known = list(cls.model_fields)
        unknown = [key for key in data if key not in known]
        if unknown:
            # a misspelt key would otherwise be "Extra inputs are not permitted", with the value it holds
            problems = []
            for key in unknown:
                close = difflib.get_close_matches(str(key), known, n=1)
                problems.append(f"{shown(key)}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise BadInputError(
                f"the sponsorship policy has unknown key{'s' if len(unknown) > 1 else ''} {', '.join(problems)}: "
                f"its keys are {', '.join(known)} (docs/sponsorship.md, Policy file); nothing was served"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise BadInputError(
                f"not a sponsorship policy: {validation_problems(error)}; see the example in docs/sponsorship.md "
                "(Policy file)"
            ) from None

    @classmethod
    def from_file(cls, path: str | Path) -> SponsorshipPolicy:
        """Read a policy from a JSON file."""
        text = read_text_file(
            path, "the sponsorship policy", "a JSON object (see docs/sponsorship.md, Policy file)"
        )
        try:
            data = json.loads(text, object_pairs_hook=one_of_each_key)
        except BadInputError as exc:
            raise BadInputError(f"the sponsorship policy {path}: {exc}") from None
        except ValueError as exc:
            raise BadInputError(
                f"the sponsorship policy {path} is not JSON ({exc}): give a JSON object"
            ) from None
        if not isinstance(data, dict):
            raise BadInputError(f"the sponsorship policy {path} must hold a JSON object")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this policy."""
        return self.model_dump(mode="json")

    # -- decisions ---------------------------------------------------------------------------------

    def covers_account(self, account: str) -> bool:
        """Whether operations of ``account`` may be sponsored at all."""
        return self.accounts == "any" or account in self.accounts

    def covers_factory(self, factory: str) -> bool:
        """Whether an account ``factory`` creates may have its first operation sponsored."""
        return self.factories == "any" or factory in self.factories

    def covers_delegate(self, delegate: str) -> bool:
        """Whether an EOA delegating to ``delegate`` (EIP-7702) may have that operation sponsored."""
        return self.delegates == "any" or delegate in self.delegates

    def _check_delegation(self, op: UserOperation) -> None:
        """Refuse an EIP-7702 operation whose delegate the sponsorship would not bind, or the policy does not
        list."""
        auth = op.eip7702_auth
        if op.factory != EIP7702_FACTORY:
            if auth is not None:
                raise SponsorshipRefused(
                    NOT_SPONSORED,
                    f"the operation of {op.sender} carries an EIP-7702 authorization (eip7702Auth, delegate "
                    f"{auth.address}) but no factory 0x7702: neither the EntryPoint's hash nor the sponsorship would "
                    'bind the delegate it installs; mark the operation as an EIP-7702 account\'s (factory "0x7702")',
                    {"reason": "eip7702Auth", "account": op.sender, "delegate": auth.address},
                )
            return
        if auth is None:
            raise SponsorshipRefused(
                NOT_SPONSORED,
                f"the operation of {op.sender} is an EIP-7702 account's (factory 0x7702) but carries no eip7702Auth: "
                "the sponsorship covers the delegate the EOA installs, which the sponsor reads from the "
                "authorization; send the authorization the operation lands with (or, for an EOA delegated already, "
                "leave factory unset)",
                {"reason": "eip7702Auth", "account": op.sender},
            )
        if int(auth.address, 16) == 0:
            raise SponsorshipRefused(
                NOT_SPONSORED,
                f"the operation's eip7702Auth delegates {op.sender} to the zero address, which clears the EOA's code "
                "instead of delegating it: an operation marked as an EIP-7702 account's (factory 0x7702) needs the "
                "delegate it is to run",
                {"reason": "delegate", "account": op.sender, "delegate": auth.address},
            )
        if not self.covers_delegate(auth.address):
            listed = ", ".join(self.delegates) if self.delegates else "none"
            raise SponsorshipRefused(
                NOT_SPONSORED,
                f"the operation delegates {op.sender} to {auth.address} (EIP-7702), which the sponsorship policy "
                f"does not list: it sponsors delegation to {listed}",
                {"reason": "delegate", "account": op.sender, "delegate": auth.address},
            )

    def check(self, op: UserOperation) -> tuple[Call, ...]:
        """The calls ``op`` makes, if the policy covers them all; raises
        :class:`~keyscope.sponsor.errors.SponsorshipRefused` (code ``NOT_SPONSORED``) saying what is not."""
        if not self.covers_account(op.sender):
            raise SponsorshipRefused(
                NOT_SPONSORED,
                f"account {op.sender} is not sponsored: the policy lists {len(self.accounts)} account(s)",
                {"reason": "account", "account": op.sender},
            )
        if op.factory == EIP7702_FACTORY and op.factory_data:
            raise SponsorshipRefused(
                NOT_SPONSORED,
                f"the operation of {op.sender} carries an EIP-7702 init call of {len(op.factory_data)} bytes "
                "(factory 0x7702 with factoryData), which EntryPoint v0.8 sends to the account before validation "
                "and the sponsorship policy cannot judge: leave factoryData empty",
                {"reason": "initCall", "account": op.sender, "length": len(op.factory_data)},
            )
        self._check_delegation(op)
        if op.factory not in (None, EIP7702_FACTORY) and not self.covers_factory(op.factory):
            listed = (
                f"accounts created by {', '.join(self.factories)}"
                if self.factories
                else "no account's creation"
            )
            raise SponsorshipRefused(
                NOT_SPONSORED,
                f"the operation creates {op.sender} through factory {op.factory}, which the sponsorship policy "
                f"does not list: it sponsors {listed}",
                {"reason": "factory", "account": op.sender, "factory": op.factory},
            )
        try:
            calls = decode_execute(op.call_data).calls
        except ExecuteDecodeError as exc:
            raise SponsorshipRefused(
                NOT_SPONSORED,
                f"the callData of {op.sender} is not an ERC-7579 execute call the sponsor can check: {exc}",
                {"reason": "callData", "account": op.sender},
            ) from None
        if self.targets == "any":
            return calls
        for index, call in enumerate(calls):
            allowed = self.targets.get(call.target)
            if allowed is None:
                raise SponsorshipRefused(
                    NOT_SPONSORED,
                    f"target {call.target} (call {index}) is not in the sponsorship policy",
                    {"reason": "target", "account": op.sender, "callIndex": index, "target": call.target},
                )
            if allowed != "any" and call.data[:4] == bytes(4) and call.data:
                raise SponsorshipRefused(
                    NOT_SPONSORED,
                    f"call {index} to {call.target} carries calldata starting with 0x00000000: the policy's "
                    "0x00000000 covers calls without data only (a target's fallback would act on the rest)",
                    {
                        "reason": "selector",
                        "account": op.sender,
                        "callIndex": index,
                        "target": call.target,
                        "selector": "0x00000000",
                    },
                )
            if allowed != "any" and call.selector not in allowed:
                listed = ", ".join(s.label() for s in allowed)
                raise SponsorshipRefused(
                    NOT_SPONSORED,
                    f"selector 0x{call.selector.hex()} on {call.target} (call {index}) is not in the sponsorship "
                    f"policy, which allows there: {listed}",
                    {
                        "reason": "selector",
                        "account": op.sender,
                        "callIndex": index,
                        "target": call.target,
                        "selector": "0x" + call.selector.hex(),
                    },
                )
        return calls
