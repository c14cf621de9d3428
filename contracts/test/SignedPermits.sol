// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title SignedPermits
/// @notice Test support: an application that acts on signed permits and checks their signatures the standard way,
///         OpenZeppelin's SignatureChecker (ECDSA for an EOA, ERC-1271 `isValidSignature` for a contract such as a
///         smart account). It takes Permit2's `PermitSingle` (a nested struct, domain "Permit2" without version) and
///         EIP-2612's `Permit` (domain "Test USD", version "1"), and records the allowance each grants, as Permit2
///         and a permit token would; keyscope's tests sign both with sessions.
contract SignedPermits is EIP712 {
    struct PermitDetails {
        address token;
        uint160 amount;
        uint48 expiration;
        uint48 nonce;
    }

    struct PermitSingle {
        PermitDetails details;
        address spender;
        uint256 sigDeadline;
    }

    bytes32 public constant PERMIT_DETAILS_TYPEHASH =
        keccak256("PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)");
    bytes32 public constant PERMIT_SINGLE_TYPEHASH = keccak256(
        "PermitSingle(PermitDetails details,address spender,uint256 sigDeadline)"
        "PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)"
    );
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @notice allowance[owner][token][spender]: what the last permit granted.
    mapping(address owner => mapping(address token => mapping(address spender => uint256))) public allowance;
    /// @notice The next Permit2-style nonce of each (owner, token, spender).
    mapping(address owner => mapping(address token => mapping(address spender => uint48))) public permit2Nonces;
    /// @notice The next EIP-2612 nonce of each owner.
    mapping(address owner => uint256) public nonces;

    /// @notice The signature does not verify for the owner (SignatureChecker said no).
    error InvalidSignature(address owner, bytes32 hash);
    /// @notice The permit's deadline passed, or its nonce is not the next one.
    error StalePermit();

    /// @notice A permit was accepted.
    event Permitted(address indexed owner, address indexed token, address indexed spender, uint256 amount);

    constructor() EIP712("Permit2", "") {}

    /// @notice Permit2's domain: name "Permit2", the chain and this contract, no version.
    function permit2DomainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)"),
                keccak256("Permit2"),
                block.chainid,
                address(this)
            )
        );
    }

    /// @notice The EIP-2612 token's domain: name "Test USD", version "1", the chain and this contract.
    function tokenDomainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(EIP712_DOMAIN_TYPEHASH, keccak256("Test USD"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// @notice The digest of a PermitSingle, as Permit2 computes it.
    function permitSingleDigest(PermitSingle calldata permit) public view returns (bytes32) {
        bytes32 details = keccak256(abi.encode(PERMIT_DETAILS_TYPEHASH, permit.details));
        bytes32 structHash = keccak256(abi.encode(PERMIT_SINGLE_TYPEHASH, details, permit.spender, permit.sigDeadline));
        return keccak256(abi.encodePacked(hex"1901", permit2DomainSeparator(), structHash));
    }

    /// @notice The digest of an EIP-2612 Permit.
    function permitDigest(address owner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonce, deadline));
        return keccak256(abi.encodePacked(hex"1901", tokenDomainSeparator(), structHash));
    }

    /// @notice Whether `signature` is `owner`'s for `hash`, checked as applications do (SignatureChecker).
    function isValidSignatureNow(address owner, bytes32 hash, bytes calldata signature) external view returns (bool) {
        return SignatureChecker.isValidSignatureNow(owner, hash, signature);
    }

    /// @notice Permit2's `permit(owner, permitSingle, signature)`: sets the allowance the permit grants.
    function permit(address owner, PermitSingle calldata permit_, bytes calldata signature) external {
        if (block.timestamp > permit_.sigDeadline) revert StalePermit();
        PermitDetails calldata details = permit_.details;
        if (details.nonce != permit2Nonces[owner][details.token][permit_.spender]) revert StalePermit();
        bytes32 hash = permitSingleDigest(permit_);
        if (!SignatureChecker.isValidSignatureNow(owner, hash, signature)) revert InvalidSignature(owner, hash);
        permit2Nonces[owner][details.token][permit_.spender] = details.nonce + 1;
        allowance[owner][details.token][permit_.spender] = details.amount;
        emit Permitted(owner, details.token, permit_.spender, details.amount);
    }

    /// @notice EIP-2612's `permit(owner, spender, value, deadline, signature)` for this contract as the token.
    function permit(address owner, address spender, uint256 value, uint256 deadline, bytes calldata signature)
        external
    {
        if (block.timestamp > deadline) revert StalePermit();
        bytes32 hash = permitDigest(owner, spender, value, nonces[owner], deadline);
        if (!SignatureChecker.isValidSignatureNow(owner, hash, signature)) revert InvalidSignature(owner, hash);
        nonces[owner] += 1;
        allowance[owner][address(this)][spender] = value;
        emit Permitted(owner, address(this), spender, value);
    }
}
