// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IRewardVault
/// @notice Pull-payment reward balances of device micro-wallets.
interface IRewardVault {
    /// @notice Emitted when `payer` credits `amount` wei to `device`.
    event RewardCredited(address indexed device, address indexed payer, uint256 amount);
    /// @notice Emitted when `device`'s balance of `amount` wei is paid out to `to`.
    event RewardWithdrawn(address indexed device, address indexed to, uint256 amount);

    /// @notice Thrown when the device and amount lists differ in length.
    error RewardVaultLengthMismatch(uint256 devices, uint256 amounts);
    /// @notice Thrown when the value sent is not the sum of the credited amounts.
    error RewardVaultValueMismatch(uint256 expected, uint256 sent);
    /// @notice Thrown when a zero address is credited.
    error RewardVaultZeroAddress();
    /// @notice Thrown when there is nothing to pay out to `account`.
    error RewardVaultNothingToWithdraw(address account);
    /// @notice Thrown when `caller` claims for a device it does not own.
    error RewardVaultNotDeviceOwner(address device, address owner, address caller);
    /// @notice Thrown when sending `amount` wei to `to` failed.
    error RewardVaultTransferFailed(address to, uint256 amount);

    /// @notice Credits `amounts[i]` wei to `devices[i]`; `msg.value` must equal their sum.
    /// @dev Only accounts holding CREDITOR_ROLE (the task registry) may credit.
    function credit(address[] calldata devices, uint256[] calldata amounts) external payable;

    /// @notice Pays the caller's (a device's) whole balance to itself.
    function withdraw() external returns (uint256 amount);

    /// @notice Pays the balances of the caller's `devices` to the caller (their owner) in one call.
    function claim(address[] calldata devices) external returns (uint256 amount);

    /// @notice The unclaimed balance of `device`.
    function balanceOf(address device) external view returns (uint256);

    /// @notice The sum of all unclaimed balances; always equal to the vault's ETH balance.
    function totalOwed() external view returns (uint256);
}
