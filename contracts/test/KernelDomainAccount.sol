// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title KernelDomainAccount
/// @notice Test helper: an account whose ERC-5267 `eip712Domain()` answers the fields bitmap, chain id and verifying
///         contract it is set to (this chain and its own address until set), whatever the bitmap says (ERC-5267
///         wants the values of fields left out of the bitmap to be zero; an account may answer otherwise). It makes
///         any call it is asked to, so that it can grant sessions of the session module as itself, and holds no
///         module.
contract KernelDomainAccount {
    bytes1 internal _fields = 0x0f;
    uint256 internal _chainId; // 0: this chain
    address internal _verifyingContract; // 0: this account
    uint256[] internal _extensions;

    /// @notice Sets what `eip712Domain()` answers from now on.
    /// @param fields The ERC-5267 fields bitmap.
    /// @param chainId The chain id answered (0: this chain).
    /// @param verifyingContract The verifying contract answered (0: this account).
    function setDomain(bytes1 fields, uint256 chainId, address verifyingContract) external {
        (_fields, _chainId, _verifyingContract) = (fields, chainId, verifyingContract);
    }

    /// @notice Sets the ERC-5267 extensions `eip712Domain()` answers from now on (none until set).
    /// @param extensions The EIP numbers of the domain's extensions.
    function setExtensions(uint256[] calldata extensions) external {
        _extensions = extensions;
    }

    /// @notice ERC-5267: the bitmap set, name "Kernel", version "0.3.1", the chain id, verifying contract and
    ///         extensions set.
    function eip712Domain()
        external
        view
        returns (bytes1, string memory, string memory, uint256, address, bytes32, uint256[] memory)
    {
        uint256 chainId = _chainId == 0 ? block.chainid : _chainId;
        address verifying = _verifyingContract == address(0) ? address(this) : _verifyingContract;
        return (_fields, "Kernel", "0.3.1", chainId, verifying, bytes32(0), _extensions);
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
