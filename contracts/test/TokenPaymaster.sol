// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Paymaster} from "@openzeppelin/contracts/account/paymaster/Paymaster.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ERC4337Utils} from "@openzeppelin/contracts/account/utils/ERC4337Utils.sol";

/// @title TokenPaymaster
/// @notice Test-only victim: an ERC-20 paymaster for EntryPoint v0.7 that pays an operation's gas from its deposit
///         and charges the account in its token in `postOp`, as token paymasters do: the account approved it
///         once, and every operation naming it then costs the account `(actualGasCost + POST_OP_GAS ×
///         actualUserOpFeePerGas) × tokensPerWei` tokens. Whoever chooses the operation's gas limits and fees
///         chooses that charge, up to the prefund the EntryPoint allows.
/// @dev `paymasterAndData` = paymaster (20) ‖ verification gas limit (16) ‖ postOp gas limit (16); no data.
///      Validation reads only the account's token balance (storage associated with the account, ERC-7562) and
///      returns the account as context, which bundlers accept from a staked paymaster.
contract TokenPaymaster is Paymaster {
    using SafeERC20 for IERC20;

    /// @notice The gas postOp adds to the charge (its own transfer).
    uint256 public constant POST_OP_GAS = 40_000;

    IEntryPoint private immutable _entryPoint;

    /// @notice The token the account pays in.
    IERC20 public immutable token;

    /// @notice Token units charged per wei of gas cost (18 decimals: 1e18 is one token per wei).
    uint256 public immutable tokensPerWei;

    /// @notice Where the charged tokens go.
    address public immutable treasury;

    /// @notice The account's token balance cannot cover the operation's most expensive case.
    error InsufficientTokens(address account, uint256 balance, uint256 needed);

    /// @notice `account` paid `tokens` for an operation that cost `actualGasCost` wei.
    event Charged(address indexed account, uint256 actualGasCost, uint256 tokens);

    constructor(IEntryPoint entryPoint_, IERC20 token_, uint256 tokensPerWei_, address treasury_) {
        _entryPoint = entryPoint_;
        token = token_;
        tokensPerWei = tokensPerWei_;
        treasury = treasury_;
    }

    /// @notice The EntryPoint this paymaster serves.
    function entryPoint() public view override returns (IEntryPoint) {
        return _entryPoint;
    }

    /// @notice Deposit the caller's ETH at the EntryPoint for this paymaster.
    function deposit() external payable {
        _deposit(msg.value);
    }

    /// @notice Stake at the EntryPoint (bundlers require it of a paymaster returning a context).
    function addStake(uint32 unstakeDelaySec) external payable {
        _addStake(msg.value, unstakeDelaySec);
    }

    /// @notice The tokens `costWei` of gas costs.
    function tokensFor(uint256 costWei) public view returns (uint256) {
        return costWei * tokensPerWei / 1e18;
    }

    function _validatePaymasterUserOp(PackedUserOperation calldata userOp, bytes32, uint256 requiredPreFund)
        internal
        view
        override
        returns (bytes memory context, uint256 validationData)
    {
        address account = userOp.sender;
        uint256 needed = tokensFor(requiredPreFund + POST_OP_GAS * ERC4337Utils.maxFeePerGas(userOp));
        uint256 balance = token.balanceOf(account);
        if (balance < needed) revert InsufficientTokens(account, balance, needed);
        return (abi.encode(account), 0);
    }

    function _postOp(PostOpMode, bytes calldata context, uint256 actualGasCost, uint256 actualUserOpFeePerGas)
        internal
        override
    {
        address account = abi.decode(context, (address));
        uint256 tokens = tokensFor(actualGasCost + POST_OP_GAS * actualUserOpFeePerGas);
        token.safeTransferFrom(account, treasury, tokens);
        emit Charged(account, actualGasCost, tokens);
    }
}
