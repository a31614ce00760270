// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";

/// @title DeviceRegistry
/// @notice Maps device micro-wallets to the master wallet that owns them.
contract DeviceRegistry is IDeviceRegistry {
    /// @dev Domain tag of the consent digest.
    bytes32 private constant _CONSENT_TAG = keccak256("fedshare.DeviceRegistry.consent.v1");

    mapping(address device => Device) private _devices;
    mapping(address owner => address[] devices) private _devicesByOwner;
    mapping(address device => uint256) private _nonces;

    /// @inheritdoc IDeviceRegistry
    function registerDevice(address device, bytes calldata publicKey, bytes calldata consent) external {
        if (device == address(0)) revert DeviceRegistryZeroAddress();
        if (publicKey.length == 0) revert DeviceRegistryEmptyPublicKey(device);
        Device storage record = _devices[device];
        if (record.status != DeviceStatus.Unknown) {
            revert DeviceRegistryAlreadyRegistered(device, record.owner);
        }
        _useConsent(device, publicKey, consent);
        record.owner = msg.sender;
        record.status = DeviceStatus.Active;
        record.registeredAt = uint64(block.timestamp);
        record.publicKey = publicKey;
        _devicesByOwner[msg.sender].push(device);
        emit DeviceRegistered(device, msg.sender, publicKey);
    }

    /// @inheritdoc IDeviceRegistry
    function rotateKey(address device, bytes calldata publicKey, bytes calldata consent) external {
        Device storage record = _ownedActive(device);
        if (publicKey.length == 0) revert DeviceRegistryEmptyPublicKey(device);
        _useConsent(device, publicKey, consent);
        record.publicKey = publicKey;
        emit DeviceKeyRotated(device, msg.sender, publicKey);
    }

    /// @inheritdoc IDeviceRegistry
    function revokeDevice(address device) external {
        Device storage record = _ownedActive(device);
        record.status = DeviceStatus.Revoked;
        emit DeviceRevoked(device, msg.sender);
    }

    /// @inheritdoc IDeviceRegistry
    function nonceOf(address device) external view returns (uint256) {
        return _nonces[device];
    }

    /// @inheritdoc IDeviceRegistry
    function ownerOf(address device) external view returns (address) {
        return _devices[device].owner;
    }

    /// @inheritdoc IDeviceRegistry
    function isActive(address device) external view returns (bool) {
        // An enum comparison; Slither mistakes it for a timestamp-dependent equality.
        // slither-disable-next-line incorrect-equality,timestamp
        return _devices[device].status == DeviceStatus.Active;
    }

    /// @inheritdoc IDeviceRegistry
    function deviceOf(address device) external view returns (Device memory) {
        return _devices[device];
    }

    /// @inheritdoc IDeviceRegistry
    function devicesOf(address owner) external view returns (address[] memory) {
        return _devicesByOwner[owner];
    }

    /// @inheritdoc IDeviceRegistry
    function consentDigest(address owner, address device, bytes calldata publicKey)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(_CONSENT_TAG, block.chainid, address(this), owner, device, keccak256(publicKey), _nonces[device])
        );
    }

    /// @dev The caller's active device record, or the error that says why not.
    function _ownedActive(address device) private view returns (Device storage record) {
        record = _devices[device];
        if (record.status == DeviceStatus.Unknown) revert DeviceRegistryUnknownDevice(device);
        if (record.owner != msg.sender) revert DeviceRegistryNotDeviceOwner(device, record.owner, msg.sender);
        if (record.status == DeviceStatus.Revoked) revert DeviceRegistryDeviceRevoked(device);
    }

    /// @dev Checks the device's signature of the consent digest and spends its nonce,
    /// so the same signature cannot be replayed.
    function _useConsent(address device, bytes calldata publicKey, bytes calldata consent) private {
        bytes32 digest = MessageHashUtils.toEthSignedMessageHash(consentDigest(msg.sender, device, publicKey));
        // The third value only details a failure already reported by `failure`.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError failure,) = ECDSA.tryRecover(digest, consent);
        if (failure != ECDSA.RecoverError.NoError || signer != device) {
            revert DeviceRegistryInvalidConsent(device, signer);
        }
        _nonces[device] += 1;
    }
}
