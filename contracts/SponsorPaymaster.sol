// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Paymaster} from "@openzeppelin/contracts/account/paymaster/Paymaster.sol";
import {EIP7702Utils} from "@openzeppelin/contracts/account/utils/EIP7702Utils.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title SponsorPaymaster
/// @notice A verifying paymaster for EntryPoint v0.7 or v0.8 (one deployment per EntryPoint): it pays for every
///         UserOperation that its off-chain sponsor (the `signer` key, run by an ERC-7677 paymaster service) signed,
///         within the signed window.
/// @dev `paymasterAndData` layout (EntryPoint v0.7's, which v0.8 keeps; the paymaster-signature suffix of later
///      EntryPoints does not exist here):
///
///     bytes  0..20   paymaster address                      (read by the EntryPoint)
///     bytes 20..36   paymasterVerificationGasLimit (uint128) (read by the EntryPoint)
///     bytes 36..52   paymasterPostOpGasLimit (uint128)       (read by the EntryPoint)
///     bytes 52..58   validUntil (uint48, big-endian; 0 = no expiry)
///     bytes 58..64   validAfter (uint48, big-endian)
///     bytes 64..129  the signer's ECDSA signature r || s || v (65 bytes) of {sponsorshipHash}
///
/// so `paymasterData` (what the ERC-7677 service returns) is exactly 77 bytes: validUntil ‖ validAfter ‖
/// signature. The signature is over the EIP-712 digest of a `Sponsorship` (domain: name
/// "KeyscopeSponsorPaymaster", version "1", the chain id and this contract's address), which holds every
/// UserOperation field but the signature and paymasterData: sender, nonce, the hashes of initCode and
/// callData, accountGasLimits, preVerificationGas, gasFees, and the paymaster's own two gas limits.
///
/// initCodeHash is EntryPoint v0.8's (`Eip7702Support._getEip7702InitCodeHashOverride`): for an EIP-7702
/// account's operation, whose initCode starts with the marker (at least 2 bytes whose first 20, zero-padded,
/// are `0x7702` and 18 zero bytes), the initCode names no code: the EOA's authorization, carried beside the
/// operation in the bundle's type-4 transaction, installs whichever delegate it names. So the hash covers the
/// delegate read from the sender's code (`0xef0100 || delegate`), as the EntryPoint's userOpHash does:
/// `keccak256(delegate)` for an initCode of at most 20 bytes, `keccak256(delegate || initCode[20:])` for a longer
/// one. A signature for one delegate does not pay for an operation that installs another. Any other initCode
/// is hashed as it is: `keccak256(initCode)`.
///
/// Validation returns SIG_VALIDATION_FAILED (the EntryPoint's AA34) for a signature that does not recover to
/// `signer`, and puts the window into the validation data (AA32 outside it); it never reads the clock. It
/// reverts (AA33) only for a paymasterData that is not 77 bytes. It returns no context, so there is no
/// postOp: the sponsor pays the actual gas cost from this contract's deposit at the EntryPoint.
///
/// ERC-7562: validation reads `signer` from this contract's own storage, which bundlers allow only for a
/// staked paymaster: call {addStake} (and fund {deposit}) before use. For an EIP-7702 account's operation it
/// also reads the sender's code (EXTCODESIZE and EXTCODECOPY on the sender, through `EIP7702Utils`): the rules
/// allow `EXTCODE*` on an address with code, and on an EIP-7702 account only when it is the operation's sender,
/// which it is (its delegation is in place before validation begins). No other address is read.
contract SponsorPaymaster is Paymaster, EIP712, Ownable {
    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice EIP-712 type hash of the struct the signer signs.
    bytes32 public constant SPONSORSHIP_TYPEHASH = keccak256(
        "Sponsorship(address sender,uint256 nonce,bytes32 initCodeHash,bytes32 callDataHash,bytes32 accountGasLimits,"
        "uint256 preVerificationGas,bytes32 gasFees,uint128 paymasterVerificationGasLimit,"
        "uint128 paymasterPostOpGasLimit,uint48 validUntil,uint48 validAfter)"
    );

    /// @notice Length of `paymasterData`: validUntil (6) + validAfter (6) + signature (65).
    uint256 public constant PAYMASTER_DATA_LENGTH = 77;

    /// @dev Where `paymasterData` starts in `paymasterAndData` (after address and the two gas limits).
    uint256 private constant _PAYMASTER_DATA_OFFSET = 52;

    /// @dev validationData's low 160 bits for a failed signature.
    uint256 private constant _SIG_VALIDATION_FAILED = 1;

    /// @dev The first 20 bytes of an EIP-7702 account's initCode (EntryPoint v0.8): `0x7702`, zero-padded.
    bytes20 private constant _EIP7702_MARKER = bytes20(bytes2(0x7702));

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    IEntryPoint private immutable _entryPoint;

    /// @notice The key whose signatures this paymaster honours.
    address public signer;

    /*//////////////////////////////////////////////////////////////
                             EVENTS AND ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The sponsor's signing key changed.
    event SignerChanged(address indexed previousSigner, address indexed newSigner);

    /// @notice `paymasterAndData` does not hold the 77-byte paymasterData this paymaster reads.
    /// @param length The length of paymasterAndData that was given.
    /// @param expected The length this paymaster needs (52 + 77).
    error InvalidPaymasterDataLength(uint256 length, uint256 expected);

    /// @notice The zero address cannot be the signer (ecrecover returns it for malformed signatures).
    error ZeroSigner();

    /// @notice The operation's initCode starts with the EIP-7702 marker, but its sender's code is no EIP-7702
    ///         delegation (`0xef0100 || delegate`), so there is no delegate to hash. EntryPoint v0.8 refuses
    ///         such an operation before any paymaster sees it.
    /// @param sender The operation's sender.
    error SenderNotEip7702Delegated(address sender);

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTION
    //////////////////////////////////////////////////////////////*/

    /// @param entryPoint_ The EntryPoint (v0.7 or v0.8) this paymaster serves.
    /// @param owner_ Who may change the signer and move the deposit and stake.
    /// @param signer_ The sponsor's signing key.
    constructor(IEntryPoint entryPoint_, address owner_, address signer_)
        EIP712("KeyscopeSponsorPaymaster", "1")
        Ownable(owner_)
    {
        _entryPoint = entryPoint_;
        _setSigner(signer_);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The EntryPoint this paymaster serves (only it may call validatePaymasterUserOp and postOp).
    /// @return The EntryPoint.
    function entryPoint() public view override returns (IEntryPoint) {
        return _entryPoint;
    }

    /// @notice The digest the signer signs to sponsor `userOp` between `validAfter` and `validUntil`.
    /// @dev Reads the paymaster gas limits from `userOp.paymasterAndData`; ignores the signature and
    ///      paymasterData. For an initCode starting with the EIP-7702 marker the initCodeHash covers the delegate
    ///      read from the sender's code (see the contract's documentation), so the sender must be delegated
    ///      already when this is called (reverts with {SenderNotEip7702Delegated} otherwise).
    /// @param userOp The operation (its paymasterAndData needs at least the first 52 bytes).
    /// @param validUntil Last second the sponsorship is valid (0: no expiry).
    /// @param validAfter First second the sponsorship is valid.
    /// @return The EIP-712 digest.
    function sponsorshipHash(PackedUserOperation calldata userOp, uint48 validUntil, uint48 validAfter)
        public
        view
        returns (bytes32)
    {
        bytes calldata pad = userOp.paymasterAndData;
        if (pad.length < _PAYMASTER_DATA_OFFSET) {
            revert InvalidPaymasterDataLength(pad.length, _PAYMASTER_DATA_OFFSET + PAYMASTER_DATA_LENGTH);
        }
        bytes32 structHash = keccak256(
            abi.encode(
                SPONSORSHIP_TYPEHASH,
                userOp.sender,
                userOp.nonce,
                _initCodeHash(userOp),
                keccak256(userOp.callData),
                userOp.accountGasLimits,
                userOp.preVerificationGas,
                userOp.gasFees,
                uint128(bytes16(pad[20:36])),
                uint128(bytes16(pad[36:52])),
                validUntil,
                validAfter
            )
        );
        return _hashTypedDataV4(structHash);
    }

    /// @notice Split `paymasterAndData` into the window and the signature.
    /// @param paymasterAndData The UserOperation's paymasterAndData (exactly 52 + 77 bytes).
    /// @return validUntil Last second the sponsorship is valid (0: no expiry).
    /// @return validAfter First second the sponsorship is valid.
    /// @return signature The signer's 65-byte signature.
    function parsePaymasterAndData(bytes calldata paymasterAndData)
        public
        pure
        returns (uint48 validUntil, uint48 validAfter, bytes calldata signature)
    {
        uint256 expected = _PAYMASTER_DATA_OFFSET + PAYMASTER_DATA_LENGTH;
        if (paymasterAndData.length != expected) {
            revert InvalidPaymasterDataLength(paymasterAndData.length, expected);
        }
        validUntil = uint48(bytes6(paymasterAndData[52:58]));
        validAfter = uint48(bytes6(paymasterAndData[58:64]));
        signature = paymasterAndData[64:];
    }

    /// @notice This paymaster's deposit at the EntryPoint, which pays for sponsored operations.
    /// @return The deposit in wei.
    function getDeposit() external view returns (uint256) {
        return _entryPoint.balanceOf(address(this));
    }

    /*//////////////////////////////////////////////////////////////
                              ADMINISTRATION
    //////////////////////////////////////////////////////////////*/

    /// @notice Replace the sponsor's signing key; signatures of the previous key stop being honoured.
    /// @param newSigner The new key (not zero).
    function setSigner(address newSigner) external onlyOwner {
        _setSigner(newSigner);
    }

    /// @notice Add the ETH sent to this paymaster's deposit at the EntryPoint (anyone may fund it).
    function deposit() external payable {
        _deposit(msg.value);
    }

    /// @notice Withdraw from the deposit.
    /// @param to Where the ETH goes.
    /// @param amount How much, in wei.
    function withdrawTo(address payable to, uint256 amount) external onlyOwner {
        _withdraw(to, amount);
    }

    /// @notice Stake the ETH sent at the EntryPoint (or add to the stake), locked for `unstakeDelaySec`.
    /// @param unstakeDelaySec Seconds between unlockStake and withdrawStake (not lower than before).
    function addStake(uint32 unstakeDelaySec) external payable onlyOwner {
        _addStake(msg.value, unstakeDelaySec);
    }

    /// @notice Start the unstake delay; the paymaster counts as unstaked from now on.
    function unlockStake() external onlyOwner {
        _unlockStake();
    }

    /// @notice Withdraw the whole stake once the unstake delay has passed.
    /// @param to Where the ETH goes.
    function withdrawStake(address payable to) external onlyOwner {
        _withdrawStake(to);
    }

    /*//////////////////////////////////////////////////////////////
                               VALIDATION
    //////////////////////////////////////////////////////////////*/

    /// @dev Signature check as described above; no context, so the EntryPoint skips postOp.
    function _validatePaymasterUserOp(
        PackedUserOperation calldata userOp,
        bytes32, /* userOpHash */
        uint256 /* requiredPreFund */
    ) internal view override returns (bytes memory context, uint256 validationData) {
        (uint48 validUntil, uint48 validAfter, bytes calldata signature) =
            parsePaymasterAndData(userOp.paymasterAndData);
        bytes32 digest = sponsorshipHash(userOp, validUntil, validAfter);
        (address recovered, ECDSA.RecoverError recoverError,) = ECDSA.tryRecover(digest, signature);
        bool valid = recoverError == ECDSA.RecoverError.NoError && recovered == signer;
        validationData = (valid ? 0 : _SIG_VALIDATION_FAILED) | (uint256(validUntil) << 160)
            | (uint256(validAfter) << 208);
        return ("", validationData);
    }

    /// @dev EntryPoint v0.8's initCode hash (`Eip7702Support`): for the EIP-7702 marker, the delegate installed in
    ///      the sender (followed by the initCode's bytes after the first 20); otherwise the initCode's keccak256.
    ///      The marker test converts the initCode to bytes20, which zero-pads a shorter one, as the EntryPoint's
    ///      calldataload of ABI-encoded (zero-padded) calldata does.
    function _initCodeHash(PackedUserOperation calldata userOp) private view returns (bytes32) {
        bytes calldata initCode = userOp.initCode;
        if (initCode.length < 2 || bytes20(initCode) != _EIP7702_MARKER) return keccak256(initCode);
        address delegate = EIP7702Utils.fetchDelegate(userOp.sender);
        if (delegate == address(0)) revert SenderNotEip7702Delegated(userOp.sender);
        return initCode.length <= 20
            ? keccak256(abi.encodePacked(delegate))
            : keccak256(abi.encodePacked(delegate, initCode[20:]));
    }

    function _setSigner(address newSigner) private {
        if (newSigner == address(0)) revert ZeroSigner();
        emit SignerChanged(signer, newSigner);
        signer = newSigner;
    }
}
