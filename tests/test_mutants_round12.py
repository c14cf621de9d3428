"""The twelfth round of mutation testing (docs/static-analysis.md, "Mutation testing"): what the tests before it let
pass in account creation, the EntryPoint's reads and the consent page's known functions.

Pinned here, without a chain (a stub node stands for the factory or the account):

* the vendors' creation data, decoded as their factories read it: Kernel's ``initialize`` (the owner validator as
  root, given the owner; the session module installed by ``initConfig``; the salt), Nexus's bootstrap call (the
  owner validator given the owner, the session module with its init data; the bootstrap; the salt; the address
  asked of ``computeAccountAddress``), Safe7579's launchpad (the owner as the Safe's single owner, threshold 1; the
  setup hash over every field but the call data; the proxy factory's salt and CREATE2 address; the first call data
  carried by ``setupSafe``), each refusing a module that is no validator at creation (attack 381);
* the entry before a validator in a sentinel-linked list read past the first page, and an answer that is no list
  taken for none;
* the known functions' warnings by the offsets of their standards' arguments (ERC-6909's and ERC-1155's amounts,
  ERC-4626's receiver, ERC-777's recipient and operator, a revocation only when the flag is held to false), the
  functions that run calls the session picks each a danger, ERC-721's forms taken on a collection, and the
  ERC-165 answer taken for a yes only when it is the ABI-encoded true of the ERC-721 question (attack 382);
* the kind of an account found out: a factory's implementation read only from an address word, a factory of another
  vendor's accounts not taken for keyscope's, a deployed account's own ``accountId()`` over the kind a grant names;
* the EntryPoint's reads: an AA21 refusal's deposit read at the network's EntryPoint, a canonical EntryPoint's
  version its release's, v0.8 only for ERC-4337's domain of version 1, and a ``UserOperationEvent`` of another
  contract not taken for the EntryPoint's.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from keyscope.accounts import KernelAccountKind, KeyscopeAccountKind, NexusAccountKind, Safe7579AccountKind
from keyscope.accounts.resolve import resolve_kind
from keyscope.accounts.safe7579 import INIT_DATA_ABI_TYPE
from keyscope.accounts.sentinel import SENTINEL, lists_validators, previous_validator
from keyscope.artifacts import ENTRY_POINTS
from keyscope.chain import Chain
from keyscope.endpoints import Endpoints, entry_point_version
from keyscope.entrypoint import (
    USER_OPERATION_EVENT_TOPIC,
    decode_user_operation_events,
    entry_point_version_from_domain,
)
from keyscope.errors import BadInputError, BundlerRejectedError, CallRevertedError, UnsupportedAccountError
from keyscope.hexutil import keccak, to_address
from keyscope.known_functions import KNOWN_FUNCTIONS, added_per_call, known_function
from keyscope.operations import prefund_refusal
from keyscope.policy import parse_signature
from keyscope.session import ArgType, Condition, Permission, Rule
from keyscope.token_facts import contract_facts

OWNER = to_address("0x" + "0a" * 20)
OWNER_VALIDATOR = to_address("0x" + "0f" * 20)
MODULE = to_address("0x" + "5e" * 20)
FACTORY = to_address("0x" + "fa" * 20)
BOOTSTRAP = to_address("0x" + "b0" * 20)
PREDICTED = to_address("0x" + "ac" * 20)
SAFE7579 = to_address("0x" + "75" * 20)
LAUNCHPAD = to_address("0x" + "1a" * 20)
SINGLETON = to_address("0x" + "51" * 20)
PROXY_FACTORY = to_address("0x" + "9f" * 20)
MODULE_INIT = b"\x01\x02\x03"
SALT = 7
PROXY_CODE = bytes.fromhex("608060405234801561001057600080fd5b50")
ZERO = to_address("0x" + "00" * 20)


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


class _Factory:
    """A node holding one factory: every call is recorded; an address question answers :data:`PREDICTED`, the Safe
    proxy factory's ``proxyCreationCode()`` answers :data:`PROXY_CODE`."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bytes]] = []

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        self.asked.append((to_address(to), bytes(data)))
        if data[:4] == _selector("proxyCreationCode()"):
            return abi_encode(["bytes"], [PROXY_CODE])
        return abi_encode(["address"], [PREDICTED])


def _kernel() -> KernelAccountKind:
    return KernelAccountKind(owner_validator=OWNER_VALIDATOR, factory=FACTORY)


def test_kernel_s_creation_makes_the_owner_validator_root_for_the_owner_and_installs_the_module() -> None:
    chain = _Factory()
    deployment = _kernel().deployment(cast(Chain, chain), OWNER, [(1, MODULE, MODULE_INIT)], salt=SALT)
    assert deployment.factory == FACTORY and deployment.address == PREDICTED
    assert deployment.factory_data[:4] == _selector("createAccount(bytes,bytes32)")
    initialize, salt = abi_decode(["bytes", "bytes32"], deployment.factory_data[4:])
    assert int.from_bytes(salt, "big") == SALT
    # the address is asked of the factory for the same account it creates
    assert chain.asked == [(FACTORY, _selector("getAddress(bytes,bytes32)") + deployment.factory_data[4:])]
    assert initialize[:4] == _selector("initialize(bytes21,address,bytes,bytes,bytes[])")
    root, hook, root_data, hook_data, config = abi_decode(
        ["bytes21", "address", "bytes", "bytes", "bytes[]"], initialize[4:]
    )
    assert root == b"\x01" + bytes.fromhex(OWNER_VALIDATOR[2:])  # a validator (type 1), the owner's
    assert to_address(hook) == ZERO and hook_data == b""
    assert root_data == bytes.fromhex(OWNER[2:])  # the owner the root validator takes
    assert len(config) == 1
    assert config[0][:4] == _selector("installModule(uint256,address,bytes)")
    module_type, module, packed = abi_decode(["uint256", "address", "bytes"], config[0][4:])
    assert (module_type, to_address(module)) == (1, MODULE)
    assert packed[:20] == bytes(20)  # no hook
    validator_data, hook_data, selector_data = abi_decode(["bytes", "bytes", "bytes"], packed[20:])
    assert (validator_data, hook_data, selector_data) == (
        MODULE_INIT,
        b"",
        _selector("execute(bytes32,bytes)"),
    )


@pytest.mark.parametrize("kind", ["kernel", "nexus", "safe7579"])
def test_creation_installs_validators_only(kind: str) -> None:
    adapter = {
        "kernel": _kernel(),
        "nexus": NexusAccountKind(owner_validator=OWNER_VALIDATOR, factory=FACTORY, bootstrap=BOOTSTRAP),
        "safe7579": _safe(),
    }[kind]
    with pytest.raises(BadInputError, match="only validators can be installed at creation"):
        adapter.deployment(cast(Chain, _Factory()), OWNER, [(2, MODULE, b"")])


def test_nexus_s_creation_installs_the_owner_validator_for_the_owner_and_the_module_through_the_bootstrap() -> (
    None
):
    chain = _Factory()
    adapter = NexusAccountKind(owner_validator=OWNER_VALIDATOR, factory=FACTORY, bootstrap=BOOTSTRAP)
    deployment = adapter.deployment(cast(Chain, chain), OWNER, [(1, MODULE, MODULE_INIT)], salt=SALT)
    assert deployment.factory == FACTORY and deployment.address == PREDICTED
    assert deployment.factory_data[:4] == _selector("createAccount(bytes,bytes32)")
    init, salt = abi_decode(["bytes", "bytes32"], deployment.factory_data[4:])
    assert int.from_bytes(salt, "big") == SALT
    assert chain.asked == [
        (FACTORY, _selector("computeAccountAddress(bytes,bytes32)") + deployment.factory_data[4:])
    ]
    bootstrap, call = abi_decode(["address", "bytes"], init)
    assert to_address(bootstrap) == BOOTSTRAP
    init_nexus = "initNexus((address,bytes)[],(address,bytes)[],(address,bytes),(address,bytes)[],address,address[],uint8)"
    assert call[:4] == _selector(init_nexus)
    validators, executors, hook, fallbacks, registry, attesters, threshold = abi_decode(
        ["(address,bytes)[]", "(address,bytes)[]", "(address,bytes)", "(address,bytes)[]", "address", "address[]",
         "uint8"],
        call[4:],
    )  # fmt: skip
    assert [(to_address(v), bytes(d)) for v, d in validators] == [
        (OWNER_VALIDATOR, bytes.fromhex(OWNER[2:])),
        (MODULE, MODULE_INIT),
    ]
    assert (executors, fallbacks, attesters, threshold) == ((), (), (), 0)
    assert to_address(hook[0]) == ZERO and to_address(registry) == ZERO


def _safe() -> Safe7579AccountKind:
    return Safe7579AccountKind(
        owner_validator=OWNER_VALIDATOR,
        safe7579=SAFE7579,
        launchpad=LAUNCHPAD,
        singleton=SINGLETON,
        proxy_factory=PROXY_FACTORY,
    )


_INIT_FIELDS = ["address", "address[]", "uint256", "address", "bytes", "address", "(address,bytes)[]"]


def test_safe7579_s_creation_makes_the_owner_the_single_owner_and_hashes_every_setup_field() -> None:
    chain = _Factory()
    adapter = _safe()
    deployment = adapter.deployment(cast(Chain, chain), OWNER, [(1, MODULE, MODULE_INIT)], salt=SALT)
    singleton, owners, threshold, setup_to, _setup, safe7579, validators, call_data = deployment.init_data
    assert (singleton, list(owners), threshold, setup_to, safe7579) == (
        SINGLETON,
        [OWNER],
        1,
        LAUNCHPAD,
        SAFE7579,
    )
    assert [(to_address(v), bytes(d)) for v, d in validators] == [
        (OWNER_VALIDATOR, bytes.fromhex(OWNER[2:])),
        (MODULE, MODULE_INIT),
    ]
    assert call_data == b""
    assert deployment.factory == PROXY_FACTORY
    assert deployment.factory_data[:4] == _selector("createProxyWithNonce(address,bytes,uint256)")
    launchpad, initializer, salt = abi_decode(["address", "bytes", "uint256"], deployment.factory_data[4:])
    assert (to_address(launchpad), salt) == (LAUNCHPAD, SALT)
    # the launchpad checks the first operation's InitData against this hash: every field but the call data
    setup_hash = keccak(abi_encode(_INIT_FIELDS, list(deployment.init_data[:7])))
    assert initializer == _selector("preValidationSetup(bytes32,address,bytes)") + abi_encode(
        ["bytes32", "address", "bytes"], [setup_hash, ZERO, b""]
    )
    # the Safe proxy factory's CREATE2: salt keccak(keccak(initializer) ‖ nonce), code the proxy's with the launchpad
    create2_salt = keccak(keccak(initializer) + SALT.to_bytes(32, "big"))
    code_hash = keccak(PROXY_CODE + abi_encode(["address"], [LAUNCHPAD]))
    expected = keccak(b"\xff" + bytes.fromhex(PROXY_FACTORY[2:]) + create2_salt + code_hash)[12:]
    assert deployment.address == to_address("0x" + expected.hex())


def test_safe7579_s_setup_hash_changes_with_the_validators() -> None:
    """Two accounts of one owner with different modules are two accounts (two setup hashes)."""
    adapter = _safe()
    with_module = adapter.init_data(OWNER, [(1, MODULE, MODULE_INIT)])
    without = adapter.init_data(OWNER, [])
    assert adapter.init_hash(with_module) != adapter.init_hash(without)


def test_safe7579_s_first_call_data_is_setup_safe_carrying_the_operation_s_call() -> None:
    adapter = _safe()
    deployment = adapter.deployment(cast(Chain, _Factory()), OWNER, [(1, MODULE, MODULE_INIT)], salt=SALT)
    call = b"\xe9\xae\x5c\x53" + b"\x42" * 40
    data = adapter.creation_call_data(deployment, call)
    assert data[:4] == _selector(f"setupSafe({INIT_DATA_ABI_TYPE})")
    (decoded,) = abi_decode([INIT_DATA_ABI_TYPE], data[4:])
    assert decoded[7] == call
    assert keccak(abi_encode(_INIT_FIELDS, list(decoded[:7]))) == adapter.init_hash(deployment.init_data)


class _ValidatorList:
    """An account listing ``validators`` through ``getValidatorsPaginated(cursor, size)``, a page at a time."""

    def __init__(self, validators: list[str]) -> None:
        self.validators = validators

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        assert data[:4] == _selector("getValidatorsPaginated(address,uint256)")
        cursor, size = abi_decode(["address", "uint256"], data[4:])
        start = 0 if to_address(cursor) == SENTINEL else self.validators.index(to_address(cursor)) + 1
        page = self.validators[start : start + size]
        following = page[-1] if start + size < len(self.validators) else SENTINEL
        return abi_encode(["address[]", "address"], [page, following])


def test_the_entry_before_a_validator_is_found_past_the_first_page() -> None:
    validators = [to_address(f"0x{index + 1:040x}") for index in range(1, 151)]
    chain = cast(Chain, _ValidatorList(validators))
    assert previous_validator(chain, PREDICTED, validators[0]) == SENTINEL
    assert previous_validator(chain, PREDICTED, validators[1]) == validators[0]
    assert previous_validator(chain, PREDICTED, validators[64]) == validators[63]
    assert previous_validator(chain, PREDICTED, validators[149]) == validators[148]
    with pytest.raises(UnsupportedAccountError, match="is not installed as a validator"):
        previous_validator(chain, PREDICTED, MODULE)


class _Answering:
    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "lists"),
    [
        (abi_encode(["address[]", "address"], [[MODULE], SENTINEL]), True),
        (b"", False),
        (b"\x01" * 31, False),
        (abi_encode(["bool"], [True]), False),
    ],
    ids=["a list", "nothing", "a short word", "a bool"],
)
def test_an_account_answering_no_validator_list_is_taken_for_one_that_lists_none(
    answer: bytes, lists: bool
) -> None:
    assert lists_validators(cast(Chain, _Answering(answer)), PREDICTED) is lists


TARGET = to_address("0x" + "69" * 20)
RECIPIENT = to_address("0x" + "5e" * 20)


def _warnings(signature: str, *rules: Rule, token: bool = True) -> list[tuple[str, str]]:
    """The warnings the known function of ``signature`` gives a permission for it with ``rules``."""
    selector = parse_signature(signature).selector
    known = KNOWN_FUNCTIONS[selector]
    permission = Permission(target=TARGET, selector=selector, function=signature, rules=rules)
    return known.warn(permission, token, {})


def _is(offset: int, value: int) -> Rule:
    return Rule(condition=Condition.EQUAL, offset=offset, arg_type=ArgType.UINT256, values=(value,))


def _at_most(offset: int, amount: int) -> Rule:
    return Rule(
        condition=Condition.LESS_THAN_OR_EQUAL, offset=offset, arg_type=ArgType.UINT256, values=(amount,)
    )


_NO_CAP = ("caution", "no rule caps the amount of one call")
_ANY_RECIPIENT = ("caution", "may send to ANY address: no rule holds the recipient to one you know")


@pytest.mark.parametrize(
    ("signature", "recipient", "amount"),
    [
        ("transfer(address receiver,uint256 id,uint256 amount)", 0, 64),
        ("transferFrom(address sender,address receiver,uint256 id,uint256 amount)", 32, 64),
        ("safeTransferFrom(address from,address to,uint256 id,uint256 value,bytes data)", 32, 96),
        ("send(address to,uint256 amount,bytes data)", 0, 32),
        ("operatorSend(address from,address to,uint256 amount,bytes data,bytes operatorData)", 32, 64),
        ("withdraw(uint256 assets,address receiver,address owner)", 32, 0),
        ("redeem(uint256 shares,address receiver,address owner)", 32, 0),
        ("deposit(uint256 assets,address receiver)", 32, 0),
        ("mint(uint256 shares,address receiver)", 32, 0),
    ],
)
def test_a_transfer_s_cautions_read_its_standard_s_recipient_and_amount_words(
    signature: str, recipient: int, amount: int
) -> None:
    held = _is(recipient, int(RECIPIENT, 16))
    assert _warnings(signature, held, _at_most(amount, 10)) == []
    assert _warnings(signature, _at_most(amount, 10)) == [_ANY_RECIPIENT]
    assert _warnings(signature, held) == [_NO_CAP]
    # a rule on another word neither holds the recipient nor caps the amount
    others = [offset for offset in (0, 32, 64, 96) if offset not in (recipient, amount)]
    assert _warnings(
        signature, *(_is(o, int(RECIPIENT, 16)) for o in others), *(_at_most(o, 10) for o in others)
    ) == [
        _ANY_RECIPIENT,
        _NO_CAP,
    ]


def test_an_erc1155_batch_s_amounts_are_capped_by_no_rule() -> None:
    signature = "safeBatchTransferFrom(address from,address to,uint256[] ids,uint256[] values,bytes data)"
    rules = [_is(32, int(RECIPIENT, 16)), *(_at_most(offset, 10) for offset in (64, 96, 128))]
    assert _warnings(signature, *rules) == [_NO_CAP]


@pytest.mark.parametrize(
    ("signature", "flag"),
    [
        ("setApprovalForAll(address operator,bool approved)", 32),
        ("setOperator(address spender,bool approved)", 32),
        ("authorizeOperator(address operator)", None),
    ],
)
def test_an_operator_approval_is_a_danger_unless_its_flag_is_held_to_false(
    signature: str, flag: int | None
) -> None:
    operator = _is(0, int(RECIPIENT, 16))
    for value in (1, 2):
        for offset in (0, 32, 64):
            dangers = _warnings(signature, operator, _is(offset, value) if offset else operator)
            assert [level for level, _ in dangers] == ["danger"], (value, offset)
    revoked = _warnings(signature, operator, _is(32, 0))
    assert revoked == ([] if flag == 32 else [("danger", revoked[0][1])])
    assert "the operator its rule names" in _warnings(signature, operator)[0][1]


@pytest.mark.parametrize(
    "signature",
    [
        "multicall(bytes[] data)",
        "multicall(uint256 deadline,bytes[] data)",
        "multicall(bytes32 previousBlockhash,bytes[] data)",
        "execute(bytes commands,bytes[] inputs)",
        "execute(bytes commands,bytes[] inputs,uint256 deadline)",
        "execute(address dest,uint256 value,bytes func)",
        "executeBatch(address[] dest,uint256[] value,bytes[] func)",
        "execute(address to,uint256 value,bytes data,uint8 operation)",
        "execute(bytes32 mode,bytes executionCalldata)",
        "execTransaction(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,"
        "uint256 gasPrice,address gasToken,address refundReceiver,bytes signatures)",
    ],
)
def test_a_function_running_calls_the_session_picks_is_a_danger_whatever_its_rules(signature: str) -> None:
    pinned = [_is(offset, 0) for offset in (0, 32, 64)]
    for rules in ([], pinned):
        found = _warnings(signature, *rules)
        assert [level for level, _ in found] == ["danger"]
        assert "no rule of this session holds them" in found[0][1]


def test_an_erc721_collection_s_approve_and_transfer_from_are_read_as_its_own() -> None:
    for signature in (
        "approve(address spender,uint256 amount)",
        "transferFrom(address from,address to,uint256 amount)",
    ):
        selector = parse_signature(signature).selector
        on_collection = known_function(selector, erc721=True)
        assert on_collection is not None and "tokenId" in on_collection.signature
        on_token = known_function(selector)
        assert on_token is not None and "tokenId" not in on_token.signature


def test_increase_approval_adds_up_as_increase_allowance_does() -> None:
    for signature in (
        "increaseAllowance(address spender,uint256 addedValue)",
        "increaseApproval(address spender,uint256 addedValue)",
    ):
        selector = parse_signature(signature).selector
        permission = Permission(
            target=TARGET, selector=selector, function=signature, rules=(_at_most(32, 5),)
        )
        assert added_per_call(permission) == (32, 5)


_SUPPORTS_INTERFACE = keccak(b"supportsInterface(bytes4)")[:4]


class _Collection:
    """A contract with code that answers ERC-165's question about ``interface`` with ``answer`` (any other question:
    a revert, which the reader takes as no answer)."""

    def __init__(self, interface: bytes, answer: bytes) -> None:
        self.interface = interface
        self.answer = answer

    def get_code(self, address: str) -> bytes:
        return b"\x60\x00"

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if data == _SUPPORTS_INTERFACE + self.interface.ljust(32, b"\x00"):
            return self.answer
        raise CallRevertedError("eth_call", to, b"", "execution reverted")


_ERC721_ID = bytes.fromhex("80ac58cd")


@pytest.mark.parametrize(
    ("interface", "answer", "erc721"),
    [
        (_ERC721_ID, (1).to_bytes(32, "big"), True),
        (_ERC721_ID, (2).to_bytes(32, "big"), False),
        (_ERC721_ID, b"\x01", False),
        (_ERC721_ID, (1).to_bytes(32, "big") + bytes(32), False),
        (_ERC721_ID, bytes(32), False),
        (bytes.fromhex("01ffc9a7"), (1).to_bytes(32, "big"), False),
    ],
    ids=["true", "two", "a byte", "two words", "false", "only ERC-165"],
)
def test_a_contract_is_an_erc721_collection_only_when_it_answers_the_question_with_true(
    interface: bytes, answer: bytes, erc721: bool
) -> None:
    assert contract_facts(cast(Chain, _Collection(interface, answer)), TARGET).erc721 is erc721


_ACCOUNT_ID = keccak(b"accountId()")[:4]
_IMPLEMENTATION = keccak(b"accountImplementation()")[:4]
IMPLEMENTATION = to_address("0x" + "1e" * 20)


class _Deployed:
    """A node where ``ids`` maps each contract with code to the ``accountId()`` it answers, and ``FACTORY`` answers
    ``accountImplementation()`` with ``implementation_word``; any other call reverts."""

    def __init__(self, ids: dict[str, str], implementation_word: bytes = b"") -> None:
        self.ids = ids
        self.implementation_word = implementation_word

    @property
    def chain(self) -> _Deployed:
        """Detection takes a network's chain: this node is its own."""
        return self

    def get_code(self, address: str) -> bytes:
        return b"\x60\x00" if to_address(address) in self.ids or to_address(address) == FACTORY else b""

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if to_address(to) == FACTORY and data == _IMPLEMENTATION and self.implementation_word:
            return self.implementation_word
        if data == _ACCOUNT_ID and to_address(to) in self.ids:
            return abi_encode(["string"], [self.ids[to_address(to)]])
        raise CallRevertedError("eth_call", to, b"", "execution reverted")


def test_a_deployed_account_s_own_id_decides_its_kind_over_the_kind_a_grant_names() -> None:
    chain = cast(Chain, _Deployed({PREDICTED: "keyscope.account.v1.0.0"}))
    assert isinstance(resolve_kind(chain, PREDICTED, named="kernel"), KeyscopeAccountKind)


@pytest.mark.parametrize(
    ("word", "refused"),
    [
        (abi_encode(["address"], [IMPLEMENTATION]), None),
        (b"\xff" * 12 + bytes.fromhex(IMPLEMENTATION[2:]), "does not say which accounts it creates"),
    ],
    ids=["an address", "a word with high bytes"],
)
def test_a_factory_s_implementation_is_read_only_from_an_address_word(
    word: bytes, refused: str | None
) -> None:
    chain = cast(Chain, _Deployed({IMPLEMENTATION: "keyscope.account.v1.0.0"}, word))
    if refused is None:
        assert isinstance(resolve_kind(chain, None, factory=FACTORY), KeyscopeAccountKind)
    else:
        with pytest.raises(UnsupportedAccountError, match=refused):
            resolve_kind(chain, None, factory=FACTORY)


def test_a_factory_of_another_vendor_s_accounts_is_not_taken_for_keyscope_s() -> None:
    chain = cast(
        Chain,
        _Deployed({IMPLEMENTATION: "kernel.advanced.v0.3.1"}, abi_encode(["address"], [IMPLEMENTATION])),
    )
    with pytest.raises(UnsupportedAccountError, match="creates accounts reporting accountId"):
        resolve_kind(chain, None, factory=FACTORY)


@pytest.mark.parametrize(
    ("name", "version", "read"),
    [("ERC4337", "1", "0.8"), ("ERC4337", "2", "0.7"), ("ERC4338", "1", "0.7")],
)
def test_an_entry_point_is_v08_only_for_erc4337_s_domain_of_version_1(
    name: str, version: str, read: str
) -> None:
    domain = abi_encode(
        ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"],
        [b"\x0f", name, version, 1, FACTORY, bytes(32), []],
    )
    assert entry_point_version_from_domain(domain) == read


ENTRY_POINT = to_address("0x0000000071727de22e5e9d8baf0edac6f37da032")


class _Deposits:
    """A node where the EntryPoint holds ``deposit`` wei for each account and the account holds ``balance``; a call
    to any other contract answers an unrelated number."""

    def __init__(self, balance: int, deposit: int) -> None:
        self.balance = balance
        self.deposit = deposit

    def get_balance(self, address: str) -> int:
        return self.balance

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        if to_address(to) == ENTRY_POINT and data[:4] == keccak(b"balanceOf(address)")[:4]:
            (account,) = abi_decode(["address"], data[4:])
            return (self.deposit if to_address(account) == PREDICTED else 0).to_bytes(32, "big")
        return (999).to_bytes(32, "big")


class _Network:
    def __init__(self, chain: _Deposits) -> None:
        self.chain = chain
        self.entry_point = ENTRY_POINT


def test_an_aa21_refusal_names_the_account_s_deposit_at_the_network_s_entry_point() -> None:
    error = BundlerRejectedError("eth_sendUserOperation", -32500, "AA21 didn't pay prefund")
    refusal = prefund_refusal(cast(Endpoints, _Network(_Deposits(5, 123))), PREDICTED, error, None)
    assert refusal is not None
    assert (refusal.account, refusal.balance, refusal.deposit) == (PREDICTED, 5, 123)


class _Unasked:
    def call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        raise CallRevertedError("eth_call", to, b"", "execution reverted")


@pytest.mark.parametrize("version", sorted(ENTRY_POINTS))
def test_a_canonical_entry_point_s_version_is_its_release_s(version: str) -> None:
    assert entry_point_version(cast(Chain, _Unasked()), ENTRY_POINTS[version].address) == version


def test_a_user_operation_event_of_another_contract_is_not_the_entry_point_s() -> None:
    op_hash = b"\x33" * 32
    topics = [
        "0x" + USER_OPERATION_EVENT_TOPIC.hex(),
        "0x" + op_hash.hex(),
        "0x" + abi_encode(["address"], [PREDICTED]).hex(),
        "0x" + bytes(32).hex(),
    ]
    data = "0x" + abi_encode(["uint256", "bool", "uint256", "uint256"], [0, True, 1, 1]).hex()
    forged = {"address": FACTORY, "topics": topics, "data": data}
    assert decode_user_operation_events([forged], ENTRY_POINT) == {}
    found = decode_user_operation_events([forged, {**forged, "address": ENTRY_POINT}], ENTRY_POINT)
    assert list(found) == [op_hash] and found[op_hash]["logs"] == [forged]
