// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IDeviceRegistry
/// @notice Owners (master wallets) register the micro-wallets of their IoT devices.
interface IDeviceRegistry {
    /// @notice Lifecycle of a device record.
    enum DeviceStatus {
        Unknown,
        Active,
        Revoked
    }

    /// @notice What the registry knows of one device.
    struct Device {
        address owner;
        DeviceStatus status;
        uint64 registeredAt;
        bytes publicKey;
    }

    /// @notice Emitted when `owner` registers `device` with its sealing public key.
    event DeviceRegistered(address indexed device, address indexed owner, bytes publicKey);
    /// @notice Emitted when `owner` replaces the sealing public key of `device`.
    event DeviceKeyRotated(address indexed device, address indexed owner, bytes publicKey);
    /// @notice Emitted when `owner` revokes `device`.
    event DeviceRevoked(address indexed device, address indexed owner);

    /// @notice Thrown when the device address is zero.
    error DeviceRegistryZeroAddress();
    /// @notice Thrown when a device is registered without a public key.
    error DeviceRegistryEmptyPublicKey(address device);
    /// @notice Thrown when the device already has a record (active or revoked).
    error DeviceRegistryAlreadyRegistered(address device, address owner);
    /// @notice Thrown when the consent signature was not made by the device key.
    error DeviceRegistryInvalidConsent(address device, address signer);
    /// @notice Thrown when the device has no record.
    error DeviceRegistryUnknownDevice(address device);
    /// @notice Thrown when someone other than the device's owner manages it.
    error DeviceRegistryNotDeviceOwner(address device, address owner, address caller);
    /// @notice Thrown when a revoked device is revoked again.
    error DeviceRegistryDeviceRevoked(address device);

    /// @notice Registers `device` to the caller. `consent` is the device key's EIP-191 signature
    /// of {consentDigest}, so nobody can register a wallet they do not control.
    function registerDevice(address device, bytes calldata publicKey, bytes calldata consent) external;

    /// @notice Replaces the sealing public key of one of the caller's active devices; `consent` is
    /// the device key's signature of {consentDigest} for the new key (each consent is usable once).
    function rotateKey(address device, bytes calldata publicKey, bytes calldata consent) external;

    /// @notice Revokes one of the caller's devices; what it earned stays claimable by the owner.
    function revokeDevice(address device) external;

    /// @notice The owner of `device`, or zero when unknown.
    function ownerOf(address device) external view returns (address);

    /// @notice Whether `device` is registered and not revoked.
    function isActive(address device) external view returns (bool);

    /// @notice The whole record of `device`.
    function deviceOf(address device) external view returns (Device memory);

    /// @notice Every device ever registered by `owner`, revoked ones included.
    function devicesOf(address owner) external view returns (address[] memory);

    /// @notice How many consents of `device` were used (registration and key rotations).
    function nonceOf(address device) external view returns (uint256);

    /// @notice The digest a device signs (EIP-191) to consent to registration by `owner`, or to a
    /// key rotation; it covers chain, registry, owner, device, key and the device's nonce.
    function consentDigest(address owner, address device, bytes calldata publicKey)
        external
        view
        returns (bytes32);
}
