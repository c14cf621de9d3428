// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISessionKeyValidatorTypes} from "./interfaces/ISessionKeyValidator.sol";

/// @title AccountModules
/// @notice What an account says of its modules, asked as views: ERC-7579 `isModuleInstalled` and Safe's
///         `isModuleEnabled`. Used where a session must not reach another module of the account: a call target
///         when a session is enabled, a signing domain when it is enabled, and a signature's verifier when it is
///         checked. And what a session validator says of its live sessions' targets, which keyscope's accounts
///         ask before they install a module.
library AccountModules {
    /// @dev IERC7579ModuleConfig.isModuleInstalled(uint256,address,bytes) and Safe's isModuleEnabled(address).
    bytes4 internal constant IS_MODULE_INSTALLED = 0x112d3a7d;
    bytes4 internal constant IS_MODULE_ENABLED = 0x2d9ad53d;
    /// @dev ISessionKeyValidator.isTargetOfLiveSession(address,address).
    bytes4 internal constant IS_TARGET_OF_LIVE_SESSION = 0xb9614040;

    /// @dev Whether `target` is a module of `account`, and of which type: a validator (1), an executor (2), a hook
    ///      (4), a pre-validation hook (8 for ERC-1271, 9 for ERC-4337: it hands every validator the hash and signature
    ///      it judges) (ERC-7579 `isModuleInstalled(type, target, "")`), or a Safe module (0, `isModuleEnabled`). ERC-7579
    ///      has every account answer the validator question: an account that does not (a revert, no such function,
    ///      an answer that is not a bool) is refused, `ModuleQueryUnanswered(account, target)`, unless it has no code:
    ///      an account initialised by its proxy's constructor (Nexus, the reference account) installs its modules
    ///      before it has code to answer, its owner validator before the session module; with `askTarget` the target
    ///      is then asked the same questions of itself (ERC-7579 `isModuleType(t)`), and a module of one of those
    ///      types counts as the account's (grants, at install); without, such an account is taken to have no
    ///      modules (a signature's verifier: an account asks about signatures once it has code).
    ///      Any other question unanswered is taken to say no, as some accounts revert on it (accounts without
    ///      pre-validation hooks on types 8 and 9, say); a hook question
    ///      unanswered is asked again with a context of two zero words, as Safe7579 takes it (hook type GLOBAL, no
    ///      selector): it reverts on an empty context. Fallback handlers (type 3) are installed per selector: they are
    ///      asked about per permission, with the permission's selector ({isFallbackHandler}); Safe7579's selector
    ///      hooks are not asked about: see the threat model.
    function moduleOf(address account, address target, bool askTarget)
        internal
        view
        returns (bool isModule, uint256 moduleType)
    {
        bool unanswered;
        assembly ("memory-safe") {
            // isModuleInstalled(t, target, context) at m: the context's length at m + 100, its two words after it
            let m := mload(0x40)
            mstore(m, shl(224, 0x112d3a7d)) // IS_MODULE_INSTALLED
            target := and(target, sub(shl(160, 1), 1)) // the bits past an address, whatever its caller left
            mstore(add(m, 36), target)
            mstore(add(m, 68), 0x60)
            mstore(add(m, 100), 0)
            mstore(add(m, 132), 0)
            mstore(add(m, 164), 0)
            let asked := account
            let t := 1
            for {} 1 {} {
                mstore(add(m, 4), t)
                // the account is asked isModuleInstalled(t, target, context); the target isModuleType(t), as ERC-7579
                // writes it: 36 bytes (a module may refuse calldata longer than its argument)
                let size := 36
                if eq(asked, account) { size := add(132, mload(add(m, 100))) }
                let ok := staticcall(gas(), asked, m, size, 0, 32)
                let answered := and(ok, and(gt(returndatasize(), 31), lt(mload(0), 2)))
                if and(answered, eq(mload(0), 1)) {
                    isModule := 1
                    moduleType := t
                    break
                }
                if iszero(answered) {
                    if and(eq(t, 1), eq(asked, account)) {
                        unanswered := gt(extcodesize(account), 0)
                        // an account its proxy's constructor initialises has no code yet and answers nothing,
                        // though the modules installed before (its owner validator) are: the target is asked
                        // instead, type by type, whether it is such a module, ERC-7579 `isModuleType(t)` (36
                        // bytes); a type it answers nothing of it is not, and the next type is asked (a module may
                        // revert on the types it is not)
                        if and(askTarget, iszero(unanswered)) {
                            asked := target
                            mstore(m, shl(224, 0xecd05961)) // IS_MODULE_TYPE
                            continue
                        }
                        break
                    }
                    if and(eq(t, 4), iszero(mload(add(m, 100)))) {
                        mstore(add(m, 100), 64)
                        continue
                    }
                }
                if eq(t, 9) { break }
                // validator (1), executor (2), hook (4), then the pre-validation hooks (8: ERC-1271, 9: ERC-4337),
                // asked with an empty context, as ERC-7579's reference account takes them
                switch t
                case 4 {
                    t := 8
                    mstore(add(m, 100), 0)
                }
                case 8 { t := 9 }
                default { t := shl(1, t) }
            }
            if iszero(or(isModule, unanswered)) {
                mstore(m, shl(224, 0x2d9ad53d)) // IS_MODULE_ENABLED
                mstore(add(m, 4), target)
                let ok := staticcall(gas(), account, m, 36, 0, 32)
                isModule := and(ok, and(gt(returndatasize(), 31), eq(mload(0), 1)))
            }
        }
        if (unanswered) revert ISessionKeyValidatorTypes.ModuleQueryUnanswered(account, target);
    }

    /// @dev Whether `account` routes calls of `selector` to `target` as its fallback handler: ERC-7579
    ///      `isModuleInstalled(3, target, context)` with the selector left-aligned in one word as the context
    ///      (`abi.encode(selector)`), which accounts reading the context's first 4 bytes (OpenZeppelin's
    ///      `AccountERC7579`, Kernel, Nexus, keyscope's) and those decoding it as `(bytes4)` (Safe7579) both take.
    ///      Any answer but a well-formed true (a revert, no such function, not a bool) says no: some accounts revert
    ///      on the question. An account without code yet (its proxy's constructor installing its modules) cannot
    ///      answer: the target is asked instead whether it is a fallback handler at all (ERC-7579
    ///      `isModuleType(3)`), and one that says yes counts as the account's, whatever the selector, as
    ///      {moduleOf} counts the other types.
    function isFallbackHandler(address account, address target, bytes4 selector) internal view returns (bool yes) {
        assembly ("memory-safe") {
            // isModuleInstalled(3, target, abi.encode(selector)) at m, the context's one word at m + 132
            let m := mload(0x40)
            mstore(m, shl(224, 0x112d3a7d)) // IS_MODULE_INSTALLED
            mstore(add(m, 4), 3)
            mstore(add(m, 36), and(target, sub(shl(160, 1), 1)))
            mstore(add(m, 68), 0x60)
            mstore(add(m, 100), 32)
            mstore(add(m, 132), and(selector, shl(224, 0xffffffff)))
            let asked := account
            let size := 164
            if iszero(extcodesize(account)) {
                asked := target
                mstore(m, shl(224, 0xecd05961)) // IS_MODULE_TYPE: isModuleType(3), 36 bytes as ERC-7579 writes it
                size := 36
            }
            let ok := staticcall(gas(), asked, m, size, 0, 32)
            yes := and(ok, and(gt(returndatasize(), 31), eq(mload(0), 1)))
        }
    }

    /// @dev Whether `validator`, a validator installed on `account`, says a live session of the account may call
    ///      `module` (keyscope's session module answers {ISessionKeyValidator-isTargetOfLiveSession}). Asked by
    ///      keyscope's accounts before they install `module`. A validator without that view (another vendor's, an
    ///      owner validator) answers nothing well-formed, and that is taken to say no.
    function isSessionTarget(address validator, address account, address module) internal view returns (bool) {
        return asks(validator, abi.encodeWithSelector(IS_TARGET_OF_LIVE_SESSION, account, module));
    }

    /// @dev Record, until the transaction ends, that the calling account uninstalled `validator`: a session of the
    ///      validator revoked by that uninstall can still run an operation validated earlier in the same bundle, so
    ///      the account asks it too ({uninstalledSessionTarget}). Transient storage of the account, at `slot`:
    ///
    ///      | slot         | holds                                        |
    ///      |--------------|----------------------------------------------|
    ///      | `slot`       | n, the validators uninstalled so far          |
    ///      | `slot` + i   | the i-th of them (1 <= i <= n)                |
    function rememberUninstalled(uint256 slot, address validator) internal {
        assembly ("memory-safe") {
            let gone := add(tload(slot), 1)
            tstore(add(slot, gone), validator)
            tstore(slot, gone)
        }
    }

    /// @dev {rememberUninstalled}, unless `validator` is recorded at `slot` already in this transaction: for a
    ///      validator recorded once per operation it validates (keyscope's delegate), so that a bundle of many such
    ///      operations leaves one entry to ask.
    function rememberOnce(uint256 slot, address validator) internal {
        uint256 gone;
        assembly ("memory-safe") {
            gone := tload(slot)
        }
        for (uint256 i = 1; i <= gone; ++i) {
            address recorded;
            assembly ("memory-safe") {
                recorded := tload(add(slot, i))
            }
            if (recorded == validator) return;
        }
        rememberUninstalled(slot, validator);
    }

    /// @dev The first validator recorded at `slot` by {rememberUninstalled} in this transaction that says a live
    ///      session of the calling account may call `module` ({isSessionTarget}); address(0) when none does.
    function uninstalledSessionTarget(uint256 slot, address module) internal view returns (address) {
        uint256 gone;
        assembly ("memory-safe") {
            gone := tload(slot)
        }
        for (uint256 i = 1; i <= gone; ++i) {
            address validator;
            assembly ("memory-safe") {
                validator := tload(add(slot, i))
            }
            if (isSessionTarget(validator, address(this), module)) return validator;
        }
        return address(0);
    }

    /// @dev Whether `account` answers `data` (a view returning bool) with true.
    function asks(address account, bytes memory data) internal view returns (bool yes) {
        (bool ok, bytes memory answer) = account.staticcall(data);
        return ok && answer.length >= 32 && abi.decode(answer, (uint256)) == 1;
    }
}
