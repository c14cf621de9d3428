// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC7579Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ISessionKeyValidator} from "./interfaces/ISessionKeyValidator.sol";
import {ArgType, RuleEncoding, RuleWord} from "./Rules.sol";
import {SessionLimits} from "./SessionLimits.sol";
import {SessionSigning} from "./SessionSigning.sol";

/// @title PermissionHeader
/// @notice Decodes and encodes a permission's header word: one per (key, target, selector) and account.
/// @dev Bit ranges, least significant first:
///
///     [  0,  48)  validAfter             [ 48,  96)  validUntil (0: none)    [ 96, 192)  valueLimit (wei)
///     [192, 200)  permission index       [200, 208)  rule count              [208, 248)  gas cap in gwei (0: none)
///     [248, 249)  live flag              [249, 252)  paymaster count         [252, 253)  limited
///     [253, 256)  zero
///
/// The paymasters the session lets go uncapped follow the permission's rule words in storage. A limited
/// permission (its session has limits it counts towards, see {SessionLimits}) keeps its meter word last.
library PermissionHeader {
    uint256 internal constant LIVE = 1 << 248;
    uint256 internal constant LIMITED = 1 << 252;

    /// @dev The header of a live permission.
    function encode(
        uint256 validAfter_,
        uint256 validUntil_,
        uint256 valueLimit_,
        uint256 permissionIndex_,
        uint256 ruleCount_,
        uint256 gasCapGwei_,
        uint256 paymasterCount_
    ) internal pure returns (uint256) {
        return validAfter_ | (validUntil_ << 48) | (valueLimit_ << 96) | (permissionIndex_ << 192)
            | (ruleCount_ << 200) | (gasCapGwei_ << 208) | LIVE | (paymasterCount_ << 249);
    }

    function isLive(uint256 header) internal pure returns (bool) {
        return header & LIVE != 0;
    }

    function validAfter(uint256 header) internal pure returns (uint256) {
        return uint48(header);
    }

    function validUntil(uint256 header) internal pure returns (uint256) {
        return uint48(header >> 48);
    }

    function valueLimit(uint256 header) internal pure returns (uint256) {
        return uint96(header >> 96);
    }

    function permissionIndex(uint256 header) internal pure returns (uint256) {
        return uint8(header >> 192);
    }

    function ruleCount(uint256 header) internal pure returns (uint256) {
        return uint8(header >> 200);
    }

    function gasCapGwei(uint256 header) internal pure returns (uint256) {
        return uint40(header >> 208);
    }

    function paymasterCount(uint256 header) internal pure returns (uint256) {
        return (header >> 249) & 7;
    }
}

/// @title SessionMeta
/// @notice Decodes and encodes a session's meta word: one per session id and account.
/// @dev Bit ranges, least significant first:
///
///     [  0, 160)  session key    [160, 192)  epoch    [192, 200)  status (0 none, 1 active, 2 revoked)
///     [200, 208)  permission count                     [208, 224)  index in the account's live list
library SessionMeta {
    uint8 internal constant STATUS_NONE = 0;
    uint8 internal constant STATUS_ACTIVE = 1;
    uint8 internal constant STATUS_REVOKED = 2;

    /// @dev The meta word of a revoked session (kept forever, so the id can never be enabled again).
    uint256 internal constant REVOKED = uint256(STATUS_REVOKED) << 192;

    function encode(address key_, uint256 epoch_, uint256 permissionCount_, uint256 liveIndex_)
        internal
        pure
        returns (uint256)
    {
        return uint256(uint160(key_)) | (epoch_ << 160) | (uint256(STATUS_ACTIVE) << 192) | (permissionCount_ << 200)
            | (liveIndex_ << 208);
    }

    function key(uint256 meta) internal pure returns (address) {
        return address(uint160(meta));
    }

    function epoch(uint256 meta) internal pure returns (uint32) {
        return uint32(meta >> 160);
    }

    function status(uint256 meta) internal pure returns (uint8) {
        return uint8(meta >> 192);
    }

    function permissionCount(uint256 meta) internal pure returns (uint256) {
        return uint8(meta >> 200);
    }

    function liveIndex(uint256 meta) internal pure returns (uint256) {
        return uint16(meta >> 208);
    }

    /// @dev `meta` with its live-list index replaced.
    function withLiveIndex(uint256 meta, uint256 index) internal pure returns (uint256) {
        return (meta & ~(uint256(0xffff) << 208)) | (index << 208);
    }

    /// @dev Whether the session is enabled and belongs to the account's current `epoch_` (an uninstall or
    ///      invalidateAllSessions since it was enabled makes it dead, whatever its status says).
    function isActiveAt(uint256 meta, uint32 epoch_) internal pure returns (bool) {
        return status(meta) == STATUS_ACTIVE && epoch(meta) == epoch_;
    }
}

/// @title SessionKeyValidator
/// @notice ERC-7579 validator (module type 1) that lets a session key sign UserOperations for a smart
///         account, but only for the calls, argument values, native value, time window and gas cost the
///         account's owner granted.
/// @dev Select it through the UserOperation nonce key as the account requires (on ERC-7579 reference-style
///      accounts: the top 20 bytes of the 192-bit key). The module knows nothing else of the account: it keys
///      all storage by `msg.sender`, asks the account for the owner's ERC-1271 verdict, and accepts exactly the
///      standard `execute(bytes32,bytes)` single and batch encodings.
///
/// Signature layouts (`userOp.signature`):
///
///     USE           | ECDSA signature of userOpHash by the session key (r, s, v)         | 65 bytes
///     USE_WITH_KEY  | 0x02 | session key (20 bytes) | ECDSA signature (65 bytes)         | 86 bytes
///     ENABLE        | 0x01 | abi.encode(Session, bytes ownerSignature, bytes sessionSignature)
///     SESSION       | 0x04 | sessionId (32) | key's signature (65) | co-signature (65)  | 98 or 163 bytes
///     AT (prefix)   | 0x03 | claimed time (6 bytes) | any layout above, SESSION's included | 7 + its length
///
/// AT nests around another layout (a co-signed session with per-period limits sends 0x03 | time | 0x04 | ...):
/// the module strips it, keeps the time to pick the period of per-period limits, and reads the rest as usual.
/// USE recovers the key from the signature and looks its permissions up. USE_WITH_KEY names the key, so the
/// whole policy check runs before the signature is checked: bundlers estimate gas with it and a dummy
/// signature. ENABLE stores a session granted off-chain by one owner signature (EIP-712, checked through the
/// account's ERC-1271 `isValidSignature`), then validates the operation as USE_WITH_KEY does (a co-signed
/// session as SESSION does; its sessionSignature is the key's signature and the co-signature, 130 bytes).
/// SESSION is a co-signed session's mode ({SessionCoSigning}): the id names the key and the permission space, the
/// whole policy check runs, then both signatures are checked (the co-signature is absent once the owner removed
/// the co-signer). All modes check the session key's signature the same way ({_recover}).
///
/// Sessions may also sign ERC-1271 messages in the account's name, as their signing permissions allow
/// ({SessionSigning}).
///
/// Failure policy: a signature that does not verify, an unknown key, or (in USE) no permission for a call
/// returns SIG_VALIDATION_FAILED (1), never a revert. Everything that cannot be a signature problem reverts
/// with a custom error saying which call, permission and rule: a callData that is not a supported `execute`,
/// a call to the account or this module, calldata a target could read in another way than the module judged
/// it (1-3 bytes, the zero selector with arguments, an argument word that is not its type's canonical
/// encoding), a value over the limit, a broken rule, calldata too short for a rule, a gas cost over the cap.
/// The session's window goes into the validation data; validation never reads the clock.
///
/// Storage (ERC-7562: every slot read or written during validation is keyed by the account, innermost):
///     _accounts[account]                       AccountState: epoch, installed, live sessions and permissions
///     _permissions[permKey][account].header    see {PermissionHeader};  permKey = keccak256(key, target, selector)
///     _permissions[permKey][account].words[i]  rule words (see {RuleWord}), then the session's paymasters
///     _sessions[sessionId][account].meta       see {SessionMeta}
///     _sessions[sessionId][account].grants[i]  target (160) | selector (32), to clear the headers on revoke
///     _liveSessions[i][account]                the ids of the account's live sessions (enumerable)
///     _coSigners, _signing, _signingRecords    see {SessionCoSigning} and {SessionSigning}
/// A co-signed session's permKey takes its space (see {SessionCoSigning}) in place of the key.
///
/// Only live permissions have a header with the live flag: revoking a session clears its headers, and
/// uninstalling the module (or invalidateAllSessions) clears the headers of every live session, so a USE
/// operation reads no epoch: for 1 call and 2 rules it reads 3 storage slots (the header and one word per
/// rule), whatever the number of sessions on the account. The epoch only binds off-chain enable signatures,
/// so that none signed before an uninstall can be replayed after a reinstall. To keep uninstalling bounded,
/// an account holds at most MAX_LIVE_PERMISSIONS live permissions.
contract SessionKeyValidator is SessionLimits, SessionSigning {
    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Most permissions in one session.
    uint256 public constant MAX_PERMISSIONS = 16;
    /// @notice Most storage words the rules of one permission (and the session's paymasters) may take.
    uint256 public constant MAX_RULE_WORDS = 31;
    /// @notice Most live (enabled, not revoked) permissions an account may hold at once, over all sessions.
    uint256 public constant MAX_LIVE_PERMISSIONS = 256;
    /// @notice Most paymasters a session may list as free of its gas cap.
    uint256 public constant MAX_PAYMASTERS = 7;

    uint8 internal constant EQUAL = 0;
    uint8 internal constant LESS_THAN_OR_EQUAL = 1;
    uint8 internal constant LESS_THAN = 2;
    uint8 internal constant GREATER_THAN_OR_EQUAL = 3;
    uint8 internal constant GREATER_THAN = 4;
    uint8 internal constant NOT_EQUAL = 5;
    uint8 internal constant IN_RANGE = 6;
    uint8 internal constant ONE_OF = 7;

    uint256 internal constant SIG_VALIDATION_FAILED = 1;
    /// @dev Set by {_checkOperation} in the validation data's aggregator field (never returned): the operation
    ///      counts towards limits. Only then is anything more done, so sessions without limits pay one AND.
    uint256 internal constant COUNT_LIMITS = 2;
    /// @dev IERC7579ModuleConfig.isModuleInstalled(uint256,address,bytes) and Safe's isModuleEnabled(address).
    bytes4 internal constant IS_MODULE_INSTALLED = 0x112d3a7d;
    bytes4 internal constant IS_MODULE_ENABLED = 0x2d9ad53d;

    bytes1 internal constant MODE_ENABLE = 0x01;
    bytes1 internal constant MODE_USE_WITH_KEY = 0x02;
    /// @dev Prefix claiming the time the operation will land at (6 bytes), before any other layout (SESSION's
    ///      included): it picks the period of per-period limits.
    bytes1 internal constant MODE_AT = 0x03;
    bytes1 internal constant MODE_SESSION = 0x04;

    uint256 internal constant VALUE_LIMIT_MAX = (1 << 96) - 1;
    uint256 internal constant GAS_CAP_MAX = (1 << 40) - 1;
    uint256 internal constant SIGN_BIT = 1 << 255;
    /// @dev A header's validAfter and validUntil, without its gas cap.
    uint256 internal constant WINDOW_MASK = (1 << 96) - 1;


    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    struct AccountState {
        uint32 epoch;
        bool installed;
        uint16 liveSessions;
        uint16 livePermissions;
    }

    /// @dev `header` is a {PermissionHeader}; `words` hold the rules ({RuleWord} first words, then their
    ///      further values), then the session's uncapped paymasters, one per word.
    struct PermissionSlots {
        uint256 header;
        uint256[MAX_RULE_WORDS] words;
    }

    /// @dev `meta` is a {SessionMeta}; `grants[i]` is permission i's target (160) | selector (32).
    struct SessionRecord {
        uint256 meta;
        uint256[MAX_PERMISSIONS] grants;
    }

    mapping(address account => AccountState) internal _accounts;
    mapping(bytes32 permissionKey => mapping(address account => PermissionSlots)) internal _permissions;
    mapping(bytes32 sessionId => mapping(address account => SessionRecord)) internal _sessions;
    mapping(uint256 index => mapping(address account => bytes32 sessionId)) internal _liveSessions;

    constructor() EIP712("keyscope SessionKeyValidator", "1") {}

    /*//////////////////////////////////////////////////////////////
                              ERC-7579 MODULE
    //////////////////////////////////////////////////////////////*/

    /// @notice Called by the account when it installs the module.
    /// @param data Empty, or `abi.encode(Session[])`: sessions to enable at once (the owner installs, so the
    ///        owner grants them).
    function onInstall(bytes calldata data) external override {
        AccountState storage state = _accounts[msg.sender];
        state.installed = true;
        if (data.length == 0) return;
        Session[] memory sessions = abi.decode(data, (Session[]));
        uint32 epoch = state.epoch;
        bytes32[] memory ids = signatureVerifier.sessionStructHashes(msg.sender, epoch, data);
        for (uint256 i = 0; i < sessions.length; ++i) {
            _enable(msg.sender, epoch, ids[i], sessions[i]);
        }
    }

    /// @notice Called by the account when it uninstalls the module: every session of the account dies, and a
    ///         later reinstall does not bring any back.
    function onUninstall(bytes calldata) external override {
        _accounts[msg.sender].installed = false;
        _invalidateAll(msg.sender);
    }

    /// @notice This is a validator (ERC-7579 module type 1) and nothing else.
    function isModuleType(uint256 moduleTypeId) external pure override returns (bool) {
        return moduleTypeId == 1;
    }

    /// @inheritdoc ISessionKeyValidator
    function isInitialized(address smartAccount) external view override returns (bool) {
        return _accounts[smartAccount].installed;
    }

    /*//////////////////////////////////////////////////////////////
                               VALIDATION
    //////////////////////////////////////////////////////////////*/

    /// @notice Validate a UserOperation signed by a session key (see the signature layouts above).
    /// @return validationData 0 or SIG_VALIDATION_FAILED in the low bits, with the session's validUntil and
    ///         validAfter packed above them as ERC-4337 defines.
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash)
        external
        override
        returns (uint256 validationData)
    {
        bytes calldata signature = userOp.signature;
        address account = msg.sender;

        if (signature.length == 65) {
            // USE: the key is whoever signed; a key without the permission may be a wrong signature
            address signer = _recover(userOpHash, signature);
            if (signer == address(0)) return SIG_VALIDATION_FAILED;
            (bool found, uint256 data) = _checkOperation(account, signer, userOp, false);
            if (!found) return SIG_VALIDATION_FAILED;
            return data & COUNT_LIMITS == 0 ? data : _limitedBounds(account, signer, userOp, NO_TIME, data);
        }
        uint256 time = NO_TIME;
        if (signature.length > 7 && signature[0] == MODE_AT) {
            // the time the operation claims to land at, for per-period limits; the rest is another layout
            time = uint48(bytes6(signature[1:7]));
            signature = signature[7:];
            if (signature.length == 65) return _validateUse(account, userOp, userOpHash, signature, time);
        }
        return _validateNamed(account, userOp, userOpHash, signature, time);
    }

    /// @dev The modes that name the key (USE_WITH_KEY, ENABLE) or the session (SESSION): the whole policy check runs
    ///      (and reverts on a refusal) before the signatures count.
    function _validateNamed(
        address account,
        PackedUserOperation calldata userOp,
        bytes32 userOpHash,
        bytes calldata signature,
        uint256 time
    ) internal returns (uint256 validationData) {
        address key;
        address space; // whose permissions: the key's, or a co-signed session's space
        bytes32 id;
        bytes calldata keySignature;
        if (signature.length == 86 && signature[0] == MODE_USE_WITH_KEY) {
            key = address(bytes20(signature[1:21]));
            space = key;
            keySignature = signature[21:];
        } else if (signature.length > 1 && signature[0] == MODE_ENABLE) {
            Session memory session;
            bytes memory ownerSignature;
            (session, ownerSignature, keySignature) = _decodeEnableData(signature[1:]);
            id = _enableWithOwnerSignature(account, session, ownerSignature, signature[1:]);
            key = session.sessionKey;
            space = session.coSigner == address(0) ? key : _coSignedSpace(id);
        } else if ((signature.length == 98 || signature.length == 163) && signature[0] == MODE_SESSION) {
            id = bytes32(signature[1:33]);
            key = _sessionKey(account, id);
            space = _coSignedSpace(id);
            keySignature = signature[33:];
        } else {
            return SIG_VALIDATION_FAILED;
        }
        (, validationData) = _checkOperation(account, space, userOp, true);
        if (validationData & COUNT_LIMITS != 0) {
            validationData = _limitedBounds(account, space, userOp, time, validationData);
        }
        if (key == address(0) || keySignature.length < 65 || _recover(userOpHash, keySignature[:65]) != key) {
            return SIG_VALIDATION_FAILED;
        }
        if (space == key) return keySignature.length == 65 ? validationData : SIG_VALIDATION_FAILED;
        // a co-signed session: the co-signer's signature of this operation too (none once the owner removed it)
        (bool coSigned, address coSigner) = _coSignerRecord(account, id);
        return coSigned && _coSignatureValid(coSigner, id, userOpHash, keySignature[65:])
            ? validationData
            : SIG_VALIDATION_FAILED;
    }

    /// @dev USE after an AT prefix: as the 65-byte branch of {validateUserOp}, with the claimed time.
    function _validateUse(
        address account,
        PackedUserOperation calldata userOp,
        bytes32 userOpHash,
        bytes calldata signature,
        uint256 time
    ) internal returns (uint256) {
        address signer = _recover(userOpHash, signature);
        if (signer == address(0)) return SIG_VALIDATION_FAILED;
        (bool found, uint256 data) = _checkOperation(account, signer, userOp, false);
        if (!found) return SIG_VALIDATION_FAILED;
        return data & COUNT_LIMITS == 0 ? data : _limitedBounds(account, signer, userOp, time, data);
    }

    /*//////////////////////////////////////////////////////////////
                           GRANT AND REVOKE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISessionKeyValidator
    function enableSession(Session calldata session) external override returns (bytes32 id) {
        uint32 epoch = _accounts[msg.sender].epoch;
        id = signatureVerifier.sessionStructHash(msg.sender, epoch, msg.data[4:]);
        _enable(msg.sender, epoch, id, session);
    }

    /// @inheritdoc ISessionKeyValidator
    function revokeSession(bytes32 id) external override {
        SessionRecord storage record = _sessions[id][msg.sender];
        uint256 meta = record.meta;
        if (SessionMeta.status(meta) == SessionMeta.STATUS_REVOKED) return;
        AccountState storage state = _accounts[msg.sender];
        if (SessionMeta.isActiveAt(meta, state.epoch)) {
            uint256 cleared = _clearPermissions(msg.sender, id, record, meta);
            // swap-remove the session from the live list
            uint256 index = SessionMeta.liveIndex(meta);
            uint256 last = state.liveSessions - 1;
            if (index != last) {
                bytes32 moved = _liveSessions[last][msg.sender];
                _liveSessions[index][msg.sender] = moved;
                SessionRecord storage movedRecord = _sessions[moved][msg.sender];
                movedRecord.meta = SessionMeta.withLiveIndex(movedRecord.meta, index);
            }
            state.liveSessions = uint16(last);
            state.livePermissions -= uint16(cleared);
        }
        record.meta = SessionMeta.REVOKED;
        emit SessionRevoked(msg.sender, id);
    }

    /// @inheritdoc ISessionKeyValidator
    function invalidateAllSessions() external override {
        _invalidateAll(msg.sender);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISessionKeyValidator
    function isSessionRevoked(address account, bytes32 id) external view override returns (bool) {
        return SessionMeta.status(_sessions[id][account].meta) == SessionMeta.STATUS_REVOKED;
    }

    /// @inheritdoc ISessionKeyValidator
    function isSessionActive(address account, bytes32 id) external view override returns (bool) {
        return SessionMeta.isActiveAt(_sessions[id][account].meta, _accounts[account].epoch);
    }

    /// @inheritdoc ISessionKeyValidator
    function epochOf(address account) external view override returns (uint32) {
        return _accounts[account].epoch;
    }

    /// @inheritdoc ISessionKeyValidator
    function sessionId(address account, Session calldata session) external view override returns (bytes32) {
        session; // hashed from the call's arguments
        return signatureVerifier.sessionStructHashOfCall(_accounts[account].epoch, msg.data[4:]);
    }

    /// @inheritdoc ISessionKeyValidator
    function grantDigest(address account, Session calldata session) external view override returns (bytes32) {
        session; // hashed from the call's arguments
        return _hashTypedDataV4(signatureVerifier.sessionStructHashOfCall(_accounts[account].epoch, msg.data[4:]));
    }

    /*//////////////////////////////////////////////////////////////
                          INTERNAL: VALIDATION
    //////////////////////////////////////////////////////////////*/

    /// @dev Check every call of the operation's `execute` callData against `key`'s permissions, and the most the
    ///      operation can cost against the session's maxGasCost. With `strict` false (USE), a call without
    ///      permission returns found = false (the signature may be wrong); with `strict` true the key is known
    ///      and it reverts with NoPermission. The validation data carries COUNT_LIMITS when a call's permission
    ///      counts towards limits: the caller then counts them ({_limitedBounds}), which clears it.
    function _checkOperation(address account, address key, PackedUserOperation calldata userOp, bool strict)
        internal
        view
        returns (bool found, uint256 validationData)
    {
        (bool batch, bytes calldata execution) = _execution(userOp.callData);
        // a paymaster the session lists lifts the cap of that session's calls (its list is read only then)
        bytes calldata paymasterAndData = userOp.paymasterAndData;
        address paymaster = paymasterAndData.length < 52 ? address(0) : address(bytes20(paymasterAndData[:20]));
        uint256 bounds;
        if (!batch) {
            if (execution.length < 52) revert MalformedExecution();
            (uint256 header, bool uncapped) = _checkCall(
                account,
                key,
                0,
                address(bytes20(execution[:20])),
                uint256(bytes32(execution[20:52])),
                execution[52:],
                strict,
                paymaster
            );
            if (header == 0) return (false, 0);
            bounds = uncapped ? header & (WINDOW_MASK | PermissionHeader.LIMITED) : header;
        } else {
            (found, bounds) = _checkBatch(account, key, execution, strict, paymaster);
            if (!found) return (false, 0);
        }
        uint256 gasCap = PermissionHeader.gasCapGwei(bounds);
        if (gasCap != 0) {
            uint256 cost = _maxCost(userOp, paymasterAndData);
            if (cost > gasCap * 1 gwei) revert GasCostTooHigh(cost, gasCap * 1 gwei);
        }
        // ERC-4337 validation data: aggregator/sigFailed (160) | validUntil (48) | validAfter (48); LIMITED (bit
        // 252) moves to COUNT_LIMITS (bit 1), in the one OR that builds the word.
        return (
            true,
            (PermissionHeader.validUntil(bounds) << 160) | (PermissionHeader.validAfter(bounds) << 208)
                | ((bounds >> 251) & COUNT_LIMITS)
        );
    }

    /// @dev Count an operation that passed the policy towards its sessions' limits ({SessionLimits}); its
    ///      validation data (`data`, from {_checkOperation}), with the window narrowed to the periods it was
    ///      counted in and COUNT_LIMITS cleared.
    function _limitedBounds(
        address account,
        address key,
        PackedUserOperation calldata userOp,
        uint256 time,
        uint256 data
    ) internal returns (uint256) {
        // {_checkOperation} checked the callData's head: its execution is re-sliced, not re-checked (and
        // {_execution} keeps its one caller, where the compiler inlines it)
        bytes calldata callData = userOp.callData;
        bool batch = callData[4] != 0x00;
        bytes calldata execution = callData[100:100 + uint256(bytes32(callData[68:100]))];
        bytes calldata paymasterAndData = userOp.paymasterAndData;
        address paymaster = paymasterAndData.length < 52 ? address(0) : address(bytes20(paymasterAndData[:20]));
        (uint256 validAfter, uint256 validUntil) =
            _countLimits(account, key, batch, execution, time, paymaster, _maxCost(userOp, paymasterAndData));
        uint256 after_ = uint48(data >> 208);
        uint256 until = uint48(data >> 160);
        if (after_ > validAfter) validAfter = after_;
        if (until != 0 && until < validUntil) validUntil = until;
        if (validUntil == UINT48_MAX) validUntil = 0; // no end, as without limits
        return (validUntil << 160) | (validAfter << 208);
    }

    /// @dev The most the EntryPoint can charge for the operation, which is also the most a paymaster's gas
    ///      accounting can reach: every gas limit, the paymaster's included, times maxFeePerGas (the v0.7
    ///      prefund). Layouts (v0.7): accountGasLimits = verificationGasLimit (high 128) | callGasLimit (low 128);
    ///      gasFees = maxPriorityFeePerGas (high 128) | maxFeePerGas (low 128); paymasterAndData = paymaster (20)
    ///      | paymasterVerificationGasLimit (16) | paymasterPostOpGasLimit (16) | paymasterData. The EntryPoint
    ///      refuses gas values above 120 bits (AA94) before validation, so nothing here can overflow.
    function _maxCost(PackedUserOperation calldata userOp, bytes calldata paymasterAndData)
        internal
        pure
        returns (uint256)
    {
        uint256 limits = uint256(userOp.accountGasLimits);
        uint256 gas = (limits >> 128) + uint128(limits) + userOp.preVerificationGas;
        if (paymasterAndData.length >= 52) {
            gas += uint128(bytes16(paymasterAndData[20:36])) + uint128(bytes16(paymasterAndData[36:52]));
        }
        return gas * uint128(uint256(userOp.gasFees));
    }

    /// @dev The head of `execute(bytes32 mode, bytes executionCalldata)`: refuses another selector, any mode
    ///      but single or batch call with default or try execution, and a non-canonical head; returns whether
    ///      the mode is batch, and executionCalldata.
    function _execution(bytes calldata callData) internal pure returns (bool batch, bytes calldata execution) {
        if (callData.length < 100) revert MalformedExecution();
        bytes4 selector = bytes4(callData[:4]);
        if (selector != IERC7579Execution.execute.selector) revert UnsupportedSelector(selector);
        bytes32 mode = bytes32(callData[4:36]);
        // call type (byte 0) and exec type (byte 1) each 0 or 1; the other 30 bytes zero
        if ((uint256(mode) >> 240) & 0xfefe != 0 || (uint256(mode) << 16) != 0) {
            revert UnsupportedExecutionMode(mode);
        }
        if (_word(callData, 36) != 0x40) revert MalformedExecution();
        uint256 length = _word(callData, 68);
        if (length > callData.length - 100) revert MalformedExecution();
        return (mode[0] != 0x00, callData[100:100 + length]);
    }

    /// @dev Walk a canonically ABI-encoded `Execution[]` and check each call; returns the intersection of their
    ///      permissions' bounds, laid out as a header's (the latest validAfter, the earliest validUntil and the
    ///      smallest gas cap; 0: none), found = false when a call has no permission (USE). A call `uncapped` by its
    ///      session's paymaster list adds no cap.
    function _checkBatch(address account, address key, bytes calldata execution, bool strict, address paymaster)
        internal
        view
        returns (bool found, uint256 bounds)
    {
        if (execution.length < 64 || _word(execution, 0) != 0x20) revert MalformedExecution();
        uint256 count = _word(execution, 32);
        if (count == 0) revert EmptyBatch();
        if (count > (execution.length - 64) / 32) revert MalformedExecution();
        uint256 expected = count * 32;
        uint256 validAfter = 0;
        uint256 validUntil = 0; // 0: none yet
        uint256 gasCap = 0; // 0: none yet
        for (uint256 i = 0; i < count; ++i) {
            if (_word(execution, 64 + 32 * i) != expected) revert MalformedExecution();
            uint256 start = 64 + expected;
            if (start + 128 > execution.length) revert MalformedExecution();
            uint256 target = _word(execution, start);
            if (target >> 160 != 0 || _word(execution, start + 64) != 0x60) revert MalformedExecution();
            uint256 size = _word(execution, start + 96);
            if (size > execution.length - start - 128) revert MalformedExecution();
            (uint256 header, bool uncapped) = _checkCall(
                account,
                key,
                i,
                address(uint160(target)),
                _word(execution, start + 32),
                execution[start + 128:start + 128 + size],
                strict,
                paymaster
            );
            if (header == 0) return (false, 0);
            uint256 after_ = PermissionHeader.validAfter(header);
            uint256 until = PermissionHeader.validUntil(header);
            uint256 cap = uncapped ? 0 : PermissionHeader.gasCapGwei(header);
            if (after_ > validAfter) validAfter = after_;
            if (until != 0 && (validUntil == 0 || until < validUntil)) validUntil = until;
            if (cap != 0 && (gasCap == 0 || cap < gasCap)) gasCap = cap;
            // `bounds` (set only at the end) gathers the LIMITED bits: no more variable live in this loop
            bounds |= header;
            expected += 128 + ((size + 31) & ~uint256(31));
        }
        return (true, validAfter | (validUntil << 48) | (gasCap << 208) | (bounds & PermissionHeader.LIMITED));
    }

    /// @dev Check one call against the key's permission for (target, selector). Returns the permission's header
    ///      (0 when there is none and not `strict`), and whether its session lists `paymaster` as uncapped.
    function _checkCall(
        address account,
        address key,
        uint256 callIndex,
        address target,
        uint256 value,
        bytes calldata data,
        bool strict,
        address paymaster
    ) internal view returns (uint256 header, bool uncapped) {
        if (target == account || target == address(this)) revert ForbiddenTarget(callIndex, target);
        // Selector 0x00000000 names empty calldata: calldata starting with it would reach the target's
        // fallback with bytes no permission describes.
        bytes4 selector;
        if (data.length >= 4) {
            selector = bytes4(data[:4]);
            if (selector == 0) revert ZeroSelectorCall(callIndex);
        } else if (data.length != 0) {
            revert InvalidCallData(callIndex);
        }

        PermissionSlots storage permission = _permissions[_permissionKey(key, target, selector)][account];
        header = permission.header;
        if (!PermissionHeader.isLive(header)) {
            if (strict) revert NoPermission(callIndex, target, selector);
            return (0, false);
        }
        uint256 permissionIndex = PermissionHeader.permissionIndex(header);
        uint256 valueLimit = PermissionHeader.valueLimit(header);
        if (value > valueLimit) revert ValueLimitExceeded(callIndex, permissionIndex, value, valueLimit);

        uint256 ruleCount = PermissionHeader.ruleCount(header);
        uint256 slot;
        assembly ("memory-safe") {
            slot := add(permission.slot, 1) // words[0]
        }
        unchecked {
            for (uint256 r = 0; r < ruleCount; ++r) {
                uint256 word = _load(slot++);
                uint256 offset = RuleWord.offset(word);
                if (data.length < offset + 36) revert CalldataTooShort(callIndex, permissionIndex, r);
                uint256 actual = _word(data, offset + 4);
                uint256 argType = RuleWord.checkedType(word);
                if (argType != 0 && !ArgType.isCanonical(argType, actual)) {
                    revert NonCanonicalArgument(callIndex, permissionIndex, r, uint8(argType), bytes32(actual));
                }
                uint256 flags = RuleWord.flags(word);
                uint256 first = flags & RuleWord.WIDE != 0 ? _load(slot++) : RuleWord.inlineValue(word);
                uint256 op = flags & 0x0f;
                bool ok;
                if (op == EQUAL) {
                    ok = actual == first;
                } else if (op == ONE_OF) {
                    uint256 end = slot + RuleWord.valueCount(word) - 1; // the words of values 2..n
                    ok = actual == first;
                    while (!ok && slot < end) {
                        ok = actual == _load(slot++);
                    }
                    slot = end;
                } else if (op == NOT_EQUAL) {
                    ok = actual != first;
                } else {
                    // Ordering. Signed words compare as unsigned once their sign bits are flipped.
                    uint256 flip = flags & RuleWord.SIGNED != 0 ? SIGN_BIT : 0;
                    uint256 a = actual ^ flip;
                    uint256 b = first ^ flip;
                    if (op == IN_RANGE) ok = a >= b && a <= (_load(slot++) ^ flip);
                    else if (op == LESS_THAN_OR_EQUAL) ok = a <= b;
                    else if (op == LESS_THAN) ok = a < b;
                    else if (op == GREATER_THAN_OR_EQUAL) ok = a >= b;
                    else ok = a > b; // GREATER_THAN; other ops are refused when the rule is stored
                }
                if (!ok) revert RuleViolated(callIndex, permissionIndex, r, bytes32(actual));
            }
        }
        // the session's uncapped paymasters follow the rule words
        if (paymaster != address(0) && PermissionHeader.gasCapGwei(header) != 0) {
            uint256 end = slot + PermissionHeader.paymasterCount(header);
            while (!uncapped && slot < end) {
                uncapped = _load(slot++) == uint256(uint160(paymaster));
            }
        }
    }

    /// @inheritdoc SessionLimits
    function _permissionSlot(address account, address key, address target, bytes4 selector)
        internal
        view
        override
        returns (uint256 slot)
    {
        PermissionSlots storage permission = _permissions[_permissionKey(key, target, selector)][account];
        assembly ("memory-safe") {
            slot := permission.slot
        }
    }

    /// @inheritdoc SessionLimits
    function _meterWordOffset() internal pure override returns (uint256) {
        return MAX_RULE_WORDS; // words[MAX_RULE_WORDS - 1], after the header
    }

    /// @dev The storage word at `slot`.
    function _load(uint256 slot) internal view returns (uint256 value) {
        assembly ("memory-safe") {
            value := sload(slot)
        }
    }

    /// @dev Recover the signer of `hash` from a 65-byte ECDSA `signature` (low s, v 27 or 28, no prefix);
    ///      address(0) when it does not recover. Every signature mode checks the session key with this.
    function _recover(bytes32 hash, bytes calldata signature) internal pure returns (address signer) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        return err == ECDSA.RecoverError.NoError ? recovered : address(0);
    }

    /// @dev The 32-byte word of `data` that starts at byte `offset`. Callers check that the word is within
    ///      `data`: past its end, CALLDATALOAD reads whatever calldata follows (zeros only past the calldata's
    ///      end).
    function _word(bytes calldata data, uint256 offset) internal pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := calldataload(add(data.offset, offset))
        }
    }

    /// @dev The key of a permission in `_permissions`: keccak256 of the session key (20 bytes), the target
    ///      (20 bytes) and the selector (4 bytes), packed (44 bytes, so no two triples share an encoding).
    function _permissionKey(address key, address target, bytes4 selector) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, shl(96, key))
            mstore(add(ptr, 20), shl(96, target))
            mstore(add(ptr, 40), selector)
            result := keccak256(ptr, 44)
        }
    }

    /*//////////////////////////////////////////////////////////////
                          INTERNAL: ENABLING
    //////////////////////////////////////////////////////////////*/

    /// @dev Decode ENABLE data: `abi.encode(Session, bytes ownerSignature, bytes sessionSignature)`. The session
    ///      key's signature stays in calldata, to be checked as every other mode checks it.
    function _decodeEnableData(bytes calldata data)
        internal
        pure
        returns (Session memory session, bytes memory ownerSignature, bytes calldata sessionSignature)
    {
        if (data.length < 96) revert MalformedEnableData();
        for (uint256 i = 0; i < 3; ++i) {
            if (_word(data, 32 * i) > data.length - 32) revert MalformedEnableData();
        }
        uint256 at = _word(data, 64);
        uint256 size = _word(data, at);
        if (size > data.length - at - 32) revert MalformedEnableData();
        sessionSignature = data[at + 32:at + 32 + size];
        (session, ownerSignature) = abi.decode(data, (Session, bytes));
    }

    /// @dev Enable a session the owner signed off-chain, unless it is already active (a retried operation);
    ///      returns its id.
    function _enableWithOwnerSignature(
        address account,
        Session memory session,
        bytes memory ownerSignature,
        bytes calldata enableData
    ) internal returns (bytes32 id) {
        uint32 epoch = _accounts[account].epoch;
        id = signatureVerifier.sessionStructHash(account, epoch, enableData);
        if (SessionMeta.isActiveAt(_sessions[id][account].meta, epoch)) return id;
        if (IERC1271(account).isValidSignature(_hashTypedDataV4(id), ownerSignature) != ERC1271_MAGIC) {
            revert InvalidOwnerSignature(account, id);
        }
        _enable(account, epoch, id, session);
    }

    /// @dev Check and store a session's permissions. Reverts on anything malformed.
    function _enable(address account, uint32 epoch, bytes32 id, Session memory session) internal {
        SessionRecord storage record = _sessions[id][account];
        uint256 meta = record.meta;
        if (SessionMeta.status(meta) == SessionMeta.STATUS_REVOKED) revert SessionIsRevoked(id);
        if (SessionMeta.isActiveAt(meta, epoch)) return;

        address key = session.sessionKey;
        if (key == address(0)) revert InvalidSessionKey();
        if (session.validUntil != 0 && session.validUntil <= session.validAfter) {
            revert InvalidTimeWindow(session.validAfter, session.validUntil);
        }
        uint256 count = session.permissions.length;
        uint256 signing = session.typedData.length + session.signIn.length;
        if (count > MAX_PERMISSIONS || (count == 0 && signing == 0)) revert InvalidPermissionCount(count);
        AccountState storage state = _accounts[account];
        uint256 livePermissions = state.livePermissions + count + signing;
        if (livePermissions > MAX_LIVE_PERMISSIONS) revert TooManyLivePermissions(account, MAX_LIVE_PERMISSIONS);

        uint256 gasCapGwei = session.maxGasCost / 1 gwei;
        if (session.maxGasCost != 0 && gasCapGwei == 0) revert InvalidMaxGasCost(session.maxGasCost);
        if (gasCapGwei > GAS_CAP_MAX) gasCapGwei = GAS_CAP_MAX;
        address[] memory paymasters = session.paymasters;
        if (paymasters.length > MAX_PAYMASTERS) revert InvalidPaymasters(paymasters.length, MAX_PAYMASTERS);
        for (uint256 p = 0; p < paymasters.length; ++p) {
            if (paymasters[p] == address(0)) revert InvalidPaymasters(paymasters.length, p);
        }
        // without a cap or a gas budget there is nothing to lift: the list is signed, but not stored
        if (gasCapGwei == 0 && !_hasGasLimit(session)) paymasters = new address[](0);
        // a co-signed session's permissions go to its own space, which no single signature reaches
        address space = _enableCoSigner(account, id, key, session.coSigner);
        uint256[] memory meterWords = _prepareLimits(account, id, session);

        for (uint256 i = 0; i < count; ++i) {
            Permission memory permission = session.permissions[i];
            address target = permission.target;
            if (target == address(0) || target == account || target == address(this)) {
                revert ForbiddenPermissionTarget(i, target);
            }
            _refuseModuleTarget(account, i, target);
            if (permission.selector == 0 && permission.rules.length != 0) revert InvalidRule(i, 0);
            PermissionSlots storage slots = _permissions[_permissionKey(space, target, permission.selector)][account];
            if (PermissionHeader.isLive(slots.header)) revert PermissionAlreadyGranted(i, target, permission.selector);
            uint256 valueLimit = permission.valueLimit > VALUE_LIMIT_MAX ? VALUE_LIMIT_MAX : permission.valueLimit;
            uint256 words = _storeRules(slots, i, permission.rules);
            // a permission counting towards limits keeps its meter word last
            uint256 meterWord = meterWords[i];
            uint256 needed = words + paymasters.length + (meterWord != 0 ? 1 : 0);
            if (needed > MAX_RULE_WORDS) revert TooManyRules(i, needed);
            for (uint256 p = 0; p < paymasters.length; ++p) {
                slots.words[words + p] = uint256(uint160(paymasters[p]));
            }
            if (meterWord != 0) slots.words[MAX_RULE_WORDS - 1] = meterWord | (words << 248);
            slots.header = PermissionHeader.encode(
                session.validAfter,
                session.validUntil,
                valueLimit,
                i,
                permission.rules.length,
                gasCapGwei,
                paymasters.length
            ) | (meterWord != 0 ? PermissionHeader.LIMITED : 0);
            record.grants[i] = uint256(uint160(target)) | (uint256(uint32(permission.selector)) << 160);
        }
        _enableSigning(account, id, space, session);
        uint256 index = state.liveSessions;
        _liveSessions[index][account] = id;
        state.liveSessions = uint16(index + 1);
        state.livePermissions = uint16(livePermissions);
        record.meta = SessionMeta.encode(key, epoch, count, index);
        emit SessionEnabled(account, id, key, session.validAfter, session.validUntil);
    }

    /// @dev Refuse a permission whose target is a module of the account: a validator, an executor or a hook
    ///      (ERC-7579 `isModuleInstalled`), or a Safe module such as Safe7579's adapter (`isModuleEnabled`).
    ///      Modules keep their configuration per calling account, so a call from the account could reconfigure
    ///      it (an owner validator's `onInstall` would replace the owner). An account that does not answer (no
    ///      such function, a revert) is taken to say no. Only enabling asks: the USE path is unchanged.
    function _refuseModuleTarget(address account, uint256 permissionIndex, address target) internal view {
        for (uint256 moduleType = 1; moduleType <= 4; ++moduleType) {
            if (moduleType == 3) continue; // fallback handlers are installed per selector: see the threat model
            if (_asks(account, abi.encodeWithSelector(IS_MODULE_INSTALLED, moduleType, target, ""))) {
                revert PermissionTargetIsModule(permissionIndex, target, moduleType);
            }
        }
        if (_asks(account, abi.encodeWithSelector(IS_MODULE_ENABLED, target))) {
            revert PermissionTargetIsModule(permissionIndex, target, 0);
        }
    }

    /// @dev Whether `account` answers `data` (a view returning bool) with true.
    function _asks(address account, bytes memory data) internal view returns (bool yes) {
        (bool ok, bytes memory answer) = account.staticcall(data);
        return ok && answer.length >= 32 && abi.decode(answer, (uint256)) == 1;
    }

    /// @dev Clear the headers of a live session's permissions, its signing permissions' included (their words
    ///      become unreachable); returns how many permissions it held.
    function _clearPermissions(address account, bytes32 id, SessionRecord storage record, uint256 meta)
        internal
        returns (uint256 cleared)
    {
        (bool coSigned,) = _coSignerRecord(account, id);
        address space = coSigned ? _coSignedSpace(id) : SessionMeta.key(meta);
        uint256 count = SessionMeta.permissionCount(meta);
        for (uint256 i = 0; i < count; ++i) {
            uint256 grant = record.grants[i];
            delete _permissions[_permissionKey(space, address(uint160(grant)), bytes4(uint32(grant >> 160)))][account]
                .header;
        }
        return count + _clearSigning(account, id);
    }

    /// @dev Kill every live session of `account` and move to a new epoch, so that no enable signature made
    ///      before can be used again.
    function _invalidateAll(address account) internal {
        AccountState storage state = _accounts[account];
        uint256 live = state.liveSessions;
        for (uint256 i = 0; i < live; ++i) {
            bytes32 id = _liveSessions[i][account];
            SessionRecord storage record = _sessions[id][account];
            _clearPermissions(account, id, record, record.meta);
        }
        state.liveSessions = 0;
        state.livePermissions = 0;
        uint32 epoch = ++state.epoch;
        emit SessionsInvalidated(account, epoch);
    }

    /// @dev Check, encode and store a permission's rules ({RuleEncoding}); returns the storage words they take.
    function _storeRules(PermissionSlots storage slots, uint256 permissionIndex, Rule[] memory rules)
        internal
        returns (uint256 w)
    {
        uint256[MAX_RULE_WORDS] memory words;
        (words, w) = signatureVerifier.encodeRules(permissionIndex, rules);
        for (uint256 i = 0; i < w; ++i) {
            slots.words[i] = words[i];
        }
    }

    /*//////////////////////////////////////////////////////////////
                    INTERNAL: FOR SIGNING AND CO-SIGNING
    //////////////////////////////////////////////////////////////*/

    /// @dev The recorded key of a session (address(0): none, or revoked).
    function _sessionKey(address account, bytes32 id) internal view override returns (address) {
        return SessionMeta.key(_sessions[id][account].meta);
    }

    /// @dev The key of an active session (enabled at the account's current epoch, not revoked), else address(0).
    function _activeSessionKey(address account, bytes32 id) internal view override returns (address) {
        uint256 meta = _sessions[id][account].meta;
        return SessionMeta.isActiveAt(meta, _accounts[account].epoch) ? SessionMeta.key(meta) : address(0);
    }
}
