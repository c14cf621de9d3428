// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {KeyscopeAccount} from "./KeyscopeAccount.sol";

/// @title KeyscopeAccountFactory
/// @notice Deploys {KeyscopeAccount} clones with CREATE2, so that an account's address is known before
///         it exists and the account can be created by its first UserOperation (`factory`/`factoryData`).
/// @dev The CREATE2 salt commits to the owner, the modules installed at creation and the caller's salt,
///      so nobody can deploy a different account at an address someone else predicted.
///      The factory is meant to be staked at the EntryPoint: modules installed during creation write their
///      own storage, which ERC-7562 (STO-022) allows only when the factory is staked.
contract KeyscopeAccountFactory is Ownable {
    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A new account was deployed.
    event AccountCreated(address indexed account, address indexed owner, uint256 salt);

    /*//////////////////////////////////////////////////////////////
                                STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @notice The implementation every account is a clone of.
    KeyscopeAccount public immutable accountImplementation;

    /// @notice The EntryPoint the accounts trust and this factory stakes at.
    IEntryPoint public immutable entryPoint;

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTION
    //////////////////////////////////////////////////////////////*/

    /// @param entryPoint_ The EntryPoint v0.7 the accounts will use.
    /// @param admin The address allowed to manage the factory's stake.
    constructor(IEntryPoint entryPoint_, address admin) Ownable(admin) {
        entryPoint = entryPoint_;
        accountImplementation = new KeyscopeAccount(entryPoint_);
    }

    /*//////////////////////////////////////////////////////////////
                                ACCOUNTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Deploy the account for (`owner`, `modules`, `salt`), or return it if it already exists.
    /// @dev Returns the existing account without re-initialising it, as the EntryPoint expects.
    /// @param owner The account's ECDSA owner.
    /// @param modules Modules installed while the account is initialised.
    /// @param salt Any number, to derive several accounts for one owner.
    /// @return account The account's address.
    function createAccount(address owner, KeyscopeAccount.ModuleInit[] calldata modules, uint256 salt)
        external
        returns (KeyscopeAccount account)
    {
        bytes32 create2Salt = _salt(owner, modules, salt);
        address predicted = Clones.predictDeterministicAddress(address(accountImplementation), create2Salt);
        if (predicted.code.length != 0) return KeyscopeAccount(payable(predicted));

        account = KeyscopeAccount(payable(Clones.cloneDeterministic(address(accountImplementation), create2Salt)));
        account.initialize(owner, modules);
        emit AccountCreated(address(account), owner, salt);
    }

    /// @notice The address {createAccount} deploys (or deployed) for these arguments.
    /// @param owner The account's ECDSA owner.
    /// @param modules Modules installed while the account is initialised.
    /// @param salt Any number, to derive several accounts for one owner.
    /// @return The counterfactual address of the account.
    function getAddress(address owner, KeyscopeAccount.ModuleInit[] calldata modules, uint256 salt)
        external
        view
        returns (address)
    {
        return Clones.predictDeterministicAddress(address(accountImplementation), _salt(owner, modules, salt));
    }

    /*//////////////////////////////////////////////////////////////
                                 STAKE
    //////////////////////////////////////////////////////////////*/

    /// @notice Stake the message value at the EntryPoint (ERC-7562 lets a staked factory's accounts
    ///         initialise modules during creation).
    /// @param unstakeDelaySec How long a withdrawal of the stake must wait after {unlockStake}.
    function addStake(uint32 unstakeDelaySec) external payable onlyOwner {
        entryPoint.addStake{value: msg.value}(unstakeDelaySec);
    }

    /// @notice Start the unstaking delay.
    function unlockStake() external onlyOwner {
        entryPoint.unlockStake();
    }

    /// @notice Withdraw the stake once the delay has passed.
    /// @param to Where the stake goes.
    function withdrawStake(address payable to) external onlyOwner {
        entryPoint.withdrawStake(to);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNAL
    //////////////////////////////////////////////////////////////*/

    function _salt(address owner, KeyscopeAccount.ModuleInit[] calldata modules, uint256 salt)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(owner, modules, salt));
    }
}
