// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ISessionKeyValidatorTypes} from "./interfaces/ISessionKeyValidator.sol";
import {SessionSignatureVerifier} from "./SessionSignatureVerifier.sol";

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

    /// @dev Whether the session was enabled at `epoch_` and not revoked since. At the account's current epoch that is
    ///      not yet "live": an account moved back to an epoch it was at (`invalidateAllSessions(uint32)`) finds the
    ///      sessions an invalidation cleared there still marked so, but no longer in its live list
    ///      ({SessionStorage-_isListed}), and with no permissions left.
    function isActiveAt(uint256 meta, uint32 epoch_) internal pure returns (bool) {
        return status(meta) == STATUS_ACTIVE && epoch(meta) == epoch_;
    }
}

/// @title SessionStorage
/// @notice The module's state, its layout and the reads both of its contracts make: the {SessionKeyValidator}, which
///         validates, and {SessionGrants}, which it delegatecalls to grant and revoke (the two would not fit one
///         contract under EIP-170's 24,576 bytes).
/// @dev This is the only contract of either that declares storage (with OpenZeppelin's EIP712, its base, whose two
///      fallback strings are never written: the domain's name and version are short), so the two share one layout
///      by construction. Storage (ERC-7562: every slot read or written during validation is keyed by the account,
///      innermost):
///
///     _accounts[account]                       AccountState: epoch, installed, live sessions and permissions
///     _permissions[permKey][account].header    see {PermissionHeader};  permKey = keccak256(key, target, selector)
///     _permissions[permKey][account].words[i]  rule words (see {RuleWord}), then the session's paymasters, the
///                                              meter word last when the permission counts towards limits
///     _sessions[sessionId][account].meta       see {SessionMeta}
///     _sessions[sessionId][account].grants[i]  target (160) | selector (32), to clear the headers on revoke
///     _liveSessions[i][account]                the ids of the account's live sessions (enumerable)
///     _limitRecords, _sessionLimits, _limitSessions, _nextLimitRecord   see {SessionLimits}
///     _coSigners                               see {SessionCoSigning}
///     _signing, _signingRecords                see {SessionSigning}
///
/// A co-signed session's permKey takes its space (see {SessionCoSigning}) in place of the key.
abstract contract SessionStorage is ISessionKeyValidatorTypes, EIP712 {
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
    /// @notice Most signing permissions (typed data and sign-in together) in one session.
    uint256 public constant MAX_SIGNING_PERMISSIONS = 8;

    // Internal, not public: every external function adds to the selector dispatch every validation pays.
    /// @dev Most limits in one session.
    uint256 internal constant MAX_LIMITS = 8;
    /// @dev Most meters one permission feeds.
    uint256 internal constant MAX_METERS = 8;
    /// @dev Shortest period a limit may have, in seconds: an operation is valid only inside its period.
    uint256 internal constant MIN_PERIOD = 60;

    uint8 internal constant LIMIT_NATIVE = 0;
    uint8 internal constant LIMIT_AMOUNT = 1;
    uint8 internal constant LIMIT_CALLS = 2;
    uint8 internal constant LIMIT_OPERATIONS = 3;
    uint8 internal constant LIMIT_GAS = 4;
    uint256 internal constant AMOUNT_MAX = (1 << 176) - 1;

    uint256 internal constant VALUE_LIMIT_MAX = (1 << 96) - 1;
    uint256 internal constant GAS_CAP_MAX = (1 << 40) - 1;

    /// @dev Set in a co-signer record: the session was granted with a co-signer.
    uint256 internal constant CO_SIGNED = 1 << 160;

    bytes4 internal constant ERC1271_MAGIC = 0x1626ba7e;
    bytes4 internal constant ERC1271_INVALID = 0xffffffff;

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

    /// @dev A limit's state word ({LimitState}) and its configuration.
    struct LimitRecord {
        uint256 state;
        uint256 config;
    }

    /// @dev `header` is a {SigningHeader}; typed data only: `typedDataSignTypeHash`, `nested` (count in the low
    ///      byte, then one 16-bit word index per nested struct) and the rule words ({RuleWord}).
    struct SigningSlots {
        uint256 header;
        bytes32 typedDataSignTypeHash;
        uint256 nested;
        uint256[MAX_RULE_WORDS] words;
    }

    /// @dev The signing keys of one session, to clear them when it is revoked or invalidated.
    struct SigningRecord {
        uint256 count;
        bytes32[MAX_SIGNING_PERMISSIONS] keys;
    }

    mapping(address account => AccountState) internal _accounts;
    mapping(bytes32 permissionKey => mapping(address account => PermissionSlots)) internal _permissions;
    mapping(bytes32 sessionId => mapping(address account => SessionRecord)) internal _sessions;
    mapping(uint256 index => mapping(address account => bytes32 sessionId)) internal _liveSessions;

    mapping(uint256 number => mapping(address account => LimitRecord)) internal _limitRecords;
    mapping(bytes32 sessionId => mapping(address account => uint256)) internal _sessionLimits;
    mapping(uint256 base => mapping(address account => bytes32 sessionId)) internal _limitSessions;
    mapping(address account => uint256) internal _nextLimitRecord;

    /// @dev CO_SIGNED | co-signer, for each co-signed session of each account.
    mapping(bytes32 sessionId => mapping(address account => uint256 record)) internal _coSigners;

    mapping(bytes32 signingKey => mapping(address account => SigningSlots)) internal _signing;
    mapping(bytes32 sessionId => mapping(address account => SigningRecord)) internal _signingRecords;

    /// @notice The contract that hashes sessions and judges sessions' signatures for this module (created with it).
    SessionSignatureVerifier public immutable signatureVerifier;

    constructor(SessionSignatureVerifier verifier) EIP712("keyscope SessionKeyValidator", "1") {
        signatureVerifier = verifier;
    }

    /*//////////////////////////////////////////////////////////////
                                 READS
    //////////////////////////////////////////////////////////////*/

    /// @dev The recorded key of a session (address(0): none, or revoked).
    function _sessionKey(address account, bytes32 id) internal view returns (address) {
        return SessionMeta.key(_sessions[id][account].meta);
    }

    /// @dev The key of a session active at the account's epoch (not revoked), else address(0).
    function _activeSessionKey(address account, bytes32 id) internal view returns (address) {
        uint256 meta = _sessions[id][account].meta;
        return SessionMeta.isActiveAt(meta, _accounts[account].epoch) ? SessionMeta.key(meta) : address(0);
    }

    /// @dev Whether session `id` of `account` (its meta word `meta`) holds its place in the account's live list. A
    ///      session an invalidation cleared keeps its meta word, active at the epoch it left: should the account come
    ///      back to that epoch, the session is not in the list, and dead (revoked without moving another's place,
    ///      never enabled again: its limits' counters never start over).
    function _isListed(address account, bytes32 id, uint256 meta) internal view returns (bool) {
        uint256 index = SessionMeta.liveIndex(meta);
        return index < _accounts[account].liveSessions && _liveSessions[index][account] == id;
    }

    /// @dev The address a co-signed session's permissions are stored under: no ECDSA key is known to have it, so
    ///      no single signature reaches them.
    function _coSignedSpace(bytes32 id) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked("keyscope co-signed session", id)))));
    }

    /// @dev Whether session `id` of `account` was granted with a co-signer, and who co-signs it now (0: removed).
    function _coSignerRecord(address account, bytes32 id) internal view returns (bool coSigned, address coSigner) {
        uint256 record = _coSigners[id][account];
        return (record & CO_SIGNED != 0, address(uint160(record)));
    }

    /// @dev The transient slot that marks `target` as a call target of a session of `account` revoked or invalidated
    ///      in this transaction (see {ISessionKeyValidator-isTargetOfLiveSession}): keccak256(account, target), the
    ///      account first, as ERC-7562 associates a slot with it.
    function _revokedTargetSlot(address account, address target) internal pure returns (bytes32) {
        return keccak256(abi.encode(account, target));
    }

    /// @dev The key of a permission in `_permissions`: keccak256 of the session key (20 bytes), the target
    ///      (20 bytes) and the selector (4 bytes), packed (44 bytes, so no two triples share an encoding), hashed
    ///      in the scratch space (bytes 0x0c to 0x38).
    function _permissionKey(address key, address target, bytes4 selector) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            mstore(0x0c, shl(96, key))
            mstore(0x20, or(shl(96, target), shr(160, selector)))
            result := keccak256(0x0c, 44)
        }
    }
}
