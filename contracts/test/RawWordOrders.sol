// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title RawWordOrders
/// @notice Test-only victim: a gas-optimised order book that takes a signed order's EIP-712 words as they come,
///         hashes them raw (the typehash, then the three calldata words), checks the owner's signature the standard
///         way (OpenZeppelin's SignatureChecker: ERC-1271 `isValidSignature` for a smart account), and then reads
///         each field cleaned to its declared type (the address and the uint64 truncated, the int64 sign-extended),
///         as hand-written assembly or ABI coder v1 code does, instead of refusing a word that is not canonical.
///
///         Order(address buyer,uint64 minPrice,int64 maxLoss), domain "Raw Orders" (name, chainId, this contract).
contract RawWordOrders {
    /// @notice The EIP-712 typehash of Order.
    bytes32 public constant ORDER_TYPEHASH = keccak256("Order(address buyer,uint64 minPrice,int64 maxLoss)");

    /// @notice An order as this book acts on it (each field read from its word, cleaned to its type).
    struct Order {
        address buyer;
        uint64 minPrice;
        int64 maxLoss;
    }

    /// @notice The last order each owner's signature got filled.
    mapping(address owner => Order) public filled;

    /// @notice The signature does not verify for the owner (SignatureChecker said no).
    error InvalidSignature(address owner, bytes32 hash);

    /// @notice An order was filled on the owner's signature.
    event OrderFilled(address indexed owner, address buyer, uint64 minPrice, int64 maxLoss);

    /// @notice The book's EIP-712 domain: name "Raw Orders", this chain, this contract.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)"),
                keccak256("Raw Orders"),
                block.chainid,
                address(this)
            )
        );
    }

    /// @notice The digest the owner signs for an order's words, hashed as they are.
    function digest(bytes32[3] calldata words) public view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encodePacked(ORDER_TYPEHASH, words));
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    /// @notice Fill the order of `words` if `signature` is the owner's, and record it as read from the words.
    function fill(address owner, bytes32[3] calldata words, bytes calldata signature) external {
        bytes32 hash = digest(words);
        if (!SignatureChecker.isValidSignatureNow(owner, hash, signature)) revert InvalidSignature(owner, hash);
        Order memory order = Order({
            buyer: address(uint160(uint256(words[0]))),
            minPrice: uint64(uint256(words[1])),
            maxLoss: int64(int256(uint256(words[2])))
        });
        filled[owner] = order;
        emit OrderFilled(owner, order.buyer, order.minPrice, order.maxLoss);
    }
}
