// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title SignatureRecorder
/// @notice Test-only verifier of the by-effect fuzzing of session signatures: it asks an account's ERC-1271
///         `isValidSignature(hash, signature)` as applications do (a 32-byte answer starting with the magic value),
///         and acts on a yes by recording it: the account, the hash, the whole signature and the block's time, so
///         that a test judges what an account approved rather than what a validator said.
contract SignatureRecorder {
    /// @notice Emitted for every signature an account approved: the account, the hash asked about, the
    ///         signature as given, and the block's time.
    event Accepted(address indexed account, bytes32 hash, bytes signature, uint256 time);

    /// @notice The account did not approve the signature (its answer, or the call's failure, as given).
    error Refused(bool success, bytes answer);

    /// @notice How many signatures each account approved here.
    mapping(address account => uint256) public accepted;

    /// @notice Ask `account` whether `signature` is its signature of `hash`; record it when it says yes, revert
    ///         with `Refused` otherwise.
    function accept(address account, bytes32 hash, bytes calldata signature) external {
        (bool success, bytes memory answer) =
            account.staticcall(abi.encodeWithSelector(0x1626ba7e, hash, signature));
        if (!success || answer.length < 32 || abi.decode(answer, (bytes32)) != bytes32(bytes4(0x1626ba7e))) {
            revert Refused(success, answer);
        }
        accepted[account] += 1;
        emit Accepted(account, hash, signature, block.timestamp);
    }
}
