// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ReferenceAccountFactory
/// @notice Test support: creates ERC-7579 reference accounts (MSA) as CREATE2 proxies of one implementation, with the
///         reference factory's interface: `createAccount(salt, initCode)` and `getAddress(salt, initCode)`. The proxy's
///         constructor calls `initializeAccount(initCode)` on the new account, where `initCode` is
///         `abi.encode(bootstrap, bootstrapCall)`. The reference factory is not distributed as bytecode through any
///         package registry, while the account, its bootstrap and its proxy are (precompiled, in the modulekit npm package).
/// @dev The proxy's creation code (the released one, which marks the account initialisable for the duration of its
///      constructor) is given at construction and kept as the code of a data contract, read back with EXTCODECOPY: creating
///      an account reads no storage and touches no address without code (ERC-7562).
///
///      Data contract code: | 0x00 (STOP: calling it does nothing) | proxy creation code |
///      Account creation code: | proxy creation code | abi.encode(implementation, initializeAccount(initCode)) |
contract ReferenceAccountFactory {
    /// @notice The data contract holding the proxy's creation code could not be created.
    error ProxyCodeNotStored(uint256 length);

    /// @notice CREATE2 failed for `salt` (an account with this salt and init code exists, or its constructor reverted).
    error AccountNotCreated(bytes32 salt);

    /// @notice The account implementation every proxy points to.
    address public immutable implementation;

    /// @notice The data contract whose code (after its first byte) is the proxy's creation code.
    address public immutable proxyCodeStore;

    /// @dev Creation code of the data contract, before its runtime code: PUSH4 size (0x63 and 4 bytes, written in the
    ///      constructor), then DUP1, PUSH1 14 (the header's length), PUSH1 0, CODECOPY, PUSH1 0, RETURN.
    bytes9 private constant STORE_HEADER_TAIL = 0x80600e6000396000f3;

    /// @param implementation_ The account implementation (the reference account's precompiled bytecode, deployed).
    /// @param proxyCreationCode The proxy's creation code, without constructor arguments.
    constructor(address implementation_, bytes memory proxyCreationCode) {
        implementation = implementation_;
        bytes memory init = abi.encodePacked(
            bytes1(0x63), uint32(proxyCreationCode.length + 1), STORE_HEADER_TAIL, bytes1(0x00), proxyCreationCode
        );
        address store;
        assembly ("memory-safe") {
            store := create(0, add(init, 0x20), mload(init))
        }
        if (store == address(0)) revert ProxyCodeNotStored(proxyCreationCode.length);
        proxyCodeStore = store;
    }

    /// @notice Create the account for (`salt`, `initCode`).
    /// @dev Like the reference factory, this does not look for an existing account first (the EntryPoint calls a
    ///      factory only for a sender without code): a second call with the same arguments reverts.
    /// @param salt The CREATE2 salt.
    /// @param initCode `abi.encode(bootstrap, bootstrapCall)`, passed to the account's `initializeAccount`.
    /// @return account The new account.
    function createAccount(bytes32 salt, bytes calldata initCode) external payable returns (address account) {
        bytes memory creation = _creationCode(initCode);
        assembly ("memory-safe") {
            account := create2(callvalue(), add(creation, 0x20), mload(creation), salt)
        }
        if (account == address(0)) revert AccountNotCreated(salt);
    }

    /// @notice The address {createAccount} gives for these arguments.
    /// @param salt The CREATE2 salt.
    /// @param initCode `abi.encode(bootstrap, bootstrapCall)`.
    /// @return The counterfactual address of the account.
    function getAddress(bytes32 salt, bytes calldata initCode) external view returns (address) {
        bytes32 codeHash = keccak256(_creationCode(initCode));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, codeHash)))));
    }

    function _creationCode(bytes calldata initCode) private view returns (bytes memory) {
        address store = proxyCodeStore;
        uint256 size = store.code.length - 1;
        bytes memory proxy = new bytes(size);
        assembly ("memory-safe") {
            extcodecopy(store, add(proxy, 0x20), 1, size)
        }
        bytes memory initialize = abi.encodeWithSignature("initializeAccount(bytes)", initCode);
        return abi.encodePacked(proxy, abi.encode(implementation, initialize));
    }
}
