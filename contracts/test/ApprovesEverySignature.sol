// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ApprovesEverySignature
/// @notice Test-only contract a leaked session key could deploy: it answers every ERC-1271 question with the magic
///         value and calls whatever it is told to, so it can ask the session module to validate another account's
///         operations (its ENABLE grants included) as if it were that account.
contract ApprovesEverySignature {
    /// @notice ERC-1271: every signature of every hash is valid.
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4) {
        return 0x1626ba7e;
    }

    /// @notice ERC-7579: no module is installed (so that the module's questions about a grant's targets are answered).
    function isModuleInstalled(uint256, address, bytes calldata) external pure returns (bool) {
        return false;
    }

    /// @notice Call `to` with `data`; reverts with the callee's revert data, returns its answer.
    function relay(address to, bytes calldata data) external returns (bytes memory answer) {
        bool ok;
        (ok, answer) = to.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(answer, 0x20), mload(answer))
            }
        }
    }
}
