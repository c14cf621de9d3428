// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title DeploylessSignatureCheck
/// @notice Asks an account that has no code yet whether it takes a signature, with no transaction: never deployed,
///         its creation code runs as an `eth_call` without `to` (the idea of ERC-6492). The constructor creates the
///         account as its first UserOperation would (calling `factory` with `factoryData`), checks that the factory
///         answered the account's address and that the account now has code (as the EntryPoint's AA14 and AA15 do),
///         asks the new account's ERC-1271 `isValidSignature(hash, signature)`, then makes the read-only calls
///         `reads` on it, and returns the answers as the call's result. The node throws the call's state away.
/// @dev Result (the constructor's return data), ABI-encoded:
///
///     | field             | type      | meaning                                                              |
///     |-------------------|-----------|----------------------------------------------------------------------|
///     | `answered`        | `bool`    | whether `isValidSignature` returned (false: it reverted)             |
///     | `answer`          | `bytes`   | its return data (its revert data when it reverted)                   |
///     | `readAnswers`     | `bytes[]` | each read's return data, in order; empty for a read that reverted    |
///
/// The account answers `isValidSignature` to this contract: a caller other than the module that asks it when a
/// session is enabled. An account whose answer depends on its caller (keyscope's takes its owner's bare signature
/// only from the installed validator validating its operation) is judged with the facts `reads` bring back (its
/// owner, its validators).
/// Failures to create the account revert with the errors below, which the SDK decodes and names.
contract DeploylessSignatureCheck {
    /// @notice The factory call reverted (or `factory` has no code: it then answers nothing).
    /// @param factory The factory called.
    /// @param reason The factory's revert data.
    error FactoryCallFailed(address factory, bytes reason);

    /// @notice The factory call did not create `account`: it answered `created` (the zero address for an answer
    ///         shorter than a word), or answered `account` but left it without code.
    /// @param account The account asked about.
    /// @param created The address the factory answered.
    error AccountNotCreated(address account, address created);

    /// @notice Create `account` through `factory`, ask it about `signature`, and return the answers (see the
    ///         contract's notes). Never deployed: run as an `eth_call`'s creation code.
    /// @param account The address the account lands at.
    /// @param factory The factory its first UserOperation calls.
    /// @param factoryData The call data of that factory call.
    /// @param hash The hash the account is asked about.
    /// @param signature The signature, as the account's `isValidSignature` takes it.
    /// @param reads Call data of read-only calls made on the account once `isValidSignature` has answered.
    constructor(
        address account,
        address factory,
        bytes memory factoryData,
        bytes32 hash,
        bytes memory signature,
        bytes[] memory reads
    ) {
        (bool created, bytes memory answer) = factory.call(factoryData);
        if (!created || factory.code.length == 0) revert FactoryCallFailed(factory, answer);
        address returned = answer.length < 32 ? address(0) : address(uint160(uint256(bytes32(answer))));
        if (returned != account || account.code.length == 0) revert AccountNotCreated(account, returned);

        bool answered;
        (answered, answer) = account.staticcall(abi.encodeWithSelector(0x1626ba7e, hash, signature));
        bytes[] memory readAnswers = new bytes[](reads.length);
        for (uint256 i = 0; i < reads.length; ++i) {
            (bool ok, bytes memory data) = account.staticcall(reads[i]);
            if (ok) readAnswers[i] = data;
        }
        bytes memory result = abi.encode(answered, answer, readAnswers);
        assembly ("memory-safe") {
            return(add(result, 0x20), mload(result))
        }
    }
}
