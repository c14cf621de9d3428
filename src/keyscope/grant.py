"""A granted session as a dapp keeps it: the session, where it lives, and (off-chain grants) the owner's
signature that its first operation carries. It never holds the session key itself (see ``keys``)."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import BadInputError, RaisesBadInput
from .hexutil import Address, HexBytes32, HexData, HexRepr, WireInt
from .session import Session
from .typed_data import wallet_typed_data

__all__ = ["SessionGrant", "refuse_forbidden_targets"]

_ZERO_ADDRESS = "0x" + "00" * 20


class SessionGrant(HexRepr, RaisesBadInput, BaseModel):
    """Everything needed to use a session, except its key. Serialises to JSON and back without loss.

    ``owner_signature`` is set for an off-chain grant: the owner's EIP-712 signature over the session, which
    the first session operation carries (ENABLE mode) to store the session on chain. Once the session is
    enabled on chain it is no longer needed, but keeping it is harmless: the module ignores it then.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    session: Session
    account: Address
    module: Address
    chain_id: WireInt = Field(ge=1, lt=2**256)
    entry_point: Address
    epoch: WireInt = Field(ge=0, lt=2**32)
    session_id: HexBytes32
    how: Literal["onchain", "offchain"]
    owner_signature: HexData | None = None
    account_kind: str = "keyscope"
    factory: Address | None = None
    """For an account not deployed when the session was granted: the factory its first operation calls."""
    factory_data: HexData = b""

    @model_validator(mode="after")
    def _id_of_its_session(self) -> SessionGrant:
        """The id must be the session's (as the module computes it for the account and epoch): a grant whose
        session was edited would be checked locally against a policy the chain does not hold. And no permission
        may name the account, the module or the zero address: the module refuses to enable such a session."""
        refuse_forbidden_targets(self.session, self.account, self.module)
        expected = self.session.session_id(self.account, self.epoch)
        if self.session_id != expected:
            raise ValueError(
                f"session_id 0x{self.session_id.hex()} is not the id of its session on account {self.account} at "
                f"epoch {self.epoch} (0x{expected.hex()}): the session or the id was changed after the grant"
            )
        return self

    @property
    def session_key(self) -> str:
        """The session key's address."""
        return self.session.session_key

    @property
    def valid_after(self) -> int:
        return self.session.valid_after

    @property
    def valid_until(self) -> int:
        return self.session.valid_until

    @property
    def typed_data(self) -> dict[str, Any]:
        """The EIP-712 typed data the owner signs to grant this session off-chain, as JSON values exactly as a
        wallet's ``eth_signTypedData_v4`` takes them (``json.dumps`` it): 0x-hex bytes, and integers above
        2**53 - 1 as decimal strings (see :mod:`keyscope.typed_data`)."""
        return wallet_typed_data(
            self.session.typed_data(self.account, self.epoch, self.chain_id, self.module)
        )

    @property
    def digest(self) -> bytes:
        """The EIP-712 digest of :attr:`typed_data` (what ``owner_signature`` signs, through the account's
        ERC-1271)."""
        return self.session.enable_digest(self.account, self.epoch, self.chain_id, self.module)

    def to_json(self) -> str:
        """JSON text (hex for bytes)."""
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionGrant:
        """Read a grant written by :meth:`to_json`; :class:`~keyscope.errors.BadInputError` says what is wrong
        with text that is not one (cut off, not JSON, a field missing or malformed)."""
        if isinstance(text, os.PathLike):  # a pathlib.Path to the file to_json() was saved in
            path = os.fspath(text)
            raise BadInputError(
                f"a session grant is JSON text (what to_json() wrote), not the path of a file: give the file's text, "
                f"SessionGrant.from_json(pathlib.Path({path!r}).read_text())"
            )
        if not isinstance(text, (str, bytes, bytearray)):
            raise BadInputError(
                f"a session grant is JSON text (what to_json() wrote), got {type(text).__name__}"
            )
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            problem = _grant_problem(error, len(text))
            if isinstance(text, str) and _looks_like_a_path(text):  # a file's name given for its text
                problem = (
                    f"not a session grant: {text.strip()!r} is the name of a file, not the grant's JSON text; give its "
                    f"text, SessionGrant.from_json(pathlib.Path({text.strip()!r}).read_text())"
                )
            raise BadInputError(problem) from None


def _looks_like_a_path(text: str) -> bool:
    """Whether ``text`` (no grant's JSON) is rather a file's name: one line, not JSON, a ``.json`` name or a file."""
    stripped = text.strip()
    if not stripped or stripped[0] in "[{" or "\n" in stripped or len(stripped) > 4096:
        return False
    return stripped.endswith(".json") or os.path.isfile(stripped)


def _grant_problem(error: ValidationError, size: int) -> str:
    """What a person needs to know of pydantic's refusal of a grant's JSON."""
    problems = error.errors(include_url=False, include_input=False)
    if problems and problems[0]["type"] == "json_invalid":
        detail = str(problems[0].get("ctx", {}).get("error", problems[0]["msg"]))
        cut = "EOF" in detail or "end of" in detail.lower()
        what = (
            f"the JSON ends too early ({size} characters): it was cut off"
            if cut
            else f"it is not JSON ({detail})"
        )
        return f"not a session grant: {what}; give the whole text that SessionGrant.to_json() wrote"
    # a field the grant does not have (a key renamed by hand, most often) first: it is the cause of the missing one
    problems = sorted(problems, key=lambda problem: problem["type"] != "extra_forbidden")
    shown = []
    for problem in problems[:5]:
        where = ".".join(str(part) for part in problem["loc"]) or "the grant"
        shown.append(f"{where}: {str(problem['msg']).removeprefix('Value error, ')}")
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"not a session grant: {'; '.join(shown)}{more}; give the text that SessionGrant.to_json() wrote, unchanged"


def refuse_forbidden_targets(session: Session, account: str, module: str) -> None:
    """Raise :class:`~keyscope.errors.BadInputError` if a permission of ``session`` names ``account``, ``module``
    or the zero address, or its paymaster list does: ``enableSession`` refuses such a session
    (``ForbiddenPermissionTarget``, ``InvalidPaymasters``), so none of its operations could land (its calls on
    other targets would pass a local check, then the enabling would fail)."""
    named = {account: "the account itself", module: "the session module", _ZERO_ADDRESS: "the zero address"}
    for index, permission in enumerate(session.permissions):
        what = named.get(permission.target)
        if what is not None:
            raise BadInputError(
                f"permission {index} targets {what} ({permission.target}), which the module refuses to enable "
                "(ForbiddenPermissionTarget): grant a session without it"
            )
    for index, paymaster in enumerate(session.paymasters):
        what = named.get(paymaster)
        if what is not None:
            raise BadInputError(
                f"paymaster {index} of the session is {what} ({paymaster}), which is no paymaster, and the module "
                "refuses to enable a session listing it (InvalidPaymasters): list the paymasters the dapp uses"
            )
