// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {IERC7579Module, MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";

/// @title ForgivingUninstallAccount
/// @notice Test support: an ERC-7579 account that drops a validator whatever its `onUninstall` does, as Kernel, Nexus
///         and Safe7579 do (they ignore a failing `onUninstall`). The module's `onUninstall` gets a fixed gas
///         allowance, standing for a bundler's estimate that left it short: it fails, and the account carries on.
/// @dev OpenZeppelin's `AccountERC7579` (the owner's validator installed by the constructor, as in
///      `PlainERC7579Account`), with the validators installed later kept in a mapping of its own so that uninstalling
///      one can go on after its `onUninstall` failed.
contract ForgivingUninstallAccount is AccountERC7579 {
    IEntryPoint private immutable _entryPoint;
    uint256 private immutable _onUninstallGas;
    mapping(address module => bool) private _laterValidators;

    /// @param entryPoint_ The EntryPoint the account trusts.
    /// @param ownerValidator The validator module the owner signs through.
    /// @param ownerData Its install data (the owner's address, for OwnerECDSAValidator).
    /// @param onUninstallGas The gas a later validator's `onUninstall` is given.
    constructor(IEntryPoint entryPoint_, address ownerValidator, bytes memory ownerData, uint256 onUninstallGas) {
        _entryPoint = entryPoint_;
        _onUninstallGas = onUninstallGas;
        super._installModule(MODULE_TYPE_VALIDATOR, ownerValidator, ownerData);
    }

    /// @notice The EntryPoint this account trusts.
    function entryPoint() public view override returns (IEntryPoint) {
        return _entryPoint;
    }

    /// @notice Whether `module` is installed as `moduleTypeId`.
    function isModuleInstalled(uint256 moduleTypeId, address module, bytes calldata additionalContext)
        public
        view
        override
        returns (bool)
    {
        if (moduleTypeId == MODULE_TYPE_VALIDATOR && _laterValidators[module]) return true;
        return super.isModuleInstalled(moduleTypeId, module, additionalContext);
    }

    function _installModule(uint256 moduleTypeId, address module, bytes memory initData) internal override {
        if (moduleTypeId != MODULE_TYPE_VALIDATOR) return super._installModule(moduleTypeId, module, initData);
        require(!_laterValidators[module], "installed");
        _laterValidators[module] = true;
        IERC7579Module(module).onInstall(initData);
        emit ModuleInstalled(moduleTypeId, module);
    }

    function _uninstallModule(uint256 moduleTypeId, address module, bytes memory deInitData) internal override {
        if (moduleTypeId != MODULE_TYPE_VALIDATOR || !_laterValidators[module]) {
            return super._uninstallModule(moduleTypeId, module, deInitData);
        }
        delete _laterValidators[module];
        // the module's answer is ignored: it is dropped either way
        (bool done,) = module.call{gas: _onUninstallGas}(abi.encodeCall(IERC7579Module.onUninstall, (deInitData)));
        done;
        emit ModuleUninstalled(moduleTypeId, module);
    }
}
