// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISessionKeyValidator} from "./interfaces/ISessionKeyValidator.sol";
import {SessionStorage} from "./SessionStorage.sol";

/// @title MeterWord
/// @notice Decodes and encodes the meter word of a permission whose session has limits: one per (key, target,
///         selector) and account, in the permission's last storage word (see {SessionLimits}).
/// @dev Bit ranges, least significant first:
///
///     [  0, 192)  meters 0..7, 24 bits each:  offset (16) | limit index (4) | kind (4)
///     [192, 196)  meter count                 [200, 208)  limits counting 1 per operation (bit i: limit i)
///     [208, 216)  limits counting each operation's gas cost (bit i: limit i)
///     [216, 248)  record base: the session's limit i is `_limitRecords[base + i][account]`
///     [248, 253)  index of the permission's first word holding the session's paymasters
library MeterWord {
    uint256 internal constant METER_BITS = 24;

    function meterCount(uint256 word) internal pure returns (uint256) {
        return (word >> 192) & 0xf;
    }

    /// @dev Meter `i`: (kind, limit index, argument offset).
    function meter(uint256 word, uint256 i) internal pure returns (uint256 kind, uint256 limit, uint256 offset) {
        uint256 m = word >> (METER_BITS * i);
        return ((m >> 20) & 0xf, (m >> 16) & 0xf, uint16(m));
    }

    function operationMask(uint256 word) internal pure returns (uint256) {
        return uint8(word >> 200);
    }

    function gasMask(uint256 word) internal pure returns (uint256) {
        return uint8(word >> 208);
    }

    function base(uint256 word) internal pure returns (uint256) {
        return uint32(word >> 216);
    }

    function paymasterStart(uint256 word) internal pure returns (uint256) {
        return (word >> 248) & 0x1f;
    }
}

/// @title LimitState
/// @notice Decodes and encodes the state word of a limit record (written on every count).
/// @dev Bit ranges, least significant first:
///
///     [  0, 176)  left in the period (or the session's life)
///     [176, 208)  period length in seconds (0: the session's life)
///     [208, 256)  index of the period `left` is for
///
/// The record's second word is its configuration, read to refill a period and by views:
///
///     [  0, 176)  amount (saturated)      [176, 184)  kind      [184, 232)  anchor (the session's validAfter)
library LimitState {
    uint256 internal constant LEFT_MASK = (1 << 176) - 1;

    function encode(uint256 left_, uint256 period_, uint256 index_) internal pure returns (uint256) {
        return left_ | (period_ << 176) | (index_ << 208);
    }

    function left(uint256 state) internal pure returns (uint256) {
        return state & LEFT_MASK;
    }

    function period(uint256 state) internal pure returns (uint256) {
        return uint32(state >> 176);
    }

    function index(uint256 state) internal pure returns (uint256) {
        return state >> 208;
    }

    function encodeConfig(uint256 amount_, uint256 kind_, uint256 anchor_) internal pure returns (uint256) {
        return amount_ | (kind_ << 176) | (anchor_ << 184);
    }

    function amount(uint256 config) internal pure returns (uint256) {
        return config & LEFT_MASK;
    }

    function kind(uint256 config) internal pure returns (uint8) {
        return uint8(config >> 176);
    }

    function anchor(uint256 config) internal pure returns (uint256) {
        return uint48(config >> 184);
    }
}

/// @title SessionLimits
/// @notice Budgets over a session's life or per period — native value, an argument's total, calls, operations,
///         gas cost — signed in the grant and counted during validation, in storage keyed by the account.
/// @dev {SessionGrants} prepares the limits when it enables a session (it stores each permission's meter word as the
///      permission's last storage word and flags the permission's header); the validator calls {_countLimits} after the policy
///      check of an operation one of whose calls has a flagged permission. Counting in validation is what makes a
///      batch, several operations in one bundle or parallel nonce lanes unable to overspend: the EntryPoint
///      validates every operation of a bundle, in order, before it executes any, and a refused or failed
///      validation reverts the whole `handleOps`, writes included.
///
///      Periods are picked without the clock: the operation claims a time (signature prefix MODE_AT), the module
///      counts in the period holding it and returns validation data bounded to that period, so the EntryPoint
///      accepts the operation only inside the period it was counted in (AA22 otherwise, and AA22 reverts the
///      count with the rest of the bundle).
///
///      Storage (account innermost): `_limitRecords[base + i][account]` = (state, config) of the session's limit i;
///      `_sessionLimits[sessionId][account]` = base (32) | limit count (8), for views; `_limitSessions[base]
///      [account]` = the session id, for the LimitReached event; `_nextLimitRecord[account]`, the next free base
///      (record numbers are never reused, so no session ever finds another's counts).
abstract contract SessionLimits is ISessionKeyValidator, SessionStorage {
    /// @dev No time claimed by the operation's signature.
    uint256 internal constant NO_TIME = type(uint256).max;
    uint256 internal constant UINT48_MAX = type(uint48).max;

    /// @dev The storage slot of the header of `key`'s permission for (target, selector) on `account`; the
    ///      permission's words follow it, the meter word last.
    function _permissionSlot(address account, address key, address target, bytes4 selector)
        internal
        view
        virtual
        returns (uint256 slot);

    /// @dev Storage words a permission has after its header; the meter word is the last.
    function _meterWordOffset() internal pure virtual returns (uint256);

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISessionKeyValidator
    function limitUsage(address account, bytes32 id) external view override returns (LimitUsage[] memory usage) {
        uint256 info = _sessionLimits[id][account];
        uint256 count = info >> 32;
        uint256 base = uint32(info);
        usage = new LimitUsage[](count);
        for (uint256 i = 0; i < count; ++i) {
            LimitRecord storage record = _limitRecords[base + i][account];
            uint256 state = record.state;
            uint256 config = record.config;
            uint256 amount = LimitState.amount(config);
            uint256 period = LimitState.period(state);
            uint256 left = LimitState.left(state);
            usage[i] = LimitUsage({
                kind: LimitState.kind(config),
                amount: amount,
                period: uint32(period),
                periodStart: uint48(_periodStart(LimitState.anchor(config), period, LimitState.index(state))),
                used: amount - left,
                left: left
            });
        }
    }

    /*//////////////////////////////////////////////////////////////
                               ENABLING
    //////////////////////////////////////////////////////////////*/

    /*//////////////////////////////////////////////////////////////
                               COUNTING
    //////////////////////////////////////////////////////////////*/

    /// @dev What {_countLimits} carries from call to call: the bounds of the periods counted in, and the sessions
    ///      met (their meter words and first call) for the per-operation limits.
    struct Tally {
        uint256 time;
        uint256 validAfter;
        uint256 validUntil;
        uint256 sessions;
        uint256[] words; // the session's meter word
        uint256[] firsts; // call index (64) | the session's validAfter (48) | its paymaster count (8)
        uint256[] slots; // the header slot of the session's first permission called
    }

    /// @dev Count the operation's calls (already checked against the policy) towards their sessions' limits, then
    ///      the operation itself towards per-operation limits; reverts on a limit exceeded. Returns the bounds of the
    ///      periods counted in (validUntil type(uint48).max: none).
    function _countLimits(
        address account,
        address key,
        bool batch,
        bytes calldata execution,
        uint256 time,
        address paymaster,
        uint256 cost
    ) internal returns (uint256 validAfter, uint256 validUntil) {
        Tally memory tally;
        tally.time = time;
        tally.validUntil = UINT48_MAX;
        if (!batch) {
            tally.words = new uint256[](1);
            tally.firsts = new uint256[](1);
            tally.slots = new uint256[](1);
            _countCall(
                account,
                key,
                0,
                address(bytes20(execution[:20])),
                uint256(bytes32(execution[20:52])),
                execution[52:],
                tally
            );
        } else {
            uint256 count = _load(execution, 32);
            tally.words = new uint256[](count);
            tally.firsts = new uint256[](count);
            tally.slots = new uint256[](count);
            uint256 start = 64 + count * 32; // the encoding is canonical: checked by the policy walk
            for (uint256 i = 0; i < count; ++i) {
                uint256 size = _load(execution, start + 96);
                _countCall(
                    account,
                    key,
                    i,
                    address(uint160(_load(execution, start))),
                    _load(execution, start + 32),
                    execution[start + 128:start + 128 + size],
                    tally
                );
                start += 128 + ((size + 31) & ~uint256(31));
            }
        }
        for (uint256 s = 0; s < tally.sessions; ++s) {
            _countOperation(account, tally, s, paymaster, cost);
        }
        return (tally.validAfter, tally.validUntil);
    }

    /// @dev One call's meters, and note its session for the per-operation limits.
    function _countCall(
        address account,
        address key,
        uint256 callIndex,
        address target,
        uint256 value,
        bytes calldata data,
        Tally memory tally
    ) internal {
        bytes4 selector = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        uint256 slot = _permissionSlot(account, key, target, selector);
        uint256 header = _sload(slot);
        if (header & (1 << 252) == 0) return; // PermissionHeader.LIMITED: this permission counts nothing
        uint256 word = _sload(slot + _meterWordOffset());
        uint256 anchor = uint48(header); // the session's validAfter
        uint256 n = MeterWord.meterCount(word);
        for (uint256 m = 0; m < n; ++m) {
            (uint256 kind, uint256 limit, uint256 offset) = MeterWord.meter(word, m);
            uint256 amount;
            if (kind == LIMIT_CALLS) {
                amount = 1;
            } else if (kind == LIMIT_NATIVE) {
                amount = value;
            } else {
                if (data.length < offset + 36) revert CalldataTooShortForLimit(callIndex, limit);
                amount = _load(data, offset + 4);
            }
            if (amount != 0) _spend(account, MeterWord.base(word), limit, amount, callIndex, anchor, tally);
        }
        if (MeterWord.operationMask(word) | MeterWord.gasMask(word) == 0) return;
        uint256 base = MeterWord.base(word);
        for (uint256 s = 0; s < tally.sessions; ++s) {
            if (MeterWord.base(tally.words[s]) == base) return;
        }
        uint256 s = tally.sessions++;
        tally.words[s] = word;
        tally.firsts[s] = callIndex | (anchor << 64) | (((header >> 249) & 7) << 112); // header's paymaster count
        tally.slots[s] = slot;
    }

    /// @dev The operation's count of session `s`: 1 to each OPERATIONS limit, its gas cost to each GAS limit
    ///      unless it names a paymaster the session lists.
    function _countOperation(address account, Tally memory tally, uint256 s, address paymaster, uint256 cost)
        internal
    {
        uint256 word = tally.words[s];
        uint256 first = tally.firsts[s];
        uint256 callIndex = uint64(first);
        uint256 anchor = uint48(first >> 64);
        uint256 base = MeterWord.base(word);
        uint256 mask = MeterWord.operationMask(word);
        for (uint256 i = 0; mask != 0; ++i) {
            if (mask & (1 << i) != 0) {
                _spend(account, base, i, 1, callIndex, anchor, tally);
                mask &= ~(1 << i);
            }
        }
        mask = MeterWord.gasMask(word);
        if (mask == 0 || cost == 0) return;
        if (paymaster != address(0)) {
            // the session's paymaster list sits in its permissions' words
            uint256 listed = uint8(first >> 112);
            uint256 slot = tally.slots[s] + 1 + MeterWord.paymasterStart(word);
            for (uint256 p = 0; p < listed; ++p) {
                if (_sload(slot + p) == uint256(uint160(paymaster))) return;
            }
        }
        for (uint256 i = 0; mask != 0; ++i) {
            if (mask & (1 << i) != 0) {
                _spend(account, base, i, cost, callIndex, anchor, tally);
                mask &= ~(1 << i);
            }
        }
    }

    /// @dev Take `amount` from limit `limit` of the session whose records start at `base`, in the period holding
    ///      the claimed time (a limit over the session's life has one period).
    function _spend(
        address account,
        uint256 base,
        uint256 limit,
        uint256 amount,
        uint256 callIndex,
        uint256 anchor,
        Tally memory tally
    ) internal {
        LimitRecord storage record = _limitRecords[base + limit][account];
        uint256 state = record.state;
        uint256 left = LimitState.left(state);
        uint256 period = LimitState.period(state);
        uint256 index = LimitState.index(state);
        if (period != 0) {
            uint256 time = tally.time;
            if (time == NO_TIME) revert ClaimedTimeRequired(callIndex, limit);
            uint256 k = time < anchor ? 0 : (time - anchor) / period;
            if (k < index) revert PeriodPassed(callIndex, limit, k, index);
            if (k > index) {
                left = LimitState.amount(record.config);
                index = k;
            }
            uint256 start = anchor + k * period;
            uint256 end = start + period - 1;
            if (start > tally.validAfter) tally.validAfter = start;
            if (end < tally.validUntil) tally.validUntil = end;
        }
        if (amount > left) revert LimitExceeded(callIndex, limit, amount, left);
        unchecked {
            left -= amount;
        }
        record.state = LimitState.encode(left, period, index);
        if (left == 0) {
            emit LimitReached(account, _limitSessions[base][account], limit, uint48(_periodStart(anchor, period, index)));
        }
    }

    /// @dev The start of period `index` (a limit over the session's life: the anchor), capped to 48 bits.
    function _periodStart(uint256 anchor, uint256 period, uint256 index) internal pure returns (uint256 start) {
        start = anchor + period * index;
        if (start > UINT48_MAX) start = UINT48_MAX;
    }

    function _sload(uint256 slot) private view returns (uint256 value) {
        assembly ("memory-safe") {
            value := sload(slot)
        }
    }

    function _load(bytes calldata data, uint256 offset) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := calldataload(add(data.offset, offset))
        }
    }
}
