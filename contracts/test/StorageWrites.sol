// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title StorageWrites
/// @notice Test helper: writes the given words into the storage of whoever runs its code. An account delegatecalls it
///         (ERC-7579's delegatecall call type) to stand for other code an EOA delegated to before: code that writes the
///         delegate's namespace directly, leaving its sets' lengths, entries and positions as it likes.
contract StorageWrites {
    /// @notice `slots.length` and `values.length` differ.
    /// @param slots How many slots were given.
    /// @param values How many values were given.
    error LengthMismatch(uint256 slots, uint256 values);

    /// @notice Store `values[i]` at `slots[i]`, in the storage of the contract running this code.
    /// @param slots The storage slots.
    /// @param values The words to store, one per slot.
    function write(uint256[] calldata slots, uint256[] calldata values) external {
        if (slots.length != values.length) revert LengthMismatch(slots.length, values.length);
        for (uint256 i = 0; i < slots.length; ++i) {
            uint256 slot = slots[i];
            uint256 value = values[i];
            assembly ("memory-safe") {
                sstore(slot, value)
            }
        }
    }
}
