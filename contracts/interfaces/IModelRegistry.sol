// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IModelRegistry
/// @notice Append-only registry of model versions: a version, once registered, never changes.
interface IModelRegistry {
    /// @notice One registered model version.
    /// @dev `round` counts the rounds of `taskId` that produced it (0 = the task's initial model);
    /// `parent` is the version it was trained from (0 = none); `metricsHash` addresses a metrics blob.
    struct ModelVersion {
        bytes32 modelHash;
        bytes32 metricsHash;
        uint256 parent;
        uint256 taskId;
        uint64 round;
        uint64 createdAt;
        address publisher;
        string uri;
    }

    /// @notice Emitted when version `versionId` is appended.
    event ModelVersionRegistered(
        uint256 indexed versionId,
        bytes32 indexed modelHash,
        uint256 indexed taskId,
        uint256 parent,
        uint64 round,
        address publisher
    );

    /// @notice Thrown when a version is registered without a model hash.
    error ModelRegistryZeroHash();
    /// @notice Thrown when `parent` is not a registered version (there are `count`).
    error ModelRegistryUnknownParent(uint256 parent, uint256 count);
    /// @notice Thrown when an account without VERSIONER_ROLE registers a version for a task.
    error ModelRegistryTaskVersionNotAllowed(address caller, uint256 taskId);

    /// @notice Appends a version and returns its id (ids start at 1). Versions with a non-zero
    /// `taskId` come only from accounts holding VERSIONER_ROLE (the task registry); anyone may
    /// register a service model with `taskId` 0.
    function registerVersion(
        bytes32 modelHash,
        string calldata uri,
        uint256 parent,
        uint256 taskId,
        uint64 round,
        bytes32 metricsHash
    ) external returns (uint256 versionId);

    /// @notice Version `versionId` (all zero when unknown).
    function versionOf(uint256 versionId) external view returns (ModelVersion memory);

    /// @notice How many versions exist.
    function versionCount() external view returns (uint256);
}
