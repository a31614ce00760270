// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";

/// @title ModelRegistry
/// @notice Model versions, append-only: there is no function that changes a stored version.
contract ModelRegistry is IModelRegistry, AccessControl {
    /// @notice Role of the contracts that register task models (the task registry).
    bytes32 public constant VERSIONER_ROLE = keccak256("VERSIONER_ROLE");

    ModelVersion[] private _versions;

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IModelRegistry
    function registerVersion(
        bytes32 modelHash,
        string calldata uri,
        uint256 parent,
        uint256 taskId,
        uint64 round,
        bytes32 metricsHash
    ) external returns (uint256 versionId) {
        if (modelHash == bytes32(0)) revert ModelRegistryZeroHash();
        if (parent > _versions.length) revert ModelRegistryUnknownParent(parent, _versions.length);
        if (taskId != 0 && !hasRole(VERSIONER_ROLE, msg.sender)) {
            revert ModelRegistryTaskVersionNotAllowed(msg.sender, taskId);
        }
        _versions.push(
            ModelVersion({
                modelHash: modelHash,
                metricsHash: metricsHash,
                parent: parent,
                taskId: taskId,
                round: round,
                createdAt: uint64(block.timestamp),
                publisher: msg.sender,
                uri: uri
            })
        );
        versionId = _versions.length;
        emit ModelVersionRegistered(versionId, modelHash, taskId, parent, round, msg.sender);
    }

    /// @inheritdoc IModelRegistry
    function versionOf(uint256 versionId) external view returns (ModelVersion memory version) {
        if (versionId == 0 || versionId > _versions.length) return version;
        return _versions[versionId - 1];
    }

    /// @inheritdoc IModelRegistry
    function versionCount() external view returns (uint256) {
        return _versions.length;
    }
}
