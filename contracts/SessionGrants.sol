// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {AccountModules} from "./AccountModules.sol";
import {MeterWord, LimitState} from "./SessionLimits.sol";
import {SessionSignatureVerifier, SigningHeader, SigningKeys} from "./SessionSignatureVerifier.sol";
import {PermissionHeader, SessionMeta, SessionStorage} from "./SessionStorage.sol";

/// @title SessionGrants
/// @notice The grant side of the {SessionKeyValidator}: enabling a session (its checks, its permissions, limits,
///         signing permissions and co-signer), revoking one, invalidating all, rotating a co-signer. The module
///         creates this contract and DELEGATECALLs it, so this code runs in the module's storage (one layout, from
///         {SessionStorage}), as the module's address, for the account that called the module (`msg.sender`).
/// @dev Nothing here runs on a session's operation: validation (the USE path) stays in the module. An ENABLE
///      operation runs {enableSigned} during its validation, so this code obeys ERC-7562 as the module does: it
///      reads and writes only storage keyed by the account, and reads no clock.
///
///      Called directly (not through the module) every entry point reverts {OnlyThroughModule}: its writes would
///      land in this contract's own storage, where nothing reads them.
contract SessionGrants is SessionStorage {
    /// @notice A function of this contract was called other than through its module's DELEGATECALL.
    error OnlyThroughModule();

    /// @dev This contract's own address: running as anything else means running as the module.
    address private immutable _self;

    constructor(SessionSignatureVerifier verifier) SessionStorage(verifier) {
        _self = address(this);
    }

    modifier onlyThroughModule() {
        if (address(this) == _self) revert OnlyThroughModule();
        _;
    }

    /*//////////////////////////////////////////////////////////////
                    ENTRY POINTS (THROUGH THE MODULE)
    //////////////////////////////////////////////////////////////*/

    /// @notice The module's `onInstall`: marks the account installed, then enables `abi.encode(Session[])` if given
    ///         (the owner installs, so the owner grants them). An account still marked installed dropped the module
    ///         without its `onUninstall` (Kernel, Nexus and Safe7579 ignore a failing one): what that install left,
    ///         sessions and enable signatures, dies first, as the uninstall would have made it. So do sessions
    ///         enabled while the module was not installed: `enableSession` takes any caller, so the account's calls
    ///         made before (a session of another validator granted a call on this module) may have enabled sessions
    ///         nobody granted through it.
    ///         That epoch moves one ahead, not to one drawn from the chain: an install may run in validation
    ///         (Kernel's and Nexus's enable modes), where ERC-7562 bans reading the block.
    function onInstall(bytes calldata data) external onlyThroughModule {
        AccountState storage state = _accounts[msg.sender];
        // asked to move to the epoch it is at, _invalidateAll moves one ahead
        if (state.installed || state.liveSessions != 0) _invalidateAll(msg.sender, state.epoch);
        state.installed = true;
        if (data.length == 0) return;
        Session[] memory sessions = abi.decode(data, (Session[]));
        uint32 epoch = state.epoch;
        bytes32[] memory ids = signatureVerifier.sessionStructHashes(msg.sender, epoch, data);
        for (uint256 i = 0; i < sessions.length; ++i) {
            _enable(msg.sender, epoch, ids[i], sessions[i]);
        }
    }

    /// @notice The module's `onUninstall`: every session of the account dies, and a later reinstall brings none
    ///         back; the account moves to an epoch drawn from the chain ({_unpredictableEpoch}).
    function onUninstall(bytes calldata) external onlyThroughModule {
        _accounts[msg.sender].installed = false;
        _invalidateAll(msg.sender, _unpredictableEpoch(msg.sender));
    }

    /// @notice The module's `enableSession`: the on-chain grant, by the account itself.
    /// @return id The session's id (its EIP-712 struct hash, bound to the account and its epoch).
    function enableSession(Session calldata session) external onlyThroughModule returns (bytes32 id) {
        uint32 epoch = _accounts[msg.sender].epoch;
        id = signatureVerifier.sessionStructHash(msg.sender, epoch, msg.data[4:]);
        _enable(msg.sender, epoch, id, session);
    }

    /// @notice ENABLE mode: enable the session of `enableData` (`abi.encode(Session, bytes ownerSignature, bytes
    ///         sessionSignature)`) if the account's ERC-1271 `isValidSignature` accepts the owner's signature of its
    ///         grant digest, unless it is already active (a retried operation).
    /// @return id The session's id.
    /// @return key The session key.
    /// @return space Where its permissions are: under its key, or a co-signed session's space.
    function enableSigned(bytes calldata enableData)
        external
        onlyThroughModule
        returns (bytes32 id, address key, address space)
    {
        (Session memory session, bytes memory ownerSignature) = abi.decode(enableData, (Session, bytes));
        uint32 epoch = _accounts[msg.sender].epoch;
        id = signatureVerifier.sessionStructHash(msg.sender, epoch, enableData);
        // taken for a retry while its meta word is active at this epoch: a session an invalidation cleared at an
        // epoch the account came back to enables nothing, and its permissions are gone, so the operation is judged
        // by what its key (or co-signed space) holds now, as any operation of that key is
        if (!SessionMeta.isActiveAt(_sessions[id][msg.sender].meta, epoch)) {
            // _hashTypedDataV4 runs as the module: its domain names the module's address
            if (IERC1271(msg.sender).isValidSignature(_hashTypedDataV4(id), ownerSignature) != ERC1271_MAGIC) {
                revert InvalidOwnerSignature(msg.sender, id);
            }
            _enable(msg.sender, epoch, id, session);
        }
        key = session.sessionKey;
        space = session.coSigner == address(0) ? key : _coSignedSpace(id);
    }

    /// @notice The module's `revokeSession`.
    function revokeSession(bytes32 id) external onlyThroughModule {
        SessionRecord storage record = _sessions[id][msg.sender];
        uint256 meta = record.meta;
        if (SessionMeta.status(meta) == SessionMeta.STATUS_REVOKED) return;
        AccountState storage state = _accounts[msg.sender];
        // listed too: a session an invalidation cleared at an epoch the account came back to holds no place
        if (SessionMeta.isActiveAt(meta, state.epoch) && _isListed(msg.sender, id, meta)) {
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

    /// @notice The module's `invalidateAllSessions()`: the account moves to an epoch drawn from the chain.
    function invalidateAllSessions() external onlyThroughModule {
        _invalidateAll(msg.sender, _unpredictableEpoch(msg.sender));
    }

    /// @notice The module's `invalidateAllSessions(uint32)`: the account moves to the caller's epoch, never the one it
    ///         is at (the caller would enable its sessions under ids it did not compute, or revoke nothing by epoch).
    function invalidateAllSessions(uint32 nextEpoch) external onlyThroughModule {
        if (nextEpoch == _accounts[msg.sender].epoch) revert EpochNotMoved(msg.sender, nextEpoch);
        _invalidateAll(msg.sender, nextEpoch);
    }

    /// @notice The module's `rotateCoSigner`.
    function rotateCoSigner(bytes32 id, address coSigner) external onlyThroughModule {
        if (_coSigners[id][msg.sender] & CO_SIGNED == 0) revert NotCoSigned(id);
        address key = _activeSessionKey(msg.sender, id);
        if (key == address(0)) revert SessionNotActive(id);
        if (coSigner == key) revert InvalidCoSigner(coSigner);
        _coSigners[id][msg.sender] = CO_SIGNED | uint256(uint160(coSigner));
        emit CoSignerChanged(msg.sender, id, coSigner);
    }

    /*//////////////////////////////////////////////////////////////
                               ENABLING
    //////////////////////////////////////////////////////////////*/

    /// @dev Check and store a session's permissions. Reverts on anything malformed.
    function _enable(address account, uint32 epoch, bytes32 id, Session memory session) internal {
        SessionRecord storage record = _sessions[id][account];
        uint256 meta = record.meta;
        if (SessionMeta.status(meta) == SessionMeta.STATUS_REVOKED) revert SessionIsRevoked(id);
        if (SessionMeta.isActiveAt(meta, epoch)) {
            if (_isListed(account, id, meta)) return; // enabled already (a retried operation)
            // invalidated at this epoch before the account came back to it: dead, as a revoked one
            revert SessionIsRevoked(id);
        }

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
        // a listed paymaster lifts the cap: never the zero address, the account itself or this module (none of
        // which is a paymaster, and an account answering as one would pay its session's fees uncapped)
        for (uint256 p = 0; p < paymasters.length; ++p) {
            address paymaster = paymasters[p];
            if (paymaster == address(0) || paymaster == account || paymaster == address(this)) {
                revert InvalidPaymasters(paymasters.length, p);
            }
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
            // the account's answers about a target cannot change within this loop: asked once per target, and once
            // per (target, selector) about the selector's fallback handler
            _refuseModuleTarget(
                account, i, target, permission.selector, i != 0 && _namedBefore(session.permissions, i, target)
            );
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
    ///      (ERC-7579 `isModuleInstalled`), or a Safe module such as Safe7579's adapter (`isModuleEnabled`); the
    ///      fallback handler the account routes `selector` to (ERC-7579 `isModuleInstalled(3, target, selector)`,
    ///      {AccountModules-isFallbackHandler}: a handler takes the account's own caller from the calldata's last 20
    ///      bytes, which a call from the account sets as the session likes). The first questions are skipped when
    ///      `asked` (a permission before named `target`); the fallback handler's is asked for every nonzero
    ///      selector, which no two permissions of a session share with one target (PermissionAlreadyGranted).
    ///      Modules keep their configuration per calling account, so a call from the account could reconfigure
    ///      it (an owner validator's `onInstall` would replace the owner). An account with code that gives no answer
    ///      to the validator question is refused ({AccountModules-moduleOf}: `ModuleQueryUnanswered`). Only enabling
    ///      asks: the USE path is unchanged.
    function _refuseModuleTarget(address account, uint256 permissionIndex, address target, bytes4 selector, bool asked)
        internal
        view
    {
        bool isModule;
        uint256 moduleType;
        if (!asked) (isModule, moduleType) = AccountModules.moduleOf(account, target, true);
        if (!isModule && selector != 0 && AccountModules.isFallbackHandler(account, target, selector)) {
            (isModule, moduleType) = (true, 3);
        }
        if (isModule) revert PermissionTargetIsModule(permissionIndex, target, moduleType);
    }

    /// @dev Whether a permission before `i` names `target` (the account was asked about it then).
    function _namedBefore(Permission[] memory permissions, uint256 i, address target) internal pure returns (bool) {
        for (uint256 j = 0; j < i; ++j) {
            if (permissions[j].target == target) return true;
        }
        return false;
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

    /// @dev Record the co-signer of a session being enabled; returns where its permissions go: under its key, or,
    ///      co-signed, in its own space. Reverts `InvalidCoSigner` when the co-signer is the session key.
    function _enableCoSigner(address account, bytes32 id, address key, address coSigner)
        internal
        returns (address space)
    {
        if (coSigner == address(0)) return key;
        if (coSigner == key) revert InvalidCoSigner(coSigner);
        _coSigners[id][account] = CO_SIGNED | uint256(uint160(coSigner));
        return _coSignedSpace(id);
    }

    /*//////////////////////////////////////////////////////////////
                           LIMITS AT GRANT TIME
    //////////////////////////////////////////////////////////////*/

    /// @dev Check the session's limits, create their records, and return each permission's meter word (0: the
    ///      permission counts towards no limit: its header is not flagged and its calls cost nothing more). The
    ///      caller adds the index of the permission's first paymaster word. See {SessionLimits} for the layouts.
    function _prepareLimits(address account, bytes32 id, Session memory session)
        internal
        returns (uint256[] memory meterWords)
    {
        Limit[] memory limits = session.limits;
        uint256 count = limits.length;
        uint256 permissions = session.permissions.length;
        meterWords = new uint256[](permissions);
        if (count == 0) return meterWords;
        if (count > MAX_LIMITS) revert TooManyLimits(count);

        uint256 base = _nextLimitRecord[account];
        _nextLimitRecord[account] = base + count; // checked: a session cannot wrap the 32-bit base
        if (base + count > type(uint32).max) revert TooManyLimits(count);
        uint256 operationMask;
        uint256 gasMask;
        for (uint256 i = 0; i < count; ++i) {
            Limit memory limit = limits[i];
            uint256 kind = limit.kind;
            if (kind > LIMIT_GAS || (limit.period != 0 && limit.period < MIN_PERIOD)) revert InvalidLimit(i);
            if (kind >= LIMIT_OPERATIONS) {
                if (limit.meters.length != 0) revert InvalidLimit(i);
                if (kind == LIMIT_OPERATIONS) operationMask |= 1 << i;
                else gasMask |= 1 << i;
            }
            for (uint256 m = 0; m < limit.meters.length; ++m) {
                Meter memory meter = limit.meters[m];
                if (meter.permission >= permissions || (kind != LIMIT_AMOUNT && meter.offset != 0)) {
                    revert InvalidLimit(i);
                }
                uint256 word = meterWords[meter.permission];
                uint256 n = MeterWord.meterCount(word);
                if (n == MAX_METERS) revert TooManyMeters(meter.permission);
                uint256 entry = uint256(meter.offset) | (i << 16) | (kind << 20);
                meterWords[meter.permission] = (word | (entry << (MeterWord.METER_BITS * n))) + (1 << 192); // count + 1
            }
            uint256 amount = limit.amount > AMOUNT_MAX ? AMOUNT_MAX : limit.amount;
            LimitRecord storage record = _limitRecords[base + i][account];
            if (amount != 0) record.state = LimitState.encode(amount, limit.period, 0);
            else if (limit.period != 0) record.state = LimitState.encode(0, limit.period, 0);
            record.config = LimitState.encodeConfig(amount, kind, session.validAfter);
        }
        // every permission of a session with per-operation limits is flagged: any of its calls makes an operation
        uint256 shared = (operationMask << 200) | (gasMask << 208) | (base << 216);
        for (uint256 p = 0; p < permissions; ++p) {
            if (meterWords[p] != 0 || operationMask | gasMask != 0) meterWords[p] |= shared;
        }
        _sessionLimits[id][account] = base | (count << 32);
        _limitSessions[base][account] = id;
    }

    /// @dev Whether the session has a GAS limit (its paymaster list is then stored even without a gas cap).
    function _hasGasLimit(Session memory session) internal pure returns (bool) {
        for (uint256 i = 0; i < session.limits.length; ++i) {
            if (session.limits[i].kind == LIMIT_GAS) return true;
        }
        return false;
    }

    /*//////////////////////////////////////////////////////////////
                          SIGNING PERMISSIONS
    //////////////////////////////////////////////////////////////*/

    /// @dev Check and store a session's signing permissions under `space` (its key, or its co-signed space);
    ///      returns how many.
    function _enableSigning(address account, bytes32 id, address space, Session memory session)
        internal
        returns (uint256 count)
    {
        uint256 typed = session.typedData.length;
        count = typed + session.signIn.length;
        if (count > MAX_SIGNING_PERMISSIONS) revert InvalidSigningPermissionCount(count);
        SigningRecord storage record = _signingRecords[id][account];
        uint256 window = uint256(session.validAfter) | (uint256(session.validUntil) << 48);
        for (uint256 i = 0; i < typed; ++i) {
            TypedDataPermission memory permission = session.typedData[i];
            (bytes32 appSeparator, bytes32 contentsTypeHash, bytes32 typedDataSignTypeHash, uint256 nested) =
                signatureVerifier.typedDataGrant(account, i, permission);
            // Another module of the account: modules take the account's ERC-1271 signature as its owner's approval of
            // their configuration (another validator's grants), so a session must not sign in their domains.
            address verifying = permission.verifyingContract;
            if (permission.domainFields & 0x08 != 0 && verifying != address(0)) {
                (bool isModule,) = AccountModules.moduleOf(account, verifying, true);
                if (isModule) revert ForbiddenSigningDomain(i, verifying);
            }
            bytes32 key = SigningKeys.typedData(space, appSeparator, contentsTypeHash);
            SigningSlots storage slots = _signing[key][account];
            if (SigningHeader.isLive(slots.header)) revert SigningPermissionAlreadyGranted(i);
            Rule[] memory rules = permission.rules;
            for (uint256 r = 0; r < rules.length; ++r) {
                if (rules[r].offset % 32 != 0) revert InvalidRule(i, r);
            }
            (uint256[MAX_RULE_WORDS] memory words, uint256 w) = signatureVerifier.encodeRules(i, rules);
            for (uint256 k = 0; k < w; ++k) {
                slots.words[k] = words[k];
            }
            slots.typedDataSignTypeHash = typedDataSignTypeHash;
            slots.nested = nested;
            slots.header = SigningHeader.encode(window, i, rules.length, w);
            record.keys[i] = key;
        }
        for (uint256 j = 0; j < session.signIn.length; ++j) {
            bytes32 key = SigningKeys.signIn(space, _signInLineHash(j, session.signIn[j]));
            SigningSlots storage slots = _signing[key][account];
            if (SigningHeader.isLive(slots.header)) revert SigningPermissionAlreadyGranted(typed + j);
            slots.header = SigningHeader.encode(window, typed + j, 0, 0);
            record.keys[typed + j] = key;
        }
        if (count != 0) record.count = count; // a session without signing permissions writes nothing
    }

    /// @dev keccak256 of a sign-in permission's first line; reverts unless the domain is 1 to 255 printable ASCII
    ///      bytes without spaces.
    function _signInLineHash(uint256 index, string memory domain) internal pure returns (bytes32) {
        bytes memory d = bytes(domain);
        if (d.length == 0 || d.length > 255) revert InvalidSignInDomain(index);
        for (uint256 i = 0; i < d.length; ++i) {
            if (d[i] < 0x21 || d[i] > 0x7e) revert InvalidSignInDomain(index);
        }
        return keccak256(abi.encodePacked(d, SigningKeys.SIGN_IN_SUFFIX));
    }

    /*//////////////////////////////////////////////////////////////
                               REVOKING
    //////////////////////////////////////////////////////////////*/

    /// @dev Clear the headers of a live session's permissions, its signing permissions' included (their words
    ///      become unreachable), and mark its call targets as revoked for the rest of the transaction; returns how
    ///      many permissions it held.
    function _clearPermissions(address account, bytes32 id, SessionRecord storage record, uint256 meta)
        internal
        returns (uint256 cleared)
    {
        (bool coSigned,) = _coSignerRecord(account, id);
        address space = coSigned ? _coSignedSpace(id) : SessionMeta.key(meta);
        uint256 count = SessionMeta.permissionCount(meta);
        for (uint256 i = 0; i < count; ++i) {
            uint256 grant = record.grants[i];
            address target = address(uint160(grant));
            delete _permissions[_permissionKey(space, target, bytes4(uint32(grant >> 160)))][account].header;
            // operations a bundle validated while the session lived still run in this transaction (attack 100): its
            // targets stay session targets for the account's installs until the transaction ends
            bytes32 revoked = _revokedTargetSlot(account, target);
            assembly ("memory-safe") {
                tstore(revoked, 1)
            }
        }
        return count + _clearSigning(account, id);
    }

    /// @dev Clear the signing permissions of session `id` (revoked or invalidated); returns how many there were.
    function _clearSigning(address account, bytes32 id) internal returns (uint256 count) {
        SigningRecord storage record = _signingRecords[id][account];
        count = record.count;
        for (uint256 i = 0; i < count; ++i) {
            delete _signing[record.keys[i]][account].header;
        }
        if (count != 0) record.count = 0;
    }

    /// @dev An epoch no one could know before the block before the one that runs it: that block's hash and
    ///      PREVRANDAO (fixed once that block exists: from then on anyone computes the epoch of a call landing next),
    ///      with the account and its epoch. Called only where the block may be read (execution, never validation).
    function _unpredictableEpoch(address account) internal view returns (uint32) {
        bytes32 drawn = keccak256(
            abi.encode(blockhash(block.number - 1), block.prevrandao, account, _accounts[account].epoch)
        );
        return uint32(uint256(drawn));
    }

    /// @dev Kill every live session of `account` and move it to epoch `next` (to the one after its current epoch
    ///      when `next` is that), so that no enable signature made for the epoch it leaves can be used while it is
    ///      at another (one never used works again should it come back), nor one made ahead of time for another
    ///      epoch unless its signer knew `next`.
    function _invalidateAll(address account, uint32 next) internal {
        AccountState storage state = _accounts[account];
        uint256 live = state.liveSessions;
        for (uint256 i = 0; i < live; ++i) {
            bytes32 id = _liveSessions[i][account];
            SessionRecord storage record = _sessions[id][account];
            // its meta word stays active at the epoch left: out of the live list, it is dead should the account
            // come back to that epoch (_isListed)
            _clearPermissions(account, id, record, record.meta);
        }
        state.liveSessions = 0;
        state.livePermissions = 0;
        if (next == state.epoch) {
            unchecked {
                ++next; // wraps at 2^32: an epoch this function left, with the sessions it cleared
            }
        }
        state.epoch = next;
        emit SessionsInvalidated(account, next);
    }
}
