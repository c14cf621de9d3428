// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";

/// @title CommittedPolicyProbe
/// @notice Benchmark support, never a module for a real account: a prototype of the commitment design, which
///         measures that design's floor (benchmarks/decompose.py, docs/benchmarks.md "The floor"). The permission
///         is not read from storage word by word: it travels in the signature, and one storage word per (account,
///         key, target, selector) holds its keccak256. It judges single calls only: no batches, limits, paymaster
///         lists, co-signers, revocation or other signature modes.
/// @dev `userOp.signature` = the session key's ECDSA signature of userOpHash (r, s, v: 65 bytes) | policy:
///
///     | flags (1): bit 0 validAfter, bit 1 validUntil, bit 2 valueLimit, bit 3 gas cap follow; bits 4-7 rule count |
///     | validAfter (6) | validUntil (6) | valueLimit (12) | gas cap in gwei (5) |   (each only when flagged)
///     | rules: word index (1) | condition (1) | argType (1) | value length (1) | value (length) |
///
/// An EQUAL rule (condition 0) has no value length or value: the stored word is keccak256(policy | the call's
/// words its EQUAL rules name, in order), so the hash binds the call's own word. Conditions 1-5: <=, <, >=, >,
/// !=, unsigned; argType: the bytes an unsigned type leaves zero (12 for an address; 0 for uint256).
contract CommittedPolicyProbe {
    error Refused(uint256 reason);

    /// @notice Store the commitment of a permission of the calling account.
    function grant(address key, address target, bytes4 selector, bytes32 commitment) external {
        bytes32 slot = _slot(msg.sender, key, target, selector);
        assembly ("memory-safe") {
            sstore(slot, commitment)
        }
    }

    /// @notice ERC-7579: nothing to set up.
    function onInstall(bytes calldata) external {}

    /// @notice ERC-7579: nothing to clear.
    function onUninstall(bytes calldata) external {}

    /// @notice A validator.
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == 1;
    }

    /// @notice Validate a session operation against its committed policy.
    function validateUserOp(PackedUserOperation calldata, bytes32 userOpHash) external returns (uint256 result) {
        assembly ("memory-safe") {
            function refuse(reason) {
                mstore(0, shl(224, 0x590a5151))
                mstore(4, reason)
                revert(0, 36)
            }
            let u := add(4, calldataload(4))
            // an EIP-7702 init call (initCode of the marker and data) is refused
            let init := add(u, calldataload(add(u, 0x40)))
            if gt(calldataload(init), 20) {
                if eq(shr(96, calldataload(add(init, 0x20))), shl(144, 0x7702)) { refuse(1) }
            }
            let sig := add(u, calldataload(add(u, 0x100)))
            let sigLength := calldataload(sig)
            sig := add(sig, 0x20)
            let ptr := mload(0x40)
            let signer := 0
            if gt(sigLength, 65) {
                // ecrecover of (userOpHash, v, r, s), low s and v 27 or 28 only
                let s := calldataload(add(sig, 0x20))
                let v := byte(0, calldataload(add(sig, 0x40)))
                if and(lt(s, 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A1), or(eq(v, 27), eq(v, 28))) {
                    mstore(ptr, userOpHash)
                    mstore(add(ptr, 0x20), v)
                    mstore(add(ptr, 0x40), calldataload(sig))
                    mstore(add(ptr, 0x60), s)
                    mstore(0, 0)
                    pop(staticcall(gas(), 1, ptr, 0x80, 0, 0x20))
                    signer := mload(0)
                }
            }
            result := 1
            if signer {
                // callData: execute(bytes32 mode, bytes executionCalldata), single call only here
                let cd := add(u, calldataload(add(u, 0x60)))
                let cdLength := calldataload(cd)
                cd := add(cd, 0x20)
                if lt(cdLength, 100) { refuse(2) }
                if iszero(eq(shr(224, calldataload(cd)), 0xe9ae5c53)) { refuse(3) }
                let mode := calldataload(add(cd, 4))
                if or(and(shr(240, mode), 0xfffe), shl(16, mode)) { refuse(4) }
                if iszero(eq(calldataload(add(cd, 36)), 0x40)) { refuse(5) }
                let execLength := calldataload(add(cd, 68))
                if gt(execLength, sub(cdLength, 100)) { refuse(5) }
                if lt(execLength, 52) { refuse(5) }
                let exec := add(cd, 100)
                let target := shr(96, calldataload(exec))
                if or(eq(target, caller()), eq(target, address())) { refuse(6) }
                let value := calldataload(add(exec, 20))
                let data := add(exec, 52)
                let dataLength := sub(execLength, 52)
                let selector := 0
                if dataLength {
                    if lt(dataLength, 4) { refuse(7) }
                    selector := shl(224, shr(224, calldataload(data)))
                    if iszero(selector) { refuse(7) }
                }
                // the commitment's slot: keccak256(account, keccak256(key, target, selector))
                mstore(ptr, shl(96, signer))
                mstore(add(ptr, 20), shl(96, target))
                mstore(add(ptr, 40), selector)
                mstore(0x20, keccak256(ptr, 44))
                mstore(0, caller())
                let stored := sload(keccak256(0, 0x40))
                if stored {
                    let policy := add(sig, 65)
                    let policyLength := sub(sigLength, 65)
                    calldatacopy(ptr, policy, policyLength)
                    let end := add(policy, policyLength)
                    // flags: validAfter, validUntil, valueLimit, gas cap present (bits 0-3); rule count (4-7)
                    let flags := byte(0, calldataload(policy))
                    let at := add(policy, 1)
                    let validAfter := 0
                    let validUntil := 0
                    let valueLimit := 0
                    let gasCap := 0
                    if and(flags, 1) { validAfter := shr(208, calldataload(at)) at := add(at, 6) }
                    if and(flags, 2) { validUntil := shr(208, calldataload(at)) at := add(at, 6) }
                    if and(flags, 4) { valueLimit := shr(160, calldataload(at)) at := add(at, 12) }
                    if and(flags, 8) { gasCap := shr(216, calldataload(at)) at := add(at, 5) }
                    if gt(value, valueLimit) { refuse(8) }
                    let ruleCount := shr(4, flags)
                    let words := add(ptr, policyLength)
                    for { let r := 0 } lt(r, ruleCount) { r := add(r, 1) } {
                        // rule: word index (1) | condition (1) | argType (1) | [length (1) | value (length)]
                        let rule := shr(232, calldataload(at))
                        let offset := shl(5, shr(16, rule))
                        let op := and(shr(8, rule), 0xff)
                        let argType := and(rule, 0xff)
                        if lt(dataLength, add(offset, 36)) { refuse(10) }
                        let actual := calldataload(add(data, add(offset, 4)))
                        // canonical words of an unsigned type of 32 - p bytes: the high p bytes zero
                        if shr(sub(256, shl(3, argType)), actual) { if argType { refuse(11) } }
                        switch op
                        case 0 {
                            mstore(words, actual)
                            words := add(words, 0x20)
                            at := add(at, 3)
                        }
                        default {
                            let size := byte(0, calldataload(add(at, 3)))
                            let reference := shr(sub(256, shl(3, size)), calldataload(add(at, 4)))
                            let ok := 0
                            switch op
                            case 1 { ok := iszero(gt(actual, reference)) }
                            case 2 { ok := lt(actual, reference) }
                            case 3 { ok := iszero(lt(actual, reference)) }
                            case 4 { ok := gt(actual, reference) }
                            case 5 { ok := iszero(eq(actual, reference)) }
                            if iszero(ok) { refuse(12) }
                            at := add(at, add(4, size))
                        }
                    }
                    if iszero(eq(at, end)) { refuse(9) }
                    if eq(keccak256(ptr, sub(words, ptr)), stored) {
                        if gasCap {
                            let limits := calldataload(add(u, 0x80))
                            let gasTotal := add(add(shr(128, limits), and(limits, 0xffffffffffffffffffffffffffffffff)), calldataload(add(u, 0xa0)))
                            let cost := mul(gasTotal, and(calldataload(add(u, 0xc0)), 0xffffffffffffffffffffffffffffffff))
                            if gt(cost, mul(gasCap, 1000000000)) { refuse(13) }
                        }
                        result := or(shl(160, validUntil), shl(208, validAfter))
                    }
                }
            }
        }
    }

    function _slot(address account, address key, address target, bytes4 selector) internal pure returns (bytes32 slot) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, shl(96, key))
            mstore(add(ptr, 20), shl(96, target))
            mstore(add(ptr, 40), selector)
            mstore(0x20, keccak256(ptr, 44))
            mstore(0, account)
            slot := keccak256(0, 0x40)
        }
    }
}
