// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title CalldataVault
/// @notice Test-only victim: a vault whose fallback acts on its calldata, as minimal proxies, command routers and
///         compact-encoding vaults do. A plain transfer deposits for the sender; calldata of the form
///         `0x00000000 ‖ abi.encode(address to, uint256 amount)` withdraws `amount` of the sender's deposit to `to`.
///         A permission meant for plain transfers (selector 0x00000000) must therefore never let calldata through.
contract CalldataVault {
    /// @notice What each depositor holds in the vault (wei).
    mapping(address depositor => uint256) public deposits;

    /// @notice `depositor` deposited `amount` wei.
    event Deposited(address indexed depositor, uint256 amount);

    /// @notice `amount` wei of `depositor`'s deposit went to `to`.
    event Withdrawn(address indexed depositor, address indexed to, uint256 amount);

    /// @notice The sender's deposit is smaller than the amount asked for.
    error InsufficientDeposit(uint256 deposit, uint256 amount);

    /// @notice The calldata is neither empty nor a withdrawal command.
    error UnknownCommand();

    /// @notice A plain transfer deposits it for the sender.
    receive() external payable {
        deposits[msg.sender] += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice `0x00000000 ‖ abi.encode(to, amount)`: withdraw `amount` of the sender's deposit to `to`.
    fallback() external payable {
        if (msg.data.length != 68 || bytes4(msg.data[:4]) != 0) revert UnknownCommand();
        (address to, uint256 amount) = abi.decode(msg.data[4:], (address, uint256));
        uint256 deposit = deposits[msg.sender] + msg.value;
        if (amount > deposit) revert InsufficientDeposit(deposit, amount);
        deposits[msg.sender] = deposit - amount;
        emit Withdrawn(msg.sender, to, amount);
        (bool sent,) = payable(to).call{value: amount}("");
        require(sent);
    }
}
