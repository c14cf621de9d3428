// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC7579Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ISessionKeyValidator} from "./interfaces/ISessionKeyValidator.sol";

/// @title SessionKeyValidator
/// @notice ERC-7579 validator (module type 1) that lets a session key sign UserOperations for a smart
///         account, but only for the calls, argument values, native value and time window the account's
///         owner granted.
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
///
/// USE recovers the key from the signature and looks its permissions up. USE_WITH_KEY names the key, so the
/// whole policy check runs before the signature is checked: bundlers estimate gas with it and a dummy
/// signature. ENABLE stores a session granted off-chain by one owner signature (EIP-712, checked through the
/// account's ERC-1271 `isValidSignature`), then validates the operation as USE_WITH_KEY does.
///
/// Failure policy: a signature that does not verify, an unknown key, or (in USE) no permission for a call
/// returns SIG_VALIDATION_FAILED (1), never a revert. Everything that cannot be a signature problem reverts
/// with a custom error saying which call, permission and rule: a callData that is not a supported `execute`,
/// a call to the account or this module, a value over the limit, a broken rule, calldata too short for a rule.
/// The session's window goes into the validation data; validation never reads the clock.
///
/// Storage (ERC-7562: every slot read or written during validation is keyed by the account, innermost):
///     _accounts[account]                       AccountState: epoch, installed, live sessions and permissions
///     _permissions[permKey][account].header    see HEADER LAYOUT;  permKey = keccak256(key, target, selector)
///     _permissions[permKey][account].words[i]  rule words, see RULE LAYOUT
///     _sessions[sessionId][account].meta       key (160) | epoch (32) | status (8) | permission count (8)
///                                              | index in the live list (16)
///     _sessions[sessionId][account].grants[i]  target (160) | selector (32), to clear the headers on revoke
///     _liveSessions[i][account]                the ids of the account's live sessions (enumerable)
///
/// Only live permissions have a header with the live flag: revoking a session clears its headers, and
/// uninstalling the module (or invalidateAllSessions) clears the headers of every live session, so a USE
/// operation reads no epoch: for 1 call and 2 rules it reads 3 storage slots (the header and one word per
/// rule), whatever the number of sessions on the account. The epoch only binds off-chain enable signatures,
/// so that none signed before an uninstall can be replayed after a reinstall. To keep uninstalling bounded,
/// an account holds at most MAX_LIVE_PERMISSIONS live permissions.
contract SessionKeyValidator is ISessionKeyValidator, EIP712 {
    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Most permissions in one session.
    uint256 public constant MAX_PERMISSIONS = 16;
    /// @notice Most storage words the rules of one permission may take.
    uint256 public constant MAX_RULE_WORDS = 31;
    /// @notice Most live (enabled, not revoked) permissions an account may hold at once, over all sessions.
    uint256 public constant MAX_LIVE_PERMISSIONS = 256;

    uint8 internal constant EQUAL = 0;
    uint8 internal constant LESS_THAN_OR_EQUAL = 1;
    uint8 internal constant LESS_THAN = 2;
    uint8 internal constant GREATER_THAN_OR_EQUAL = 3;
    uint8 internal constant GREATER_THAN = 4;
    uint8 internal constant NOT_EQUAL = 5;
    uint8 internal constant IN_RANGE = 6;
    uint8 internal constant ONE_OF = 7;
    uint8 internal constant SIGNED = 0x40;
    /// @dev Storage-only flag: the first reference value does not fit inline and sits in the next word.
    uint8 internal constant WIDE = 0x80;

    uint256 internal constant SIG_VALIDATION_FAILED = 1;
    bytes4 internal constant ERC1271_MAGIC = 0x1626ba7e;
    bytes4 internal constant ERC1271_INVALID = 0xffffffff;

    bytes1 internal constant MODE_ENABLE = 0x01;
    bytes1 internal constant MODE_USE_WITH_KEY = 0x02;

    uint8 internal constant STATUS_NONE = 0;
    uint8 internal constant STATUS_ACTIVE = 1;
    uint8 internal constant STATUS_REVOKED = 2;

    uint256 internal constant INLINE_MASK = (1 << 224) - 1;
    uint256 internal constant VALUE_LIMIT_MAX = (1 << 96) - 1;
    uint256 internal constant LIVE = 1 << 248;
    uint256 internal constant GAS_CAP_MAX = (1 << 40) - 1;
    uint256 internal constant SIGN_BIT = 1 << 255;

    bytes32 internal constant RULE_TYPEHASH = keccak256("Rule(uint8 condition,uint16 offset,uint256[] values)");
    bytes32 internal constant PERMISSION_TYPEHASH = keccak256(
        "Permission(address target,bytes4 selector,uint256 valueLimit,Rule[] rules)"
        "Rule(uint8 condition,uint16 offset,uint256[] values)"
    );
    bytes32 internal constant SESSION_TYPEHASH = keccak256(
        "Session(address account,address sessionKey,uint48 validAfter,uint48 validUntil,uint256 maxGasCost,uint32 epoch,"
        "uint256 salt,Permission[] permissions)"
        "Permission(address target,bytes4 selector,uint256 valueLimit,Rule[] rules)"
        "Rule(uint8 condition,uint16 offset,uint256[] values)"
    );

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    struct AccountState {
        uint32 epoch;
        bool installed;
        uint16 liveSessions;
        uint16 livePermissions;
    }

    /// @dev HEADER LAYOUT (bit ranges, least significant first)
    ///
    ///     [  0,  48)  validAfter        [ 48,  96)  validUntil      [ 96, 192)  valueLimit
    ///     [192, 200)  permission index in its session              [200, 208)  rule count
    ///     [208, 248)  the session's maxGasCost in gwei (0: none)    [248, 256)  live flag (1)
    ///
    /// RULE LAYOUT, first word of each rule
    ///
    ///     [240, 256)  offset            [232, 240)  condition (| SIGNED, | WIDE)
    ///     [224, 232)  value count       [  0, 224)  first value, inline (sign-extended when SIGNED) unless WIDE
    ///
    /// followed by the first value when WIDE, then values 2..n (IN_RANGE's high end, ONE_OF's other values).
    struct PermissionSlots {
        uint256 header;
        uint256[MAX_RULE_WORDS] words;
    }

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
        for (uint256 i = 0; i < sessions.length; ++i) {
            bytes32 id = _sessionStructHash(msg.sender, epoch, sessions[i]);
            _enable(msg.sender, epoch, id, sessions[i]);
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

    /// @notice Session keys never sign ERC-1271 messages for the account: always invalid.
    /// @dev Otherwise a session key could sign permits, orders or logins in the account's name.
    function isValidSignatureWithSender(address, bytes32, bytes calldata) external pure override returns (bytes4) {
        return ERC1271_INVALID;
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
            (address key, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(userOpHash, signature);
            if (err != ECDSA.RecoverError.NoError) return SIG_VALIDATION_FAILED;
            (bool found, uint256 data) = _checkOperation(account, key, userOp, false);
            return found ? data : SIG_VALIDATION_FAILED;
        }
        if (signature.length == 86 && signature[0] == MODE_USE_WITH_KEY) {
            address key = address(bytes20(signature[1:21]));
            (, validationData) = _checkOperation(account, key, userOp, true);
            return _signedBy(userOpHash, signature[21:], key) ? validationData : SIG_VALIDATION_FAILED;
        }
        if (signature.length > 1 && signature[0] == MODE_ENABLE) {
            (Session memory session, bytes memory ownerSignature, bytes memory sessionSignature) =
                _decodeEnableData(signature[1:]);
            _enableWithOwnerSignature(account, session, ownerSignature);
            (, validationData) = _checkOperation(account, session.sessionKey, userOp, true);
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(userOpHash, sessionSignature);
            return err == ECDSA.RecoverError.NoError && recovered == session.sessionKey
                ? validationData
                : SIG_VALIDATION_FAILED;
        }
        return SIG_VALIDATION_FAILED;
    }

    /*//////////////////////////////////////////////////////////////
                           GRANT AND REVOKE
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISessionKeyValidator
    function enableSession(Session calldata session) external override returns (bytes32 id) {
        uint32 epoch = _accounts[msg.sender].epoch;
        Session memory s = session;
        id = _sessionStructHash(msg.sender, epoch, s);
        _enable(msg.sender, epoch, id, s);
    }

    /// @inheritdoc ISessionKeyValidator
    function revokeSession(bytes32 id) external override {
        SessionRecord storage record = _sessions[id][msg.sender];
        uint256 meta = record.meta;
        if (uint8(meta >> 192) == STATUS_REVOKED) return;
        AccountState storage state = _accounts[msg.sender];
        if (uint8(meta >> 192) == STATUS_ACTIVE && uint32(meta >> 160) == state.epoch) {
            _clearPermissions(msg.sender, record, meta);
            // swap-remove the session from the live list
            uint256 index = uint16(meta >> 208);
            uint256 last = state.liveSessions - 1;
            if (index != last) {
                bytes32 moved = _liveSessions[last][msg.sender];
                _liveSessions[index][msg.sender] = moved;
                SessionRecord storage movedRecord = _sessions[moved][msg.sender];
                movedRecord.meta = (movedRecord.meta & ~(uint256(0xffff) << 208)) | (index << 208);
            }
            state.liveSessions = uint16(last);
            state.livePermissions -= uint16(uint8(meta >> 200));
        }
        record.meta = uint256(STATUS_REVOKED) << 192;
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
        return uint8(_sessions[id][account].meta >> 192) == STATUS_REVOKED;
    }

    /// @inheritdoc ISessionKeyValidator
    function isSessionActive(address account, bytes32 id) external view override returns (bool) {
        uint256 meta = _sessions[id][account].meta;
        return uint8(meta >> 192) == STATUS_ACTIVE && uint32(meta >> 160) == _accounts[account].epoch;
    }

    /// @inheritdoc ISessionKeyValidator
    function epochOf(address account) external view override returns (uint32) {
        return _accounts[account].epoch;
    }

    /// @inheritdoc ISessionKeyValidator
    function sessionId(address account, Session calldata session) external view override returns (bytes32) {
        return _sessionStructHash(account, _accounts[account].epoch, session);
    }

    /// @inheritdoc ISessionKeyValidator
    function enableDigest(address account, Session calldata session) external view override returns (bytes32) {
        return _hashTypedDataV4(_sessionStructHash(account, _accounts[account].epoch, session));
    }

    /*//////////////////////////////////////////////////////////////
                          INTERNAL: VALIDATION
    //////////////////////////////////////////////////////////////*/

    /// @dev Check every call of the operation's `execute` callData against `key`'s permissions, and the most the
    ///      operation can cost the account against the session's maxGasCost. With `strict` false (USE), a call
    ///      without permission returns found = false (the signature may be wrong); with `strict` true the key
    ///      is known and it reverts with NoPermission.
    function _checkOperation(address account, address key, PackedUserOperation calldata userOp, bool strict)
        internal
        view
        returns (bool found, uint256 validationData)
    {
        bytes calldata callData = userOp.callData;
        if (callData.length < 100) revert MalformedExecution();
        bytes4 selector;
        bytes32 mode;
        uint256 executionOffset;
        uint256 length;
        assembly ("memory-safe") {
            let p := callData.offset
            selector := and(calldataload(p), shl(224, 0xffffffff))
            mode := calldataload(add(p, 4))
            executionOffset := calldataload(add(p, 36))
            length := calldataload(add(p, 68))
        }
        if (selector != IERC7579Execution.execute.selector) revert UnsupportedSelector(selector);
        // call type (byte 0) and exec type (byte 1) each 0 or 1; the other 30 bytes zero
        if ((uint256(mode) >> 240) & 0xfefe != 0 || (uint256(mode) << 16) != 0) {
            revert UnsupportedExecutionMode(mode);
        }
        if (executionOffset != 0x40) revert MalformedExecution();
        if (length > callData.length - 100) revert MalformedExecution();
        bytes calldata execution = callData[100:100 + length];

        uint256 validAfter;
        uint256 validUntil;
        uint256 gasCap;
        if (mode[0] == 0x00) {
            if (execution.length < 52) revert MalformedExecution();
            address target;
            uint256 value;
            assembly ("memory-safe") {
                target := shr(96, calldataload(execution.offset))
                value := calldataload(add(execution.offset, 20))
            }
            (found, validAfter, validUntil, gasCap) =
                _checkCall(account, key, 0, target, value, execution[52:], strict);
            if (!found) return (false, 0);
        } else {
            (found, validAfter, validUntil, gasCap) = _checkBatch(account, key, execution, strict);
            if (!found) return (false, 0);
        }
        if (gasCap != 0 && userOp.paymasterAndData.length == 0) {
            // The most the EntryPoint can charge the account: every gas limit at maxFeePerGas (v0.7 prefund).
            // accountGasLimits = verificationGasLimit (128) | callGasLimit (128); gasFees = priority | maxFee.
            uint256 limits;
            uint256 preVerificationGas;
            uint256 maxFeePerGas;
            assembly ("memory-safe") {
                limits := calldataload(add(userOp, 0x80))
                preVerificationGas := calldataload(add(userOp, 0xa0))
                maxFeePerGas := and(calldataload(add(userOp, 0xc0)), 0xffffffffffffffffffffffffffffffff)
            }
            uint256 cost = ((limits >> 128) + uint128(limits) + preVerificationGas) * maxFeePerGas;
            uint256 limit = gasCap * 1 gwei;
            if (cost > limit) revert GasCostTooHigh(cost, limit);
        }
        // ERC-4337 validation data: aggregator/sigFailed (160) | validUntil (48) | validAfter (48).
        validationData = (validUntil << 160) | (validAfter << 208);
    }

    /// @dev Walk a canonically ABI-encoded `Execution[]` and check each call; the window is their intersection.
    function _checkBatch(address account, address key, bytes calldata execution, bool strict)
        internal
        view
        returns (bool, uint256 validAfter, uint256 validUntil, uint256 gasCap)
    {
        if (execution.length < 64 || _word(execution, 0) != 0x20) revert MalformedExecution();
        uint256 count = _word(execution, 32);
        if (count == 0) revert EmptyBatch();
        if (count > (execution.length - 64) / 32) revert MalformedExecution();
        uint256 expected = count * 32;
        for (uint256 i = 0; i < count; ++i) {
            if (_word(execution, 64 + 32 * i) != expected) revert MalformedExecution();
            uint256 start = 64 + expected;
            if (start + 128 > execution.length) revert MalformedExecution();
            uint256 target = _word(execution, start);
            if (target >> 160 != 0 || _word(execution, start + 64) != 0x60) revert MalformedExecution();
            uint256 size = _word(execution, start + 96);
            if (size > execution.length - start - 128) revert MalformedExecution();
            (bool found, uint256 after_, uint256 until, uint256 cap) = _checkCall(
                account,
                key,
                i,
                address(uint160(target)),
                _word(execution, start + 32),
                execution[start + 128:start + 128 + size],
                strict
            );
            if (!found) return (false, 0, 0, 0);
            if (after_ > validAfter) validAfter = after_;
            if (until != 0 && (validUntil == 0 || until < validUntil)) validUntil = until;
            if (cap != 0 && (gasCap == 0 || cap < gasCap)) gasCap = cap;
            expected += 128 + ((size + 31) & ~uint256(31));
        }
        return (true, validAfter, validUntil, gasCap);
    }

    /// @dev Check one call against the key's permission for (target, selector).
    function _checkCall(
        address account,
        address key,
        uint256 callIndex,
        address target,
        uint256 value,
        bytes calldata data,
        bool strict
    ) internal view returns (bool, uint256 validAfter, uint256 validUntil, uint256 gasCap) {
        if (target == account || target == address(this)) revert ForbiddenTarget(callIndex, target);
        bytes4 selector;
        if (data.length >= 4) {
            assembly ("memory-safe") {
                selector := and(calldataload(data.offset), shl(224, 0xffffffff))
            }
        } else if (data.length != 0) {
            revert InvalidCallData(callIndex);
        }

        PermissionSlots storage permission = _permissions[_permissionKey(key, target, selector)][account];
        uint256 header = permission.header;
        if (header & LIVE == 0) {
            if (strict) revert NoPermission(callIndex, target, selector);
            return (false, 0, 0, 0);
        }
        uint256 permissionIndex = uint8(header >> 192);
        uint256 valueLimit = uint96(header >> 96);
        if (value > valueLimit) revert ValueLimitExceeded(callIndex, permissionIndex, value, valueLimit);

        uint256 ruleCount = uint8(header >> 200);
        uint256 slot;
        assembly ("memory-safe") {
            slot := add(permission.slot, 1) // words[0]
        }
        unchecked {
            for (uint256 r = 0; r < ruleCount; ++r) {
                uint256 word = _load(slot++);
                uint256 offset = word >> 240;
                uint256 condition = (word >> 232) & 0xff;
                if (data.length < offset + 36) revert CalldataTooShort(callIndex, permissionIndex, r);
                uint256 actual;
                assembly ("memory-safe") {
                    actual := calldataload(add(data.offset, add(offset, 4)))
                }
                uint256 first;
                if (condition & WIDE != 0) {
                    first = _load(slot++);
                } else if (condition & SIGNED != 0) {
                    assembly ("memory-safe") {
                        first := signextend(27, word)
                    }
                } else {
                    first = word & INLINE_MASK;
                }
                uint256 op = condition & 0x0f;
                bool ok;
                if (op == EQUAL) {
                    ok = actual == first;
                } else if (op == ONE_OF) {
                    uint256 end = slot + uint8(word >> 224) - 1; // the words of values 2..n
                    ok = actual == first;
                    while (!ok && slot < end) {
                        ok = actual == _load(slot++);
                    }
                    slot = end;
                } else if (op == NOT_EQUAL) {
                    ok = actual != first;
                } else {
                    // Ordering. Signed words compare as unsigned once their sign bits are flipped.
                    uint256 flip = condition & SIGNED != 0 ? SIGN_BIT : 0;
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
        return (true, uint48(header), uint48(header >> 48), uint40(header >> 208));
    }

    /// @dev The storage word at `slot`.
    function _load(uint256 slot) internal view returns (uint256 value) {
        assembly ("memory-safe") {
            value := sload(slot)
        }
    }

    /// @dev Whether `signature` (65 bytes, calldata) is `key`'s signature of `hash`.
    function _signedBy(bytes32 hash, bytes calldata signature, address key) internal pure returns (bool) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        return err == ECDSA.RecoverError.NoError && recovered == key;
    }

    function _word(bytes calldata data, uint256 offset) internal pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := calldataload(add(data.offset, offset))
        }
    }

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

    /// @dev Decode ENABLE data: `abi.encode(Session, bytes ownerSignature, bytes sessionSignature)`.
    function _decodeEnableData(bytes calldata data)
        internal
        pure
        returns (Session memory session, bytes memory ownerSignature, bytes memory sessionSignature)
    {
        if (data.length < 96) revert MalformedEnableData();
        for (uint256 i = 0; i < 3; ++i) {
            if (_word(data, 32 * i) > data.length - 32) revert MalformedEnableData();
        }
        return abi.decode(data, (Session, bytes, bytes));
    }

    /// @dev Enable a session the owner signed off-chain, unless it is already active (a retried operation).
    function _enableWithOwnerSignature(address account, Session memory session, bytes memory ownerSignature)
        internal
    {
        uint32 epoch = _accounts[account].epoch;
        bytes32 id = _sessionStructHash(account, epoch, session);
        uint256 meta = _sessions[id][account].meta;
        if (uint8(meta >> 192) == STATUS_ACTIVE && uint32(meta >> 160) == epoch) return;
        if (IERC1271(account).isValidSignature(_hashTypedDataV4(id), ownerSignature) != ERC1271_MAGIC) {
            revert InvalidOwnerSignature(account, id);
        }
        _enable(account, epoch, id, session);
    }

    /// @dev Check and store a session's permissions. Reverts on anything malformed.
    function _enable(address account, uint32 epoch, bytes32 id, Session memory session) internal {
        SessionRecord storage record = _sessions[id][account];
        uint256 meta = record.meta;
        uint8 status = uint8(meta >> 192);
        if (status == STATUS_REVOKED) revert SessionIsRevoked(id);
        if (status == STATUS_ACTIVE && uint32(meta >> 160) == epoch) return;

        address key = session.sessionKey;
        if (key == address(0)) revert InvalidSessionKey();
        if (session.validUntil != 0 && session.validUntil <= session.validAfter) {
            revert InvalidTimeWindow(session.validAfter, session.validUntil);
        }
        uint256 count = session.permissions.length;
        if (count == 0 || count > MAX_PERMISSIONS) revert InvalidPermissionCount(count);
        AccountState storage state = _accounts[account];
        uint256 livePermissions = state.livePermissions + count;
        if (livePermissions > MAX_LIVE_PERMISSIONS) revert TooManyLivePermissions(account, MAX_LIVE_PERMISSIONS);

        uint256 gasCapGwei = session.maxGasCost / 1 gwei;
        if (session.maxGasCost != 0 && gasCapGwei == 0) revert InvalidMaxGasCost(session.maxGasCost);
        if (gasCapGwei > GAS_CAP_MAX) gasCapGwei = GAS_CAP_MAX;
        uint256 window = uint256(session.validAfter) | (uint256(session.validUntil) << 48) | (gasCapGwei << 208);
        for (uint256 i = 0; i < count; ++i) {
            Permission memory permission = session.permissions[i];
            address target = permission.target;
            if (target == address(0) || target == account || target == address(this)) {
                revert ForbiddenPermissionTarget(i, target);
            }
            PermissionSlots storage slots = _permissions[_permissionKey(key, target, permission.selector)][account];
            if (slots.header & LIVE != 0) revert PermissionAlreadyGranted(i, target, permission.selector);
            uint256 valueLimit = permission.valueLimit > VALUE_LIMIT_MAX ? VALUE_LIMIT_MAX : permission.valueLimit;
            uint256 ruleCount = _storeRules(slots, i, permission.rules);
            slots.header = window | (valueLimit << 96) | (i << 192) | (ruleCount << 200) | LIVE;
            record.grants[i] = uint256(uint160(target)) | (uint256(uint32(permission.selector)) << 160);
        }
        uint256 index = state.liveSessions;
        _liveSessions[index][account] = id;
        state.liveSessions = uint16(index + 1);
        state.livePermissions = uint16(livePermissions);
        record.meta = uint256(uint160(key)) | (uint256(epoch) << 160) | (uint256(STATUS_ACTIVE) << 192) | (count << 200)
            | (index << 208);
        emit SessionEnabled(account, id, key, session.validAfter, session.validUntil);
    }

    /// @dev Clear the headers of a live session's permissions (its rule words become unreachable).
    function _clearPermissions(address account, SessionRecord storage record, uint256 meta) internal {
        address key = address(uint160(meta));
        uint256 count = uint8(meta >> 200);
        for (uint256 i = 0; i < count; ++i) {
            uint256 grant = record.grants[i];
            delete _permissions[_permissionKey(key, address(uint160(grant)), bytes4(uint32(grant >> 160)))][account]
                .header;
        }
    }

    /// @dev Kill every live session of `account` and move to a new epoch, so that no enable signature made
    ///      before can be used again.
    function _invalidateAll(address account) internal {
        AccountState storage state = _accounts[account];
        uint256 live = state.liveSessions;
        for (uint256 i = 0; i < live; ++i) {
            SessionRecord storage record = _sessions[_liveSessions[i][account]][account];
            _clearPermissions(account, record, record.meta);
        }
        state.liveSessions = 0;
        state.livePermissions = 0;
        uint32 epoch = ++state.epoch;
        emit SessionsInvalidated(account, epoch);
    }

    /// @dev Encode and store a permission's rules; returns the rule count.
    function _storeRules(PermissionSlots storage slots, uint256 permissionIndex, Rule[] memory rules)
        internal
        returns (uint256)
    {
        uint256 w;
        for (uint256 r = 0; r < rules.length; ++r) {
            Rule memory rule = rules[r];
            uint8 condition = rule.condition;
            uint8 op = condition & 0x0f;
            bool isSigned = condition & SIGNED != 0;
            uint256 n = rule.values.length;
            if (
                (condition & ~(SIGNED | 0x0f)) != 0 || op > ONE_OF || (op <= NOT_EQUAL && n != 1)
                    || (op == IN_RANGE && n != 2) || (op == ONE_OF && (n == 0 || n > MAX_RULE_WORDS))
            ) revert InvalidRule(permissionIndex, r);
            if (op == IN_RANGE) {
                bool ordered = isSigned
                    ? int256(rule.values[0]) <= int256(rule.values[1])
                    : rule.values[0] <= rule.values[1];
                if (!ordered) revert InvalidRule(permissionIndex, r);
            }
            uint256 first = rule.values[0];
            bool inline_;
            if (isSigned) {
                uint256 extended;
                assembly ("memory-safe") {
                    extended := signextend(27, first)
                }
                inline_ = extended == first;
            } else {
                inline_ = first >> 224 == 0;
            }
            uint256 needed = w + (inline_ ? 1 : 2) + n - 1;
            if (needed > MAX_RULE_WORDS) revert TooManyRules(permissionIndex, needed);
            slots.words[w++] = (uint256(rule.offset) << 240) | (uint256(inline_ ? condition : condition | WIDE) << 232)
                | (n << 224) | (inline_ ? first & INLINE_MASK : 0);
            if (!inline_) slots.words[w++] = first;
            for (uint256 k = 1; k < n; ++k) {
                slots.words[w++] = rule.values[k];
            }
        }
        return rules.length;
    }

    /// @dev EIP-712 struct hash of the session for `account` at `epoch`: the session id.
    function _sessionStructHash(address account, uint32 epoch, Session memory session)
        internal
        pure
        returns (bytes32)
    {
        uint256 count = session.permissions.length;
        bytes32[] memory permissionHashes = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            Permission memory permission = session.permissions[i];
            uint256 ruleCount = permission.rules.length;
            bytes32[] memory ruleHashes = new bytes32[](ruleCount);
            for (uint256 r = 0; r < ruleCount; ++r) {
                Rule memory rule = permission.rules[r];
                ruleHashes[r] = keccak256(
                    abi.encode(RULE_TYPEHASH, rule.condition, rule.offset, keccak256(abi.encodePacked(rule.values)))
                );
            }
            permissionHashes[i] = keccak256(
                abi.encode(
                    PERMISSION_TYPEHASH,
                    permission.target,
                    permission.selector,
                    permission.valueLimit,
                    keccak256(abi.encodePacked(ruleHashes))
                )
            );
        }
        return keccak256(
            abi.encode(
                SESSION_TYPEHASH,
                account,
                session.sessionKey,
                session.validAfter,
                session.validUntil,
                session.maxGasCost,
                epoch,
                session.salt,
                keccak256(abi.encodePacked(permissionHashes))
            )
        );
    }
}
