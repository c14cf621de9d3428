// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC7579Validator} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";

/// @title ISessionKeyValidatorTypes
/// @notice Types, events and errors of keyscope's session-key validator: what the module and the contract it hands
///         grants to ({SessionGrants}) share.
interface ISessionKeyValidatorTypes {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice One condition on one argument of a call: the 32-byte word at `offset`, read as `argType`.
    /// @param condition The comparison: EQUAL 0, LESS_THAN_OR_EQUAL 1, LESS_THAN 2, GREATER_THAN_OR_EQUAL 3,
    ///        GREATER_THAN 4, NOT_EQUAL 5, IN_RANGE 6, ONE_OF 7.
    /// @param offset Byte offset of the word in the call's arguments (after the 4-byte selector).
    /// @param argType The argument's ABI type, one byte: bits 5-7 the kind (0 uintN, 1 intN, 2 bytesN, 3 bool),
    ///        bits 0-4 the number of bytes the type leaves out of the word (32 - N/8 for uintN and intN,
    ///        32 - N for bytesN; 0 for bool). 0x00 is uint256 (any word); address is 0x0c (uint160), an enum
    ///        0x1f (uint8), int256 0x20, int8 0x3f, bytes32 0x40, bytes4 0x5c, bool 0x60. A word that is not the
    ///        type's canonical ABI encoding is refused whatever the condition; intN compare as signed.
    /// @param values Reference values, each the canonical word of a value of `argType`: one for conditions
    ///        0-5, [low, high] for IN_RANGE (inclusive), the allowed values for ONE_OF.
    struct Rule {
        uint8 condition;
        uint16 offset;
        uint8 argType;
        uint256[] values;
    }

    /// @notice What a session may call: one function of one contract.
    /// @param target The contract.
    /// @param selector The function selector; 0x00000000 allows calls with empty calldata only (plain transfers),
    ///        and then `rules` must be empty.
    /// @param valueLimit The most native value (wei) one call may carry.
    /// @param rules Conditions on the arguments, all of which must hold.
    struct Permission {
        address target;
        bytes4 selector;
        uint256 valueLimit;
        Rule[] rules;
    }

    /// @notice What a session may sign as the account: EIP-712 typed data of one primary type in one domain, with
    ///         rules on its fields (checked through ERC-1271, wrapped in ERC-7739's TypedDataSign).
    /// @param domainFields The ERC-5267 bitmap of the application domain's fields: 0x01 name, 0x02 version,
    ///        0x04 chainId, 0x08 verifyingContract, 0x10 salt. Fields it leaves out must be empty or zero.
    /// @param name The domain's name.
    /// @param version The domain's version.
    /// @param chainId The domain's chain id.
    /// @param verifyingContract The domain's verifying contract (never the account or this module).
    /// @param salt The domain's salt.
    /// @param contentsName The primary type's name (a valid ERC-7739 contents name).
    /// @param contentsType ERC-7739's contentsType: the definitions of the primary type and of every struct type
    ///        it uses, sorted by name, e.g. "PermitDetails(...)PermitSingle(PermitDetails details,...)".
    /// @param nested The words of the flattened contents that are nested structs the signature expands, in
    ///        breadth-first order (strictly increasing); at most MAX_NESTED.
    /// @param rules Conditions on the words of the flattened contents (`offset`: a multiple of 32).
    struct TypedDataPermission {
        uint8 domainFields;
        string name;
        string version;
        uint256 chainId;
        address verifyingContract;
        bytes32 salt;
        string contentsName;
        string contentsType;
        uint16[] nested;
        Rule[] rules;
    }

    /// @notice A session: a key allowed to sign UserOperations making the permitted calls, and messages of the
    ///         permitted kinds, within a window.
    /// @param sessionKey The address of the session's ECDSA key.
    /// @param validAfter First second the session is valid (0: at once).
    /// @param validUntil Last second the session is valid (0: no expiry).
    /// @param maxGasCost The most one operation may cost in gas, in wei: every gas limit (the paymaster's two
    ///        included) times maxFeePerGas, the EntryPoint's prefund (0: no cap; kept in whole gwei, at least 1
    ///        gwei). It bounds operations paid by a paymaster too, since a paymaster may charge the account
    ///        (an ERC-20 paymaster takes its tokens in postOp).
    /// @param paymasters The paymasters operations may name without the maxGasCost cap (sponsors the owner
    ///        trusts not to charge the account); at most MAX_PAYMASTERS, none the zero address.
    /// @param salt Any number, to tell apart otherwise identical sessions.
    /// @param permissions The calls allowed, at most one per (target, selector); at most MAX_PERMISSIONS.
    /// @param limits Budgets over the session's life or per period (at most MAX_LIMITS), counted during
    ///        validation: see {Limit}.
    /// @param coSigner An ECDSA key whose signature every operation and message of the session needs besides the
    ///        session key's (0: none); never the session key.
    /// @param typedData The typed data the session may sign.
    /// @param signIn The websites (EIP-4361 domains) the session may sign sign-in messages for. With `typedData`,
    ///        at most MAX_SIGNING_PERMISSIONS; a session needs at least one permission of any kind.
    struct Session {
        address sessionKey;
        uint48 validAfter;
        uint48 validUntil;
        uint256 maxGasCost;
        address[] paymasters;
        uint256 salt;
        Permission[] permissions;
        Limit[] limits;
        address coSigner;
        TypedDataPermission[] typedData;
        string[] signIn;
    }

    /// @notice A budget of the session: at most `amount` over the session's life (`period` 0), or per period of
    ///         `period` seconds (periods start at the session's validAfter: period k is [validAfter + k * period,
    ///         validAfter + (k + 1) * period - 1]).
    /// @param kind What is counted: NATIVE 0 (the native value of the metered permissions' calls, wei), AMOUNT 1
    ///        (the argument word at each meter's offset of the metered permissions' calls), CALLS 2 (calls of the
    ///        metered permissions), OPERATIONS 3 (operations making a call of the session; no meters), GAS 4 (each
    ///        such operation's most possible gas cost, its prefund in wei, unless a paymaster the session lists
    ///        pays; no meters).
    /// @param amount The budget (stored saturated at 2**176 - 1).
    /// @param period 0 (the session's life) or the period's length in seconds, at least MIN_PERIOD.
    /// @param meters The permissions whose calls count (NATIVE, AMOUNT, CALLS), each at most MAX_METERS times.
    struct Limit {
        uint8 kind;
        uint256 amount;
        uint32 period;
        Meter[] meters;
    }

    /// @notice What one permission's calls add to a limit.
    /// @param permission The permission's index in the session.
    /// @param offset AMOUNT: the byte offset of the counted argument in the call's arguments (after the selector),
    ///        read as a uint256 word; 0 for the other kinds.
    struct Meter {
        uint8 permission;
        uint16 offset;
    }

    /// @notice What a limit has used and has left, as last counted.
    /// @param periodStart The start of the period `used` and `left` are for (the session's validAfter for a limit
    ///        over the session's life or not yet counted); once `periodStart + period` has passed, a new period has
    ///        begun and all of `amount` is left.
    struct LimitUsage {
        uint8 kind;
        uint256 amount;
        uint32 period;
        uint48 periodStart;
        uint256 used;
        uint256 left;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A session was enabled for `account`, on chain or by the owner's signature in a UserOperation.
    event SessionEnabled(
        address indexed account,
        bytes32 indexed sessionId,
        address indexed sessionKey,
        uint48 validAfter,
        uint48 validUntil
    );

    /// @notice `account` revoked a session; it can never be enabled again.
    event SessionRevoked(address indexed account, bytes32 indexed sessionId);

    /// @notice Every session of `account` was invalidated (module uninstalled, or invalidateAllSessions).
    event SessionsInvalidated(address indexed account, uint32 newEpoch);

    /// @notice Limit `limitIndex` of a session has nothing left in the period starting at `periodStart` (over the
    ///         session's life: `periodStart` is the session's validAfter).
    event LimitReached(address indexed account, bytes32 indexed sessionId, uint256 limitIndex, uint48 periodStart);
    /// @notice `account` rotated (or, with `coSigner` 0, removed) the co-signer of a co-signed session.
    event CoSignerChanged(address indexed account, bytes32 indexed sessionId, address coSigner);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The operation carries an EIP-7702 init call (EntryPoint v0.8: the 20-byte `0x7702` marker followed
    ///         by `initCallLength` bytes, which the SenderCreator sends to the account before validation): bytes no
    ///         permission describes, so a session never signs one.
    error InitCallNotJudged(uint256 initCallLength);

    /// @notice The UserOperation's callData is not `execute(bytes32,bytes)`.
    error UnsupportedSelector(bytes4 selector);

    /// @notice The execution mode is not single or batch call with default or try execution.
    error UnsupportedExecutionMode(bytes32 mode);

    /// @notice The executionCalldata is truncated or not in the canonical ABI encoding, or the callData holds more
    ///         after it than up to 31 zero bytes (its padding).
    error MalformedExecution();

    /// @notice A batch with no calls.
    error EmptyBatch();

    /// @notice Call `callIndex` targets the account itself or this module: never allowed to a session.
    error ForbiddenTarget(uint256 callIndex, address target);

    /// @notice Call `callIndex` has 1 to 3 bytes of calldata: neither a function call nor a plain transfer.
    error InvalidCallData(uint256 callIndex);

    /// @notice Call `callIndex` has calldata starting with the selector 0x00000000, which permissions use for
    ///         plain transfers (empty calldata) only: a target's fallback could act on the bytes that follow.
    error ZeroSelectorCall(uint256 callIndex);

    /// @notice Call `callIndex` matches no permission of the session key (claimed by the signature).
    error NoPermission(uint256 callIndex, address target, bytes4 selector);

    /// @notice Call `callIndex` carries more native value than its permission allows.
    error ValueLimitExceeded(uint256 callIndex, uint256 permissionIndex, uint256 value, uint256 valueLimit);

    /// @notice Call `callIndex` breaks rule `ruleIndex` of permission `permissionIndex`; `actual` is the word.
    error RuleViolated(uint256 callIndex, uint256 permissionIndex, uint256 ruleIndex, bytes32 actual);

    /// @notice Call `callIndex`'s word for rule `ruleIndex` is not a canonical ABI encoding of the rule's
    ///         `argType` (dirty high bits, a bool other than 0 or 1, ...): a target that masks the word instead of
    ///         reverting would read another value than the one the rule judged. (Under EQUAL and ONE_OF, which
    ///         pass only a reference value, canonical by construction, such a word is a RuleViolated.)
    error NonCanonicalArgument(
        uint256 callIndex, uint256 permissionIndex, uint256 ruleIndex, uint8 argType, bytes32 actual
    );

    /// @notice Call `callIndex`'s calldata ends before the word rule `ruleIndex` reads.
    error CalldataTooShort(uint256 callIndex, uint256 permissionIndex, uint256 ruleIndex);

    /// @notice The operation could cost `cost` wei in gas (its prefund, the paymaster's gas limits included), over
    ///         the session's `limit`; a paymaster the session lists would lift the cap.
    error GasCostTooHigh(uint256 cost, uint256 limit);

    /// @notice A non-zero maxGasCost below 1 gwei (the cap is kept in whole gwei).
    error InvalidMaxGasCost(uint256 maxGasCost);

    /// @notice The owner's signature over the session does not verify through the account (ERC-1271).
    error InvalidOwnerSignature(address account, bytes32 sessionId);

    /// @notice The session was revoked, or invalidated at the epoch the account is back at: it cannot be enabled
    ///         again.
    error SessionIsRevoked(bytes32 sessionId);

    /// @notice `invalidateAllSessions(nextEpoch)` named the epoch the account is at: the epoch must move.
    error EpochNotMoved(address account, uint32 epoch);

    /// @notice The session key is the zero address.
    error InvalidSessionKey();

    /// @notice `validUntil` is not after `validAfter`.
    error InvalidTimeWindow(uint48 validAfter, uint48 validUntil);

    /// @notice A session holds at most MAX_PERMISSIONS call permissions, and at least one permission: a call
    ///         permission, or a signing permission (typed data or sign-in) when it has no call permission.
    error InvalidPermissionCount(uint256 count);

    /// @notice Permission `permissionIndex` targets the account, this module or the zero address.
    error ForbiddenPermissionTarget(uint256 permissionIndex, address target);

    /// @notice The session key already holds a live permission for this target and selector.
    error PermissionAlreadyGranted(uint256 permissionIndex, address target, bytes4 selector);

    /// @notice Rule `ruleIndex` of permission `permissionIndex` is malformed (unknown condition or argType,
    ///         wrong number of values, a value that is not a canonical word of the argType, IN_RANGE with
    ///         low > high, a rule on a plain-transfer permission).
    error InvalidRule(uint256 permissionIndex, uint256 ruleIndex);

    /// @notice Permission `permissionIndex`'s rules and the session's paymasters need `words` storage words,
    ///         more than MAX_RULE_WORDS.
    error TooManyRules(uint256 permissionIndex, uint256 words);

    /// @notice The session lists `count` paymasters, more than MAX_PAYMASTERS (`index` is then MAX_PAYMASTERS),
    ///         or the one at `index` is the zero address, the account itself or this module.
    error InvalidPaymasters(uint256 count, uint256 index);

    /// @notice Enabling would give `account` more than `max` live permissions: revoke unused sessions first.
    error TooManyLivePermissions(address account, uint256 max);

    /// @notice The enable data in the signature could not be decoded.
    error MalformedEnableData();

    /// @notice Permission `permissionIndex` targets `target`, a module of the account of type `moduleType` (1
    ///         validator, 2 executor, 3 the fallback handler the account routes the permission's selector to, 4
    ///         hook, 8 and 9 the ERC-1271 and ERC-4337 pre-validation hook; 0: a Safe module, such as Safe7579's
    ///         adapter): modules keep their configuration per calling
    ///         account, so a call from the account could reconfigure it (a fallback handler takes the account's own
    ///         caller from the calldata's last 20 bytes, which a direct call from the account sets as it likes).
    error PermissionTargetIsModule(uint256 permissionIndex, address target, uint256 moduleType);

    /// @notice `account` gave no answer (a revert, no such function, not a bool) when asked
    ///         `isModuleInstalled(1, target, "")`: ERC-7579 has every account answer it, and without an answer the
    ///         module cannot tell whether `target` (a call target, a signing domain, a signature's verifier) is one
    ///         of the account's validators, so it refuses.
    error ModuleQueryUnanswered(address account, address target);

    /// @notice The session has `count` limits, more than MAX_LIMITS.
    error TooManyLimits(uint256 count);

    /// @notice Limit `limitIndex` is malformed: unknown kind, a period shorter than MIN_PERIOD, a meter naming no
    ///         permission, an offset on a meter that counts no argument, meters on OPERATIONS or GAS.
    error InvalidLimit(uint256 limitIndex);

    /// @notice Permission `permissionIndex` feeds more than MAX_METERS meters.
    error TooManyMeters(uint256 permissionIndex);

    /// @notice Call `callIndex` would add `amount` to limit `limitIndex` of its session, which has `left` left in
    ///         the period (or the session's life). OPERATIONS and GAS limits name the operation's first call of the
    ///         session.
    error LimitExceeded(uint256 callIndex, uint256 limitIndex, uint256 amount, uint256 left);

    /// @notice Call `callIndex` counts towards limit `limitIndex`, which is per period, but the operation's
    ///         signature claims no time to pick the period by (the MODE_AT prefix).
    error ClaimedTimeRequired(uint256 callIndex, uint256 limitIndex);

    /// @notice Call `callIndex` claims period `period` of limit `limitIndex`, before period `counted` the limit last
    ///         counted in: that period is over.
    error PeriodPassed(uint256 callIndex, uint256 limitIndex, uint256 period, uint256 counted);

    /// @notice Call `callIndex`'s calldata ends before the argument limit `limitIndex` counts.
    error CalldataTooShortForLimit(uint256 callIndex, uint256 limitIndex);
    /// @notice A co-signer that is the zero address where one is needed, or the session key itself (one leaked key
    ///         would then make both signatures).
    error InvalidCoSigner(address coSigner);

    /// @notice `sessionId` was granted without a co-signer (its permissions need one signature): it cannot be given
    ///         one; grant a new session instead.
    error NotCoSigned(bytes32 sessionId);

    /// @notice `sessionId` is not an active session of the caller.
    error SessionNotActive(bytes32 sessionId);

    /// @notice More than MAX_SIGNING_PERMISSIONS signing permissions, or a session with no permission at all.
    error InvalidSigningPermissionCount(uint256 count);

    /// @notice Typed-data permission `index` is malformed: a domain field its bitmap leaves out is set, an unknown
    ///         field bit, an invalid contentsName, a contentsType without its definition, too long, or `nested`
    ///         not strictly increasing or longer than MAX_NESTED; and, when it has rules, a contentsType that is not
    ///         a list of definitions `Name(type name,...)` or a `nested` entry that is no struct field of a frame.
    error InvalidTypedDataPermission(uint256 index);

    /// @notice Rule `ruleIndex` of typed-data permission `permissionIndex` reads the field at `offset` of the
    ///         contents (frame 0 the primary struct, then the structs `nested` expands) as `ruleType`, not as the
    ///         field's own type `fieldType` (the ArgType of an atomic field; 0, uint256, for a word that is a hash:
    ///         string, bytes, struct, array; 0xff for a type no rule type names): give the rule the field's type.
    error TypedDataRuleTypeMismatch(
        uint256 permissionIndex, uint256 ruleIndex, uint256 offset, uint8 ruleType, uint8 fieldType
    );

    /// @notice Rule `ruleIndex` of typed-data permission `permissionIndex` orders (`condition` LESS_THAN_OR_EQUAL,
    ///         LESS_THAN, GREATER_THAN_OR_EQUAL, GREATER_THAN or IN_RANGE) the field at `offset` of the contents, a
    ///         string, bytes, array or struct, whose EIP-712 word is the hash of its contents: a bound on a hash
    ///         bounds nothing the verifier reads, so any value would pass. Only EQUAL, NOT_EQUAL and ONE_OF bind
    ///         such a field (the hash of the value or values allowed).
    error TypedDataRuleOrdersHash(uint256 permissionIndex, uint256 ruleIndex, uint256 offset, uint8 condition);

    /// @notice Typed-data permission `index` names the account, this module or another module of the account (a
    ///         validator, an executor, a hook or a Safe module, when the session is enabled) as its domain's verifying
    ///         contract.
    error ForbiddenSigningDomain(uint256 index, address verifyingContract);

    /// @notice Sign-in permission `index` is not a domain of 1 to 255 printable ASCII bytes without spaces.
    error InvalidSignInDomain(uint256 index);

    /// @notice The key (or co-signed session) already holds a live signing permission for the same domain and type
    ///         (or the same sign-in website).
    error SigningPermissionAlreadyGranted(uint256 index);

    /*//////////////////////////////////////////////////////////////
                    SIGNATURE REFUSALS (requireValidSignature)
    //////////////////////////////////////////////////////////////*/

    /// @notice The verifier is the account, this module, or another module of the account (whenever it was
    ///         installed): a session's signature never counts for them.
    error SignatureSenderForbidden(address sender);

    /// @notice The signature does not follow a session signature layout exactly.
    error MalformedSignature();

    /// @notice No live typed-data permission of `space` (the session key, or a co-signed session's space) for this
    ///         application domain and type.
    error SigningNotGranted(address space, bytes32 appDomainSeparator, bytes32 contentsTypeHash);

    /// @notice No live sign-in permission of `space` for the message's first line.
    error SignInNotGranted(address space, bytes32 firstLineHash);

    /// @notice The chain's time `now` is outside the session's window.
    error SignatureOutsideWindow(uint256 now, uint256 validAfter, uint256 validUntil);

    /// @notice Nested frame `frame` does not hash to the word of its parent the grant expands.
    error NestedStructMismatch(uint256 frame);

    /// @notice The hash the verifier asked about is not the EIP-712 hash of the contents (`contentsHash` is their
    ///         struct hash; for a sign-in message, its EIP-191 hash), nor the account's wrapping of it.
    error ContentsMismatch(bytes32 hash, bytes32 contentsHash);

    /// @notice The sign-in message's second line is not the account's address.
    error SignInAccountMismatch();

    /// @notice The contents end before the word rule `ruleIndex` of signing permission `permissionIndex` reads.
    error ContentsTooShort(uint256 permissionIndex, uint256 ruleIndex);

    /// @notice The word rule `ruleIndex` reads is not a canonical encoding of its argType.
    error SignedNonCanonical(uint256 permissionIndex, uint256 ruleIndex, uint8 argType, bytes32 actual);

    /// @notice The contents break rule `ruleIndex` of signing permission `permissionIndex`; `actual` is the word.
    error SignedRuleViolated(uint256 permissionIndex, uint256 ruleIndex, bytes32 actual);

    /// @notice The session key's signature does not recover to the session key.
    error InvalidSessionSignature();

    /// @notice The co-signature is missing or does not recover to the session's co-signer.
    error InvalidCoSignature();

}

/// @title ISessionKeyValidator
/// @notice Entry points of keyscope's session-key validator (ERC-7579 type 1), with its types, events and errors.
interface ISessionKeyValidator is IERC7579Validator, ISessionKeyValidatorTypes {
    /*//////////////////////////////////////////////////////////////
                              ENTRY POINTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Enable `session` for the calling account (the on-chain grant: an owner UserOperation).
    /// @return sessionId The EIP-712 struct hash of the session, bound to the account and its epoch.
    function enableSession(Session calldata session) external returns (bytes32 sessionId);

    /// @notice Revoke a session of the calling account, enabled or not yet: it can never be used or enabled.
    function revokeSession(bytes32 sessionId) external;

    /// @notice Invalidate every session of the calling account and every enable signature not yet used. The
    ///         account moves to an epoch drawn from the block that runs the call (the low 32 bits of
    ///         `keccak256(abi.encode(blockhash(block.number - 1), block.prevrandao, account, epoch))`, or the epoch
    ///         after the current one if they are it), so that an enable signature made ahead of time for another
    ///         epoch names the new one only by a chance of 1 in 2^32. Read the new epoch with {epochOf}.
    function invalidateAllSessions() external;

    /// @notice As {invalidateAllSessions}, the account moving to epoch `nextEpoch`, which must not be the one it is at
    ///         (`EpochNotMoved`): for a caller that enables sessions in the same operation and must know their ids.
    ///         Draw `nextEpoch` at random when the call is made: one known before lets a grant signed ahead of time for
    ///         it be enabled after it.
    function invalidateAllSessions(uint32 nextEpoch) external;

    /// @notice Whether `account` revoked `sessionId`.
    function isSessionRevoked(address account, bytes32 sessionId) external view returns (bool);

    /// @notice Whether `sessionId` is enabled for `account` and neither revoked nor invalidated.
    function isSessionActive(address account, bytes32 sessionId) external view returns (bool);

    /// @notice The account's current epoch; enable signatures are bound to it.
    function epochOf(address account) external view returns (uint32);

    /// @notice Whether a live session of `account` (enabled in its current epoch, not revoked; expired or not) has
    ///         a call permission on `target`, or a session revoked or invalidated earlier in this transaction had
    ///         one (a bundle's operations are all validated before any runs, so one validated while the session
    ///         lived still runs after its revocation: attack 100). keyscope's accounts ask every installed validator
    ///         before installing a module, and refuse a module a live session could call: modules keep their
    ///         configuration per calling account, so the session's call would reconfigure the module for the
    ///         account (attack 52).
    /// @dev Reads the account's live sessions and the targets of their permissions: at most MAX_LIVE_PERMISSIONS
    ///      of each, so the answer is bounded. Not for validation: nothing on the USE path asks it.
    /// @param account The account.
    /// @param target The contract, typically a module about to be installed.
    /// @return Whether some live session of `account` may call `target` (with any selector), or one revoked in this
    ///         transaction could.
    function isTargetOfLiveSession(address account, address target) external view returns (bool);

    /// @notice The session id of `session` for `account` at the account's current epoch.
    function sessionId(address account, Session calldata session) external view returns (bytes32);

    /// @notice The EIP-712 digest the account's owner signs to grant `session` off-chain.
    /// @dev Named so that its selector sorts after validateUserOp's (0x97003203): with the signing fields in the
    ///      Session struct, `enableDigest(address,Session)` sorted before it, and every session operation paid
    ///      one more dispatcher comparison (see the note above rotateCoSigner).
    function grantDigest(address account, Session calldata session) external view returns (bytes32);

    /// @notice What each limit of `sessionId` on `account` has used and has left, as last counted (see {LimitUsage}).
    function limitUsage(address account, bytes32 sessionId) external view returns (LimitUsage[] memory);

    /// @notice Whether the module is installed on `smartAccount`.
    function isInitialized(address smartAccount) external view returns (bool);

    // The functions below have names whose selectors sort after validateUserOp's (0x97003203): the dispatcher
    // compares selectors in ascending order, so each function before validateUserOp would cost every session
    // operation about 22 gas.

    /// @notice Rotate the co-signer of a co-signed session of the calling account, or remove it (`coSigner` 0).
    function rotateCoSigner(bytes32 sessionId, address coSigner) external;

    /// @notice Whether `sessionId` of `account` was granted with a co-signer, and its co-signer now (0: removed).
    function coSignerOf(address account, bytes32 sessionId) external view returns (bool coSigned, address coSigner);

    /// @notice The EIP-712 digest a co-signer signs for `digest` (a userOpHash, or the ERC-7739 hash of a message
    ///         the session key signed) of session `sessionId`.
    function digestToCoSign(bytes32 sessionId, bytes32 digest) external view returns (bytes32);

    /// @notice A signing permission of `account` as stored under `signingKey` (see SigningKeys): its header (see
    ///         SigningHeader; not live: none), and for typed data its TypedDataSign typehash, packed nested list and
    ///         rule words. Read by the module's signature verifier.
    function signingPermission(address account, bytes32 signingKey)
        external
        view
        returns (uint256 header, bytes32 typedDataSignTypeHash, uint256 nested, uint256[] memory ruleWords);

    /// @notice Session `sessionId` of `account` as its signatures are checked: its key (0: none or revoked), its
    ///         co-signed space, whether it was granted with a co-signer and its co-signer now (0: removed).
    function sessionSignerOf(address account, bytes32 sessionId)
        external
        view
        returns (address key, address space, bool coSigned, address coSigner);

    /// @notice Check a session's ERC-1271 signature as `isValidSignatureWithSender` does when `account` asks for
    ///         `sender`; returns when it is valid and reverts with the reason (a signature refusal error) otherwise.
    function requireValidSignature(address account, address sender, bytes32 hash, bytes calldata signature) external view;
}
