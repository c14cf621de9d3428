// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";
import {SignerECDSA} from "@openzeppelin/contracts/utils/cryptography/signers/SignerECDSA.sol";
import {ERC7739} from "@openzeppelin/contracts/utils/cryptography/signers/draft-ERC7739.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {AbstractSigner} from "@openzeppelin/contracts/utils/cryptography/signers/AbstractSigner.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {Calldata} from "@openzeppelin/contracts/utils/Calldata.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {ERC4337Utils} from "@openzeppelin/contracts/account/utils/ERC4337Utils.sol";
import {Account} from "@openzeppelin/contracts/account/Account.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ERC721Holder} from "@openzeppelin/contracts/token/ERC721/utils/ERC721Holder.sol";
import {ERC1155Holder} from "@openzeppelin/contracts/token/ERC1155/utils/ERC1155Holder.sol";
import {AccountModules} from "./AccountModules.sol";
import {ValidatorCall} from "./ValidatorCall.sol";

/// @title KeyscopeAccount
/// @notice An ERC-7579 modular smart account for the ERC-4337 EntryPoint v0.7, owned by one ECDSA key.
/// @dev Deployed as ERC-1167 clones of one implementation by {KeyscopeAccountFactory}.
///
/// Validation is chosen by the UserOperation nonce key, as on other ERC-7579 accounts: the top 20 bytes
/// of the 192-bit key name a validator module. When they name an installed validator (the session-key
/// module, say), that module validates the operation; otherwise the owner's ECDSA signature over the
/// `userOpHash` is required (nonce key 0 is the owner's lane): over the hash itself, or over its EIP-191
/// personal-message hash (`personal_sign`), which is what browser wallets sign (none signs a bare hash). The owner check is built into the account
/// rather than being a module: it costs no external call, and an account can never be left without a
/// way for its owner to sign.
///
/// It receives ERC-721 and ERC-1155 tokens (safe transfers and mints).
///
/// ERC-1271: a signature prefixed with the 20-byte address of an installed validator is forwarded to that
/// validator. The owner's signatures are ERC-7739 nested signatures (TypedDataSign for typed data, PersonalSign
/// for messages), bound to this account's EIP-712 domain (`KeyscopeAccount`, version `1`, its chain and
/// address): an owner's signature made for one account is worthless for the owner's other accounts and for the
/// owner's own address. The owner's bare ECDSA signature of a hash is accepted only from the validator this account
/// is asking, at that moment, to validate one of its UserOperations (the session module checking the owner's grant
/// of a session in ENABLE mode, a digest that names this account, the module and the chain): not from an installed
/// validator at any other time, since a validator may relay other callers' questions to the account (a router
/// choosing the account's validators by a signature's prefix asks the account), and those may name no account.
///
/// Installing a module (of any type, at {initialize} too) first asks every installed validator, and every validator
/// uninstalled earlier in the same transaction, `isTargetOfLiveSession(this, module)` and refuses the module when one answers true: a live session may call it, and
/// modules keep their configuration per calling account, so that call would reconfigure the module for this account
/// (an owner validator's `onInstall` would replace the owner). The owner revokes those sessions first, in an earlier
/// transaction: a session revoked in this one still counts (a bundle runs operations validated before). Validators
/// that do not answer the view (no such function, a revert, anything but a word holding 1) do not block. Nothing is
/// asked on a session's operation.
contract KeyscopeAccount is AccountERC7579, SignerECDSA, ERC7739, Initializable, ERC721Holder, ERC1155Holder {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice A module to install while the account is initialised.
    struct ModuleInit {
        uint256 moduleTypeId;
        address module;
        bytes initData;
    }

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The owner given to {initialize} was the zero address.
    error OwnerIsZeroAddress();

    /// @notice {initialize} was called by `caller`, not by `factory`, the factory that deployed this implementation
    ///         (this code over storage no factory set up: an EOA delegating to it, a proxy someone else made).
    error InitializerNotFactory(address caller, address factory);

    /// @notice `module` was not installed: a live session of the installed validator `validator` has a call
    ///         permission on it, or had one until revoked in this transaction. Revoke those sessions (or all of them)
    ///         on `validator` first, then install it in a later transaction.
    error ModuleIsSessionTarget(address module, address validator);

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    IEntryPoint private immutable _entryPoint;

    /// @dev The factory that deployed this implementation: the only caller of {initialize}.
    address private immutable _factory;

    /// @dev Storage slot of OpenZeppelin's `AccountERC7579._validators` (private; an `EnumerableSet.AddressSet`,
    ///      whose first member is its values array: the count here, the addresses from keccak256(slot)). Read from
    ///      the compiler's storage layout by tests/test_contract_sizes.py, which fails if it moves.
    uint256 private constant VALIDATORS_SLOT = 2;

    /// @dev Transient: the validators uninstalled in this transaction (their count here, the addresses after it),
    ///      at keccak256("keyscope.account.uninstalledValidators").
    ///      Installing asks them too: a validator's sessions validated in this bundle still run after it is gone.
    uint256 private constant UNINSTALLED_SLOT = 0xc3ea6101926f01425705304811543aab2042fdd473e171c1b6ba372011b3b181;

    /// @dev Transient: the validator this account is asking to validate a UserOperation, for the length of that
    ///      call only (zero otherwise), at keccak256("keyscope.account.validatingWith"). {isValidSignature} takes the
    ///      owner's bare signature from it alone.
    uint256 private constant VALIDATING_SLOT = 0x8f737974f8582995494311213669974b8188fd534e13bed09dbe703dc5399025;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTION
    //////////////////////////////////////////////////////////////*/

    /// @param entryPoint_ The EntryPoint every clone of this implementation trusts.
    constructor(IEntryPoint entryPoint_) SignerECDSA(address(0)) EIP712("KeyscopeAccount", "1") {
        _entryPoint = entryPoint_;
        _factory = msg.sender;
        _disableInitializers();
    }

    /// @notice Set the owner and install the given modules. Called once, by the factory, in the same
    ///         transaction that deploys the clone; reverts {InitializerNotFactory} for any other caller (an EOA
    ///         delegating to this code (EIP-7702) has fresh storage, which anyone could initialise otherwise).
    /// @param owner The ECDSA address that owns the account.
    /// @param modules Modules to install, in order (for example the session-key validator).
    function initialize(address owner, ModuleInit[] calldata modules) external initializer {
        if (msg.sender != _factory) revert InitializerNotFactory(msg.sender, _factory);
        if (owner == address(0)) revert OwnerIsZeroAddress();
        _setSigner(owner);
        for (uint256 i = 0; i < modules.length; ++i) {
            _installModule(modules[i].moduleTypeId, modules[i].module, modules[i].initData);
        }
    }

    /*//////////////////////////////////////////////////////////////
                               ACCOUNT
    //////////////////////////////////////////////////////////////*/

    /// @notice The EntryPoint this account accepts UserOperations from.
    function entryPoint() public view override returns (IEntryPoint) {
        return _entryPoint;
    }

    /// @notice The ERC-7579 account identifier, `vendor.account.semver`.
    function accountId() public pure override returns (string memory) {
        return "keyscope.account.v0.1.0";
    }

    /// @notice ERC-1271: is `signature` a valid signature of `hash` by this account?
    /// @dev In order: a signature starting with an installed validator's address goes to that validator
    ///      (ERC-7579 convention); the validator this account is asking to validate one of its UserOperations, while
    ///      it does ({VALIDATING_SLOT}), may present the owner's bare ECDSA signature of `hash` (the session module's
    ///      grant check in ENABLE mode: its digest names this account); anything else must be the owner's ERC-7739
    ///      nested signature for this account (TypedDataSign or PersonalSign). The bare form is refused from every
    ///      other caller, installed validators included at any other time: the hash a verifier such as Permit2 asks
    ///      about may name no account, the owner's bare signature of it would be as good for the owner's other
    ///      accounts, and a validator may relay such a verifier's question to the account.
    /// @param hash The signed hash.
    /// @param signature The signature.
    /// @return The ERC-1271 magic value `0x1626ba7e` if valid, `0x77390001` for ERC-7739's detection request,
    ///         `0xffffffff` otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature)
        public
        view
        override(AccountERC7579, ERC7739)
        returns (bytes4)
    {
        bytes4 viaModule = AccountERC7579.isValidSignature(hash, signature);
        if (viaModule == IERC1271.isValidSignature.selector) return viaModule;
        address validating;
        assembly ("memory-safe") {
            validating := tload(VALIDATING_SLOT)
        }
        if (validating != address(0) && msg.sender == validating && SignerECDSA._rawSignatureValidation(hash, signature))
        {
            return IERC1271.isValidSignature.selector;
        }
        return ERC7739.isValidSignature(hash, signature);
    }

    /// @dev Install as {AccountERC7579} does, once no installed validator says a live session may call `module`
    ///      (see the contract's notes); reverts {ModuleIsSessionTarget} otherwise.
    function _installModule(uint256 moduleTypeId, address module, bytes memory initData) internal override {
        uint256 count;
        assembly ("memory-safe") {
            count := sload(VALIDATORS_SLOT)
        }
        if (count != 0) {
            uint256 first;
            assembly ("memory-safe") {
                mstore(0x00, VALIDATORS_SLOT)
                first := keccak256(0x00, 0x20)
            }
            for (uint256 i = 0; i < count; ++i) {
                address validator;
                assembly ("memory-safe") {
                    validator := sload(add(first, i))
                }
                if (AccountModules.isSessionTarget(validator, address(this), module)) {
                    revert ModuleIsSessionTarget(module, validator);
                }
            }
        }
        address uninstalled = AccountModules.uninstalledSessionTarget(UNINSTALLED_SLOT, module);
        if (uninstalled != address(0)) revert ModuleIsSessionTarget(module, uninstalled);
        super._installModule(moduleTypeId, module, initData);
    }

    /// @dev Uninstall as {AccountERC7579} does; a validator is remembered until the transaction ends, for
    ///      {_installModule} to ask.
    function _uninstallModule(uint256 moduleTypeId, address module, bytes memory deInitData) internal override {
        super._uninstallModule(moduleTypeId, module, deInitData);
        if (moduleTypeId == MODULE_TYPE_VALIDATOR) {
            AccountModules.rememberUninstalled(UNINSTALLED_SLOT, module);
        }
    }

    /// @dev Validation by the installed validator the nonce key names, else by the owner's ECDSA signature.
    ///      For a validator, the call `validateUserOp(userOp, userOpHash)` is built by copying the UserOperation's
    ///      ABI encoding straight from this call's calldata (offsets inside the struct are relative to its
    ///      start, so the bytes stay valid after a new two-word head) instead of re-encoding it in memory:
    ///      the same call, for less gas. While the validator runs, {VALIDATING_SLOT} names it, for
    ///      {isValidSignature}'s bare owner signature.
    function _validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, bytes calldata signature)
        internal
        override
        returns (uint256 validationData)
    {
        address module = _extractUserOpValidator(userOp);
        if (!isModuleInstalled(MODULE_TYPE_VALIDATOR, module, Calldata.emptyBytes())) {
            return _validateOwnerUserOp(userOp, userOpHash, signature);
        }
        assembly ("memory-safe") {
            tstore(VALIDATING_SLOT, module)
        }
        validationData = ValidatorCall.forward(module, userOp, userOpHash);
        assembly ("memory-safe") {
            tstore(VALIDATING_SLOT, 0)
        }
    }

    /// @dev The owner's operation: its signature must be the owner's over the signable userOpHash, either as it
    ///      is (the SDK's keys) or as an EIP-191 personal message (`personal_sign`: browser wallets sign only
    ///      prefixed messages and typed data). The prefixed form is tried only when the plain one fails, so an
    ///      operation signed over the plain hash costs what it did.
    function _validateOwnerUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, bytes calldata signature)
        private
        view
        returns (uint256)
    {
        bytes32 hash = _signableUserOpHash(userOp, userOpHash);
        if (
            _rawSignatureValidation(hash, signature)
                || _rawSignatureValidation(MessageHashUtils.toEthSignedMessageHash(hash), signature)
        ) {
            return ERC4337Utils.SIG_VALIDATION_SUCCESS;
        }
        return ERC4337Utils.SIG_VALIDATION_FAILED;
    }

    /// @dev The owner's ECDSA check, used when the nonce key names no installed validator.
    function _rawSignatureValidation(bytes32 hash, bytes calldata signature)
        internal
        view
        override(AbstractSigner, AccountERC7579, SignerECDSA)
        returns (bool)
    {
        return SignerECDSA._rawSignatureValidation(hash, signature);
    }
}
