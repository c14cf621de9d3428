// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title KernelDomainAccount
/// @notice Test helper: an account whose ERC-5267 `eip712Domain()` answers the fields bitmap it is set to, while it
///         always gives its name, version, this chain and its own address as the values (ERC-5267 wants the values
///         of fields left out of the bitmap to be zero; an account may answer otherwise). It makes any call it is
///         asked to, so that it can grant sessions of the session module as itself, and holds no module.
contract KernelDomainAccount {
    bytes1 internal _fields = 0x0f;

    /// @param fields The ERC-5267 fields bitmap `eip712Domain()` answers from now on.
    function setFields(bytes1 fields) external {
        _fields = fields;
    }

    /// @notice ERC-5267: the bitmap set, then name "Kernel", version "0.3.1", this chain and this address always.
    function eip712Domain()
        external
        view
        returns (bytes1, string memory, string memory, uint256, address, bytes32, uint256[] memory)
    {
        return (_fields, "Kernel", "0.3.1", block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    /// @notice ERC-7579: no module is installed (the session module asks before it judges a signature).
    function isModuleInstalled(uint256, address, bytes calldata) external pure returns (bool) {
        return false;
    }

    /// @notice Calls `target` with `data` as this account; a revert is handed back as it is.
    function run(address target, bytes calldata data) external {
        (bool ok, bytes memory answer) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(answer, 0x20), mload(answer))
            }
        }
    }
}
