// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC1363} from "@openzeppelin/contracts/token/ERC20/extensions/ERC1363.sol";
import {IERC1363Receiver} from "@openzeppelin/contracts/interfaces/IERC1363Receiver.sol";

/// @title CallbackToken
/// @notice Test-only ERC-1363 token (OpenZeppelin's): transfers and approvals followed by a call into the recipient.
contract CallbackToken is ERC1363 {
    constructor() ERC20("Callback", "CBK") {}

    /// @notice Mint `amount` to `to`.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @title AcceptingReceiver
/// @notice Test-only ERC-1363 recipient that takes every transfer (a dapp's own contract).
contract AcceptingReceiver is IERC1363Receiver {
    /// @inheritdoc IERC1363Receiver
    function onTransferReceived(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return IERC1363Receiver.onTransferReceived.selector;
    }
}
