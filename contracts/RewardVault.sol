// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";

/// @title RewardVault
/// @notice Holds device rewards until the device or its owner pulls them.
/// Solvency: the vault's ETH balance always equals {totalOwed}.
contract RewardVault is IRewardVault, AccessControl, ReentrancyGuard {
    /// @notice Role of the contracts allowed to credit rewards.
    bytes32 public constant CREDITOR_ROLE = keccak256("CREDITOR_ROLE");

    IDeviceRegistry private immutable _registry;
    mapping(address device => uint256) private _balances;
    uint256 private _totalOwed;

    constructor(address admin, IDeviceRegistry registry) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _registry = registry;
    }

    /// @inheritdoc IRewardVault
    function credit(address[] calldata devices, uint256[] calldata amounts)
        external
        payable
        onlyRole(CREDITOR_ROLE)
    {
        if (devices.length != amounts.length) revert RewardVaultLengthMismatch(devices.length, amounts.length);
        uint256 sum = 0;
        for (uint256 i; i < devices.length; ++i) {
            sum += amounts[i];
        }
        if (sum != msg.value) revert RewardVaultValueMismatch(sum, msg.value);
        for (uint256 i; i < devices.length; ++i) {
            if (devices[i] == address(0)) revert RewardVaultZeroAddress();
            _balances[devices[i]] += amounts[i];
            emit RewardCredited(devices[i], msg.sender, amounts[i]);
        }
        _totalOwed += sum;
    }

    /// @inheritdoc IRewardVault
    function withdraw() external nonReentrant returns (uint256 amount) {
        amount = _debit(msg.sender, msg.sender);
        if (amount == 0) revert RewardVaultNothingToWithdraw(msg.sender);
        _send(msg.sender, amount);
    }

    /// @inheritdoc IRewardVault
    function claim(address[] calldata devices) external nonReentrant returns (uint256 amount) {
        for (uint256 i; i < devices.length; ++i) {
            address owner = _registry.ownerOf(devices[i]);
            if (owner != msg.sender) revert RewardVaultNotDeviceOwner(devices[i], owner, msg.sender);
            amount += _debit(devices[i], msg.sender);
        }
        if (amount == 0) revert RewardVaultNothingToWithdraw(msg.sender);
        _send(msg.sender, amount);
    }

    /// @inheritdoc IRewardVault
    function balanceOf(address device) external view returns (uint256) {
        return _balances[device];
    }

    /// @inheritdoc IRewardVault
    function totalOwed() external view returns (uint256) {
        return _totalOwed;
    }

    /// @dev Zeroes `device`'s balance before any ETH moves (checks-effects-interactions).
    function _debit(address device, address to) private returns (uint256 amount) {
        amount = _balances[device];
        if (amount == 0) return 0;
        _balances[device] = 0;
        _totalOwed -= amount;
        emit RewardWithdrawn(device, to, amount);
    }

    /// @dev `to` is always the caller, paid only what was just debited from its own balances.
    function _send(address to, uint256 amount) private {
        // slither-disable-next-line arbitrary-send-eth,low-level-calls
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert RewardVaultTransferFailed(to, amount);
    }
}
