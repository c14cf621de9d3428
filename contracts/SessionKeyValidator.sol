// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC7579Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISessionKeyValidator} from "./interfaces/ISessionKeyValidator.sol";
import {ArgType, RuleWord} from "./Rules.sol";
import {SessionGrants} from "./SessionGrants.sol";
import {SessionLimits} from "./SessionLimits.sol";
import {SessionSignatureVerifier} from "./SessionSignatureVerifier.sol";
import {SessionSigning} from "./SessionSigning.sol";
import {PermissionHeader, SessionMeta, SessionStorage} from "./SessionStorage.sol";

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
/// with a custom error saying which call, permission and rule: an EIP-7702 init call (initCode of the `0x7702`
/// marker and data, sent to the account before validation, unjudged), a callData that is not a supported `execute`,
/// a call to the account or this module, calldata a target could read in another way than the module judged
/// it (1-3 bytes, the zero selector with arguments, an argument word that is not its type's canonical
/// encoding), a value over the limit, a broken rule, calldata too short for a rule, a gas cost over the cap.
/// The session's window goes into the validation data; validation never reads the clock.
///
/// Storage: see {SessionStorage} (every slot read or written during validation is keyed by the account,
/// innermost, as ERC-7562 requires). Granting and revoking run in {SessionGrants}, which this module creates and
/// DELEGATECALLs (the two would not fit one contract under EIP-170): its code writes this module's storage.
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


    uint256 internal constant SIG_VALIDATION_FAILED = 1;
    /// @dev Set by {_checkOperation} in the validation data's aggregator field (never returned): the operation
    ///      counts towards limits. Only then is anything more done, so sessions without limits pay one AND.
    uint256 internal constant COUNT_LIMITS = 2;

    bytes1 internal constant MODE_ENABLE = 0x01;
    bytes1 internal constant MODE_USE_WITH_KEY = 0x02;
    /// @dev Prefix claiming the time the operation will land at (6 bytes), before any other layout (SESSION's
    ///      included): it picks the period of per-period limits.
    bytes1 internal constant MODE_AT = 0x03;
    bytes1 internal constant MODE_SESSION = 0x04;

    /// @dev EntryPoint v0.8's initCode of an EIP-7702 account: `0x7702` padded to 20 bytes; what follows is an init
    ///      call's data (a factory's address never has this form: the EntryPoint reads it as the marker).
    bytes20 internal constant EIP7702_MARKER = bytes20(bytes2(0x7702));
    uint256 internal constant EIP7702_MARKER_LENGTH = 20;
    /// @dev Where the heads of PackedUserOperation's callData, paymasterAndData and signature are in the struct.
    uint256 internal constant CALL_DATA_HEAD = 0x60;
    uint256 internal constant PAYMASTER_AND_DATA_HEAD = 0xe0;
    uint256 internal constant SIGNATURE_HEAD = 0x100;
    /// @dev A header's validAfter and validUntil, without its gas cap.
    uint256 internal constant WINDOW_MASK = (1 << 96) - 1;


    /// @dev The grant side of the module, run by DELEGATECALL in this module's storage (created with it).
    SessionGrants internal immutable _grants;

    constructor() SessionStorage(new SessionSignatureVerifier()) {
        _grants = new SessionGrants(signatureVerifier);
    }

    /*//////////////////////////////////////////////////////////////
                              ERC-7579 MODULE
    //////////////////////////////////////////////////////////////*/

    /// @notice Called by the account when it installs the module. Sessions an earlier install left (its
    ///         `onUninstall` never ran), and sessions enabled while the module was not installed (`enableSession`
    ///         takes any caller: a session of another validator granted a call here), die first ({SessionGrants}).
    /// @param data Empty, or `abi.encode(Session[])`: sessions to enable at once (the owner installs, so the
    ///        owner grants them; {SessionGrants} enables them).
    function onInstall(bytes calldata data) external override {
        AccountState storage state = _accounts[msg.sender];
        // sessions to enable, state an earlier install left, or sessions enabled while not installed: the grant side
        if (data.length != 0 || state.installed || state.liveSessions != 0) _forwardToGrants();
        state.installed = true;
    }

    /// @notice Called by the account when it uninstalls the module: every session of the account dies, and a
    ///         later reinstall does not bring any back ({SessionGrants}).
    function onUninstall(bytes calldata) external override {
        _forwardToGrants();
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
        bytes calldata signature = _bytesMember(userOp, SIGNATURE_HEAD);
        address account = msg.sender;

        uint256 time = NO_TIME;
        // (65 bytes are USE whatever their first byte)
        if (signature.length != 65 && signature.length > 7 && signature[0] == MODE_AT) {
            // the time the operation claims to land at, for per-period limits; the rest is another layout
            time = uint48(bytes6(signature[1:7]));
            signature = signature[7:];
        }
        // USE: the key is whoever signed; a key without the permission may be a wrong signature
        if (signature.length == 65) return _validateUse(account, userOp, userOpHash, signature, time);
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
            keySignature = _sessionSignatureOf(signature[1:]);
            (id, key, space) = _enableSigned(signature[1:]);
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

    /// @dev USE (after an AT prefix or not): the key is whoever signed the operation; `time` is the claimed time.
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
    /// @dev Run by {SessionGrants}.
    function enableSession(Session calldata) external override returns (bytes32) {
        _forwardToGrants();
    }

    /// @inheritdoc ISessionKeyValidator
    /// @dev Run by {SessionGrants}.
    function revokeSession(bytes32) external override {
        _forwardToGrants();
    }

    /// @inheritdoc ISessionKeyValidator
    /// @dev Run by {SessionGrants}.
    function invalidateAllSessions() external override {
        _forwardToGrants();
    }

    /// @inheritdoc ISessionKeyValidator
    /// @dev Run by {SessionGrants}.
    function invalidateAllSessions(uint32) external override {
        _forwardToGrants();
    }

    /// @inheritdoc ISessionKeyValidator
    /// @dev Run by {SessionGrants}.
    function rotateCoSigner(bytes32, address) external override {
        _forwardToGrants();
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
        // every move of the epoch empties the live list, so a session in it was enabled at the current epoch and not
        // revoked since: out of it, a session is dead even where its meta word still says active (an invalidation
        // cleared it at an epoch the account came back to)
        return _isListed(account, id, _sessions[id][account].meta);
    }

    /// @inheritdoc ISessionKeyValidator
    function epochOf(address account) external view override returns (uint32) {
        return _accounts[account].epoch;
    }

    /// @inheritdoc ISessionKeyValidator
    function isTargetOfLiveSession(address account, address target) external view override returns (bool) {
        bytes32 revoked = _revokedTargetSlot(account, target);
        uint256 revokedHere;
        assembly ("memory-safe") {
            revokedHere := tload(revoked)
        }
        if (revokedHere != 0) return true;
        uint256 live = _accounts[account].liveSessions;
        for (uint256 i = 0; i < live; ++i) {
            SessionRecord storage record = _sessions[_liveSessions[i][account]][account];
            uint256 count = SessionMeta.permissionCount(record.meta);
            for (uint256 j = 0; j < count; ++j) {
                if (address(uint160(record.grants[j])) == target) return true;
            }
        }
        return false;
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
        // an EIP-7702 init call (v0.8) reaches the account before validation, unjudged: a session signs none
        (uint256 initCodeLength, bytes20 initCodeHead) = _initCodeHead(userOp);
        if (initCodeLength > EIP7702_MARKER_LENGTH && initCodeHead == EIP7702_MARKER) {
            revert InitCallNotJudged(initCodeLength - EIP7702_MARKER_LENGTH);
        }
        (bool batch, bytes calldata execution) = _execution(_bytesMember(userOp, CALL_DATA_HEAD));
        // a paymaster the session lists lifts the cap of that session's calls (its list is read only then)
        bytes calldata paymasterAndData = _bytesMember(userOp, PAYMASTER_AND_DATA_HEAD);
        address paymaster = paymasterAndData.length < 52 ? address(0) : address(bytes20(paymasterAndData[:20]));
        uint256 bounds;
        if (!batch) {
            if (execution.length < 52) revert MalformedExecution();
            (uint256 header, bool uncapped) = _checkCall(
                account,
                key,
                0,
                address(uint160(_word(execution, 0) >> 96)),
                _word(execution, 20),
                _slice(execution, 52, execution.length),
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

    /// @dev The initCode's length and its first 20 bytes (zero past its end), read as the ABI lays `userOp` out
    ///      (initCode is its third member: a head word holding the offset of its length word) without the
    ///      compiler's bounds checks: reads past the calldata's end give zeros, and the account encoded the call.
    function _initCodeHead(PackedUserOperation calldata userOp)
        internal
        pure
        returns (uint256 length, bytes20 head)
    {
        assembly ("memory-safe") {
            let at := add(userOp, calldataload(add(userOp, 0x40)))
            length := calldataload(at)
            head := and(calldataload(add(at, 0x20)), not(0xffffffffffffffffffffffff))
        }
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
    ///      but single or batch call with default or try execution, a non-canonical head, and anything after
    ///      executionCalldata but up to 31 zero bytes (its padding, or none); returns whether the mode is batch,
    ///      and executionCalldata.
    function _execution(bytes calldata callData) internal pure returns (bool batch, bytes calldata execution) {
        if (callData.length < 100) revert MalformedExecution();
        bytes4 selector = bytes4(bytes32(_word(callData, 0)));
        if (selector != IERC7579Execution.execute.selector) revert UnsupportedSelector(selector);
        bytes32 mode = bytes32(_word(callData, 4));
        // call type (byte 0) and exec type (byte 1) each 0 or 1; the other 30 bytes zero
        if ((uint256(mode) >> 240) & 0xfefe != 0 || (uint256(mode) << 16) != 0) {
            revert UnsupportedExecutionMode(mode);
        }
        if (_word(callData, 36) != 0x40) revert MalformedExecution();
        uint256 length = _word(callData, 68);
        if (length > callData.length - 100) revert MalformedExecution();
        // After executionCalldata: at most its padding, all zero bytes. An account reading a single call's data up
        // to its calldata's end hands the target whatever follows; zeros short of a word are all it may find.
        bool rest;
        assembly ("memory-safe") {
            let extra := sub(sub(callData.length, 100), length)
            // (shifting by 256, when nothing follows, leaves 0)
            rest := or(gt(extra, 31), shr(sub(256, shl(3, extra)), calldataload(add(callData.offset, add(100, length)))))
        }
        if (rest) revert MalformedExecution();
        return (mode[0] != 0x00, _slice(callData, 100, 100 + length));
    }

    /// @dev Walk a canonically ABI-encoded `Execution[]` and check each call; returns the intersection of their
    ///      permissions' bounds, laid out as a header's (the latest validAfter, the earliest validUntil and the
    ///      smallest gas cap; 0: none), found = false when a call has no permission (USE). A call `uncapped` by its
    ///      session's paymaster list adds no cap. Canonical means every byte accounted for: each head at the offset
    ///      the calls before it give, each call's data padded with zero bytes, nothing after the last call.
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
            if (_dirtyPadding(execution, start + 128, size)) revert MalformedExecution();
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
        // nothing after the last call's padded data: no bytes an account reading the batch otherwise could run
        if (64 + expected != execution.length) revert MalformedExecution();
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
            selector = bytes4(bytes32(_word(data, 0)));
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
        // The rules, in one assembly loop that reads RuleWord's fields by shifts and leaves at the first rule that
        // refuses the call (`r` < ruleCount, `slot` at its first word), whose refusal is then told apart below.
        uint256 r;
        assembly ("memory-safe") {
            for {} lt(r, ruleCount) { r := add(r, 1) } {
                let word := sload(slot)
                let offset := shr(240, word)
                if lt(data.length, add(offset, 36)) { break }
                let actual := calldataload(add(add(data.offset, offset), 4))
                let argType := and(shr(216, word), 0xff)
                if argType {
                    // ArgType.isCanonical
                    let unused := shl(3, and(argType, 0x1f))
                    let canonical
                    switch shr(5, argType)
                    case 0 { canonical := iszero(shr(sub(256, unused), actual)) }
                    case 1 { canonical := eq(signextend(sub(31, shr(3, unused)), actual), actual) }
                    case 2 { canonical := iszero(shl(sub(256, unused), actual)) }
                    default { canonical := lt(actual, 2) }
                    if iszero(canonical) { break }
                }
                let next := add(slot, 1)
                // the first value: inline (sign-extended from bit 215 when SIGNED, bit 238), or the next word when
                // WIDE (bit 239)
                let first := and(word, shr(40, not(0)))
                if and(word, shl(238, 1)) { first := signextend(26, word) }
                if and(word, shl(239, 1)) {
                    first := sload(next)
                    next := add(next, 1)
                }
                let ok
                // the condition, numbered as in ISessionKeyValidatorTypes.Rule (a switch takes literals)
                switch and(shr(232, word), 0x0f)
                case 0 { ok := eq(actual, first) } // EQUAL
                case 5 { ok := iszero(eq(actual, first)) } // NOT_EQUAL
                case 7 {
                    // ONE_OF: values 2..n in the words that follow
                    let end := sub(add(next, and(shr(224, word), 0xff)), 1)
                    ok := eq(actual, first)
                    for {} and(iszero(ok), lt(next, end)) { next := add(next, 1) } { ok := eq(actual, sload(next)) }
                    next := end
                }
                default {
                    // Ordering. Signed words compare as unsigned once their sign bits are flipped.
                    let flip := shl(255, and(shr(238, word), 1))
                    let a := xor(actual, flip)
                    let b := xor(first, flip)
                    switch and(shr(232, word), 0x0f)
                    case 6 {
                        // IN_RANGE
                        ok := and(iszero(lt(a, b)), iszero(gt(a, xor(sload(next), flip))))
                        next := add(next, 1)
                    }
                    case 1 { ok := iszero(gt(a, b)) } // LESS_THAN_OR_EQUAL
                    case 2 { ok := lt(a, b) } // LESS_THAN
                    case 3 { ok := iszero(lt(a, b)) } // GREATER_THAN_OR_EQUAL
                    default { ok := gt(a, b) } // GREATER_THAN; other ops are refused when the rule is stored
                }
                if iszero(ok) { break }
                slot := next
            }
        }
        if (r < ruleCount) {
            // rule r refused: in the loop's order, its calldata is too short, its word not canonical, or it fails
            uint256 word = _load(slot);
            uint256 offset = RuleWord.offset(word);
            if (data.length < offset + 36) revert CalldataTooShort(callIndex, permissionIndex, r);
            uint256 actual = _word(data, offset + 4);
            uint256 argType = RuleWord.checkedType(word);
            if (argType != 0 && !ArgType.isCanonical(argType, actual)) {
                revert NonCanonicalArgument(callIndex, permissionIndex, r, uint8(argType), bytes32(actual));
            }
            revert RuleViolated(callIndex, permissionIndex, r, bytes32(actual));
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
    ///      As ECDSA.tryRecoverCalldata with its errors read as address(0), in scratch memory (the free memory
    ///      pointer and the zero slot restored): the precompile writes its output only when it recovers a signer.
    function _recover(bytes32 hash, bytes calldata signature) internal view returns (address signer) {
        if (signature.length != 65) return address(0);
        assembly ("memory-safe") {
            let s := calldataload(add(signature.offset, 0x20))
            // s in the lower half of the curve order (no malleable twin), as ECDSA.tryRecover requires
            if iszero(gt(s, 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0)) {
                let free := mload(0x40)
                mstore(0x00, hash)
                mstore(0x20, byte(0, calldataload(add(signature.offset, 0x40))))
                mstore(0x40, calldataload(signature.offset))
                mstore(0x60, s)
                if iszero(staticcall(gas(), 0x01, 0x00, 0x80, 0x00, 0x20)) { revert(0, 0) }
                if returndatasize() { signer := mload(0x00) }
                mstore(0x40, free)
                mstore(0x60, 0)
            }
        }
    }

    /// @dev `data[start:end]`, without the compiler's bounds checks: callers check that start <= end <= data.length.
    function _slice(bytes calldata data, uint256 start, uint256 end) internal pure returns (bytes calldata part) {
        assembly ("memory-safe") {
            part.offset := add(data.offset, start)
            part.length := sub(end, start)
        }
    }

    /// @dev The bytes member of `userOp` whose head word is at byte `head` of the struct, with exactly the checks the
    ///      compiler's accessor makes (a relative offset or a length that leaves the calldata reverts, without data),
    ///      in one branch.
    function _bytesMember(PackedUserOperation calldata userOp, uint256 head)
        internal
        pure
        returns (bytes calldata member)
    {
        assembly ("memory-safe") {
            let relative := calldataload(add(userOp, head))
            let at := add(userOp, relative)
            let length := calldataload(at)
            let start := add(at, 0x20)
            if or(
                iszero(slt(relative, sub(sub(calldatasize(), userOp), 0x1f))),
                or(gt(length, 0xffffffffffffffff), sgt(start, sub(calldatasize(), length)))
            ) { revert(0, 0) }
            member.offset := start
            member.length := length
        }
    }

    /// @dev Whether the bytes after `size` bytes of data at `start` of `data`, up to the next multiple of 32, hold
    ///      anything but zeros. Reads past `data`'s end when the padding is not all there: the caller then refuses
    ///      the batch's length anyway.
    function _dirtyPadding(bytes calldata data, uint256 start, uint256 size) internal pure returns (bool dirty) {
        assembly ("memory-safe") {
            let pad := and(sub(0, size), 31)
            // (shifting by 256, when there is no padding, leaves 0)
            dirty := shr(sub(256, shl(3, pad)), calldataload(add(data.offset, add(start, size))))
        }
    }

    /// @dev The 32-byte word of `data` that starts at byte `offset`. Callers check that the word is within
    ///      `data`: past its end, CALLDATALOAD reads whatever calldata follows (zeros only past the calldata's
    ///      end).
    function _word(bytes calldata data, uint256 offset) internal pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := calldataload(add(data.offset, offset))
        }
    }

    /*//////////////////////////////////////////////////////////////
                         INTERNAL: GRANTS
    //////////////////////////////////////////////////////////////*/

    /// @dev ENABLE data is `abi.encode(Session, bytes ownerSignature, bytes sessionSignature)`: the session
    ///      signature, sliced from calldata (to be checked as every other mode checks it). Reverts
    ///      MalformedEnableData when a head word points outside the data.
    function _sessionSignatureOf(bytes calldata data) internal pure returns (bytes calldata sessionSignature) {
        if (data.length < 96) revert MalformedEnableData();
        for (uint256 i = 0; i < 3; ++i) {
            if (_word(data, 32 * i) > data.length - 32) revert MalformedEnableData();
        }
        uint256 at = _word(data, 64);
        uint256 size = _word(data, at);
        if (size > data.length - at - 32) revert MalformedEnableData();
        return data[at + 32:at + 32 + size];
    }

    /// @dev {SessionGrants.enableSigned} run in this module's storage: enables the session of `enableData` if the
    ///      owner signed it (a revert bubbles up); returns its id, key and permission space.
    function _enableSigned(bytes calldata enableData) internal returns (bytes32 id, address key, address space) {
        (bool ok, bytes memory answer) =
            address(_grants).delegatecall(abi.encodeCall(SessionGrants.enableSigned, (enableData)));
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(answer, 0x20), mload(answer))
            }
        }
        return abi.decode(answer, (bytes32, address, address));
    }

    /// @dev Run this call (its calldata unchanged) in {SessionGrants} by DELEGATECALL, and end it with its answer:
    ///      its return data, or its revert.
    function _forwardToGrants() internal {
        address grants = address(_grants);
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, 0, calldatasize())
            let ok := delegatecall(gas(), grants, ptr, calldatasize(), 0, 0)
            returndatacopy(ptr, 0, returndatasize())
            if iszero(ok) { revert(ptr, returndatasize()) }
            return(ptr, returndatasize())
        }
    }
}
