// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";
import {ITaskRegistry} from "./interfaces/ITaskRegistry.sol";
import {Quality} from "./libraries/Quality.sol";
import {TaskSettlement} from "./libraries/TaskSettlement.sol";

/// @title TaskRegistry
/// @notice Learning tasks: escrow, participants, three-phase rounds, proof of quality and rewards.
/// Solvency: the contract's ETH balance always equals {totalHeld} (escrow + refunds owed).
/// @dev Each task's storage is a {TaskSettlement.Task}; rounds are settled by the linked
/// {TaskSettlement} library, which runs on this contract's storage (DELEGATECALL).
contract TaskRegistry is ITaskRegistry, ReentrancyGuard {
    using TaskSettlement for TaskSettlement.Task;

    /// @notice Upper bound on a task's participants; bounds every loop of a transaction.
    uint16 public constant MAX_PARTICIPANTS = TaskSettlement.MAX_PARTICIPANTS;
    /// @notice Longest phase or grace period; keeps every deadline far from uint64 overflow.
    uint64 public constant MAX_PHASE_DURATION = 365 days;
    /// @notice Most verifiers per update: bounds the scores a reveal stores and the sorting work
    /// of finalisation (64 participants x 16 scores stays far below the block gas limit).
    uint256 public constant MAX_VERIFIERS = 16;
    /// @notice Longest allow-list accepted at publication.
    uint256 public constant MAX_ALLOW_LIST = 256;

    IDeviceRegistry private immutable _devices;
    IRewardVault private immutable _vault;
    IModelRegistry private immutable _models;

    uint256 private _taskCount;
    uint256 private _totalEscrow;
    uint256 private _totalRefunds;
    mapping(uint256 taskId => TaskSettlement.Task) private _tasks;
    mapping(address requester => uint256) private _refunds;

    constructor(IDeviceRegistry devices, IRewardVault vault, IModelRegistry models) {
        _devices = devices;
        _vault = vault;
        _models = models;
    }

    // ------------------------------------------------------------------ task lifecycle

    /// @inheritdoc ITaskRegistry
    function publishTask(TaskParams calldata p, address aggregator, address[] calldata allowList)
        external
        payable
        returns (uint256 taskId)
    {
        _validate(p, allowList.length);
        uint256 escrow = uint256(p.rounds) * p.rewardPerRound;
        if (msg.value != escrow) revert TaskRegistryWrongEscrow(escrow, msg.value);

        taskId = ++_taskCount;
        TaskSettlement.Task storage task = _tasks[taskId];
        task.params = p;
        TaskState storage t = task.state;
        t.requester = msg.sender;
        t.status = TaskStatus.Open;
        t.lastProgressAt = uint64(block.timestamp);
        t.escrow = escrow;
        t.currentModel = p.modelHash;
        t.restricted = allowList.length > 0;
        for (uint256 i; i < allowList.length; ++i) {
            if (allowList[i] == address(0)) revert TaskRegistryZeroAddress();
            task.allowed[allowList[i]] = true;
        }
        _totalEscrow += escrow;
        // The registry numbers versions 1, 2, 3...: the id is known before the call, so every
        // state change happens before it.
        t.modelVersion = _models.versionCount() + 1;
        emit TaskPublished(taskId, msg.sender, aggregator, escrow, p, allowList);
        if (aggregator != address(0)) _setAggregator(taskId, aggregator);
        uint256 registered = _models.registerVersion(p.modelHash, "", 0, taskId, 0, bytes32(0));
        // slither-disable-next-line incorrect-equality
        assert(registered == t.modelVersion);
    }

    /// @inheritdoc ITaskRegistry
    function setAggregator(uint256 taskId, address aggregator) external {
        TaskState storage t = _liveTask(taskId).state;
        if (msg.sender != t.requester) revert TaskRegistryNotRequester(taskId, msg.sender);
        if (aggregator == address(0)) revert TaskRegistryZeroAddress();
        _setAggregator(taskId, aggregator);
    }

    /// @inheritdoc ITaskRegistry
    function join(uint256 taskId) external {
        TaskSettlement.Task storage task = _liveTask(taskId);
        if (!_devices.isActive(msg.sender)) revert TaskRegistryDeviceNotActive(msg.sender);
        if (!isAllowed(taskId, msg.sender)) revert TaskRegistryNotAllowed(taskId, msg.sender);
        MemberStatus status = task.members[msg.sender];
        if (status != MemberStatus.None) revert TaskRegistryAlreadyJoined(taskId, msg.sender, status);
        bool waiting = task.state.roundsOpened > 0 || task.active.length >= task.params.maxParticipants;
        if (waiting) {
            task.members[msg.sender] = MemberStatus.Waiting;
            task.waiting.push(msg.sender);
        } else {
            task.members[msg.sender] = MemberStatus.Active;
            task.active.push(msg.sender);
            // Gathering participants is progress: the stall clock restarts.
            task.state.lastProgressAt = uint64(block.timestamp);
        }
        emit DeviceJoined(taskId, msg.sender, waiting);
    }

    /// @inheritdoc ITaskRegistry
    function cancelTask(uint256 taskId) external {
        TaskSettlement.Task storage task = _liveTask(taskId);
        TaskState storage t = task.state;
        TaskParams storage p = task.params;
        uint256 stalledAfter = uint256(t.lastProgressAt) + p.trainDuration + p.verifyDuration + p.revealDuration
            + p.gracePeriod;
        bool idle = t.roundsOpened == 0 || task.rounds[t.roundsOpened - 1].info.stage == RoundStage.Closed;
        bool requesterMay = msg.sender == t.requester && idle;
        // Before the first round, a task only stalls once enough devices wait for the aggregator.
        bool started = t.roundsOpened > 0 || task.active.length >= p.minParticipants;
        bool anyoneMay = started && block.timestamp > stalledAfter;
        if (!requesterMay && !anyoneMay) revert TaskRegistryCannotCancel(taskId, msg.sender, stalledAfter);
        t.status = TaskStatus.Cancelled;
        emit TaskCancelled(taskId, msg.sender, _releaseEscrow(t));
    }

    /// @inheritdoc ITaskRegistry
    function withdrawRefund() external nonReentrant returns (uint256 amount) {
        amount = _refunds[msg.sender];
        if (amount == 0) revert TaskRegistryNothingToRefund(msg.sender);
        // Effects before the call: a reentrant caller finds its refund already spent.
        _refunds[msg.sender] = 0;
        _totalRefunds -= amount;
        emit RefundWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TaskRegistryTransferFailed(msg.sender, amount);
    }

    // ------------------------------------------------------------------ rounds

    /// @inheritdoc ITaskRegistry
    function openRound(uint256 taskId, bytes32 globalModelHash) external {
        TaskSettlement.Task storage task = _liveTask(taskId);
        TaskState storage t = task.state;
        if (msg.sender != t.aggregator) revert TaskRegistryNotAggregator(taskId, msg.sender);
        uint64 round = t.roundsOpened;
        if (round > 0) {
            RoundStage previous = task.rounds[round - 1].info.stage;
            if (previous != RoundStage.Closed) revert TaskRegistryRoundInProgress(taskId, round - 1, previous);
        }
        TaskParams storage p = task.params;
        _fillFromWaiting(task);
        address[] storage members = task.active;
        if (members.length < p.minParticipants) {
            revert TaskRegistryNotEnoughParticipants(taskId, members.length, p.minParticipants);
        }
        if (globalModelHash != t.currentModel) revert TaskRegistryModelMismatch(taskId, t.currentModel, globalModelHash);

        RoundInfo storage r = task.rounds[round].info;
        r.stage = RoundStage.Open;
        r.commitDeadline = uint64(block.timestamp) + p.trainDuration;
        r.verifyDeadline = r.commitDeadline + p.verifyDuration;
        r.revealDeadline = r.verifyDeadline + p.revealDuration;
        r.participants = uint16(members.length);
        r.assignmentSize = uint16(Quality.assignmentSize(members.length, p.verifiersPerUpdate));
        // Fresh randomness per round decides who verifies whom when not everyone verifies everyone.
        r.assignmentOffset = uint32(uint256(keccak256(abi.encode(block.prevrandao, taskId, round))));
        r.globalModelHash = globalModelHash;
        t.roundsOpened = round + 1;
        t.status = TaskStatus.Running;
        t.lastProgressAt = uint64(block.timestamp);
        emit RoundOpened(
            taskId,
            round,
            globalModelHash,
            r.commitDeadline,
            r.verifyDeadline,
            r.revealDeadline,
            r.assignmentSize,
            r.assignmentOffset,
            members
        );
    }

    /// @inheritdoc ITaskRegistry
    function commitUpdate(uint256 taskId, uint64 round, bytes32 updateHash, uint64 epsilon) external {
        (TaskSettlement.Task storage task, TaskSettlement.Round storage rs) = _round(taskId, round, RoundStage.Open);
        RoundInfo storage r = rs.info;
        _requireParticipant(task, taskId, msg.sender);
        if (block.timestamp > r.commitDeadline) {
            revert TaskRegistryCommitTooLate(taskId, round, r.commitDeadline, block.timestamp);
        }
        if (updateHash == bytes32(0)) revert TaskRegistryZeroHash();
        Submission storage s = rs.submissions[msg.sender];
        if (s.updateHash != bytes32(0)) revert TaskRegistryAlreadyCommitted(taskId, round, msg.sender);
        uint64 recorded = task.epsilon[msg.sender];
        if (epsilon < recorded) revert TaskRegistryEpsilonDecreased(taskId, msg.sender, recorded, epsilon);
        uint64 budget = task.params.epsilonBudget;
        if (epsilon > budget) revert TaskRegistryPrivacyBudgetExceeded(taskId, msg.sender, epsilon, budget);
        task.epsilon[msg.sender] = epsilon;
        s.updateHash = updateHash;
        s.epsilon = epsilon;
        r.committed += 1;
        emit UpdateCommitted(taskId, round, msg.sender, updateHash, epsilon);
    }

    /// @inheritdoc ITaskRegistry
    function commitScores(uint256 taskId, uint64 round, bytes32 commitment) external {
        (TaskSettlement.Task storage task, TaskSettlement.Round storage rs) = _round(taskId, round, RoundStage.Open);
        RoundInfo storage r = rs.info;
        _requireParticipant(task, taskId, msg.sender);
        if (!_commitsClosed(r)) revert TaskRegistryPhaseNotOpen(taskId, round, r.commitDeadline, block.timestamp);
        if (block.timestamp > r.verifyDeadline) {
            revert TaskRegistryPhaseClosed(taskId, round, r.verifyDeadline, block.timestamp);
        }
        Submission storage s = rs.submissions[msg.sender];
        if (s.updateHash == bytes32(0)) revert TaskRegistryNotCommitted(taskId, round, msg.sender);
        if (s.scoreCommitment != bytes32(0)) revert TaskRegistryAlreadyScored(taskId, round, msg.sender);
        if (commitment == bytes32(0)) revert TaskRegistryZeroHash();
        s.scoreCommitment = commitment;
        r.scoreCommitted += 1;
        emit ScoresCommitted(taskId, round, msg.sender, commitment);
    }

    /// @inheritdoc ITaskRegistry
    function revealScores(uint256 taskId, uint64 round, uint16[] calldata scores, bytes32 salt) external {
        (TaskSettlement.Task storage task, TaskSettlement.Round storage rs) = _round(taskId, round, RoundStage.Open);
        RoundInfo storage r = rs.info;
        _requireParticipant(task, taskId, msg.sender);
        if (!_verifyClosed(r)) revert TaskRegistryPhaseNotOpen(taskId, round, r.verifyDeadline, block.timestamp);
        if (block.timestamp > r.revealDeadline) {
            revert TaskRegistryPhaseClosed(taskId, round, r.revealDeadline, block.timestamp);
        }
        Submission storage s = rs.submissions[msg.sender];
        if (s.scoreCommitment == bytes32(0)) revert TaskRegistryNoScoreCommitment(taskId, round, msg.sender);
        if (s.revealed) revert TaskRegistryAlreadyRevealed(taskId, round, msg.sender);
        bytes32 computed = scoreCommitment(taskId, round, scores, salt, msg.sender);
        if (computed != s.scoreCommitment) {
            revert TaskRegistryRevealMismatch(taskId, round, msg.sender, s.scoreCommitment, computed);
        }
        if (scores.length != r.assignmentSize) {
            revert TaskRegistryScoreCountMismatch(taskId, round, r.assignmentSize, scores.length);
        }
        for (uint256 i; i < scores.length; ++i) {
            if (scores[i] > Quality.MAX_SCORE) revert TaskRegistryScoreOutOfRange(i, scores[i]);
        }
        s.revealed = true;
        r.revealed += 1;
        rs.scoreRows[msg.sender] = Quality.pack(scores);
        emit ScoresRevealed(taskId, round, msg.sender, scores);
    }

    /// @inheritdoc ITaskRegistry
    function finalizeRound(uint256 taskId, uint64 round) external nonReentrant {
        (TaskSettlement.Task storage task, TaskSettlement.Round storage rs) = _round(taskId, round, RoundStage.Open);
        RoundInfo storage r = rs.info;
        bool allRevealed = _verifyClosed(r) && r.revealed == r.scoreCommitted;
        if (!allRevealed && block.timestamp <= r.revealDeadline) {
            revert TaskRegistryRoundNotOver(taskId, round, r.revealDeadline, block.timestamp);
        }
        task.state.lastProgressAt = uint64(block.timestamp);
        (address[] memory accepted, uint256[] memory amounts, uint256 paid) = task.settleRound(taskId, round, _devices);
        if (paid > 0) {
            // Interaction last: every state change of the round is done before ETH leaves.
            task.state.escrow -= paid;
            _totalEscrow -= paid;
            _vault.credit{value: paid}(accepted, amounts);
        }
    }

    /// @inheritdoc ITaskRegistry
    function submitAggregate(uint256 taskId, uint64 round, bytes32 aggregateHash) external {
        (TaskSettlement.Task storage task, TaskSettlement.Round storage rs) =
            _round(taskId, round, RoundStage.Finalized);
        if (msg.sender != task.state.aggregator) revert TaskRegistryNotAggregator(taskId, msg.sender);
        if (aggregateHash == bytes32(0)) revert TaskRegistryZeroHash();
        rs.info.aggregateHash = aggregateHash;
        rs.info.stage = RoundStage.Aggregated;
        task.state.lastProgressAt = uint64(block.timestamp);
        emit AggregateSubmitted(taskId, round, aggregateHash);
    }

    /// @inheritdoc ITaskRegistry
    function publishModel(uint256 taskId, uint64 round, bytes32 modelHash, string calldata uri, bytes32 metricsHash)
        external
    {
        uint256 parent = _closeRound(taskId, round, modelHash);
        uint256 version = _tasks[taskId].state.modelVersion;
        // Interaction last; the registry appends exactly `version`.
        uint256 registered = _models.registerVersion(modelHash, uri, parent, taskId, round + 1, metricsHash);
        // slither-disable-next-line incorrect-equality
        assert(registered == version);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITaskRegistry
    function scoreCommitment(uint256 taskId, uint64 round, uint16[] calldata scores, bytes32 salt, address device)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, round, scores, salt, device));
    }

    /// @inheritdoc ITaskRegistry
    function assignmentOf(uint256 taskId, uint64 round, address device) external view returns (address[] memory) {
        return _assignment(taskId, round, device, true);
    }

    /// @inheritdoc ITaskRegistry
    function verifiersOf(uint256 taskId, uint64 round, address device) external view returns (address[] memory) {
        return _assignment(taskId, round, device, false);
    }

    function taskCount() external view returns (uint256) {
        return _taskCount;
    }

    function taskParams(uint256 taskId) external view returns (TaskParams memory) {
        return _tasks[taskId].params;
    }

    function taskState(uint256 taskId) external view returns (TaskState memory) {
        return _tasks[taskId].state;
    }

    function roundInfo(uint256 taskId, uint64 round) external view returns (RoundInfo memory) {
        return _tasks[taskId].rounds[round].info;
    }

    function submissionOf(uint256 taskId, uint64 round, address device) external view returns (Submission memory) {
        return _tasks[taskId].rounds[round].submissions[device];
    }

    function participantsOf(uint256 taskId) external view returns (address[] memory) {
        return _tasks[taskId].active;
    }

    function waitingOf(uint256 taskId) external view returns (address[] memory list) {
        TaskSettlement.Task storage task = _tasks[taskId];
        address[] storage queue = task.waiting;
        uint256 head = task.waitingHead;
        list = new address[](queue.length - head);
        for (uint256 i; i < list.length; ++i) {
            list[i] = queue[head + i];
        }
    }

    function memberStatus(uint256 taskId, address device) external view returns (MemberStatus) {
        return _tasks[taskId].members[device];
    }

    function epsilonOf(uint256 taskId, address device) external view returns (uint64) {
        return _tasks[taskId].epsilon[device];
    }

    /// @inheritdoc ITaskRegistry
    function isAllowed(uint256 taskId, address device) public view returns (bool) {
        TaskSettlement.Task storage task = _tasks[taskId];
        if (!task.state.restricted) return true;
        return task.allowed[device] || task.allowed[_devices.ownerOf(device)];
    }

    function refundOf(address requester) external view returns (uint256) {
        return _refunds[requester];
    }

    /// @inheritdoc ITaskRegistry
    function totalHeld() external view returns (uint256) {
        return _totalEscrow + _totalRefunds;
    }

    // ------------------------------------------------------------------ internals

    /// @dev Whom `device` scores (`targets`) or who scores `device`, while the round is open.
    function _assignment(uint256 taskId, uint64 round, address device, bool targets)
        private
        view
        returns (address[] memory list)
    {
        TaskSettlement.Task storage task = _tasks[taskId];
        RoundInfo storage r = task.rounds[round].info;
        address[] storage members = task.active;
        uint256 n = members.length;
        uint256 i;
        while (i < n && members[i] != device) ++i;
        if (r.stage != RoundStage.Open || i == n) return list;
        list = new address[](r.assignmentSize);
        for (uint256 t; t < list.length; ++t) {
            uint256 j = targets ? Quality.target(i, t, r.assignmentOffset, n) : Quality.verifier(i, t, r.assignmentOffset, n);
            list[t] = members[j];
        }
    }

    function _validate(TaskParams calldata p, uint256 allowListLength) private pure {
        if (p.minParticipants < 2 || p.minParticipants > p.maxParticipants || p.maxParticipants > MAX_PARTICIPANTS) {
            revert TaskRegistryInvalidParticipantBounds(p.minParticipants, p.maxParticipants);
        }
        if (
            p.rounds == 0 || p.trainDuration == 0 || p.verifyDuration == 0 || p.revealDuration == 0
                || p.gracePeriod == 0 || p.trainDuration > MAX_PHASE_DURATION || p.verifyDuration > MAX_PHASE_DURATION
                || p.revealDuration > MAX_PHASE_DURATION || p.gracePeriod > MAX_PHASE_DURATION
        ) {
            revert TaskRegistryInvalidSchedule(p.rounds, p.trainDuration, p.verifyDuration, p.revealDuration, p.gracePeriod);
        }
        if (p.rewardPerRound == 0) revert TaskRegistryZeroReward();
        if (p.minQuality > Quality.MAX_SCORE) revert TaskRegistryInvalidQualityThreshold(p.minQuality);
        if (p.epsilonBudget == 0) revert TaskRegistryZeroEpsilonBudget();
        if (p.modelHash == bytes32(0) || p.paillierKeyHash == bytes32(0)) revert TaskRegistryZeroHash();
        if (allowListLength > MAX_ALLOW_LIST) revert TaskRegistryAllowListTooLong(allowListLength, MAX_ALLOW_LIST);
        uint256 verifiers = p.verifiersPerUpdate == 0 ? p.maxParticipants - 1 : p.verifiersPerUpdate;
        if (verifiers > MAX_VERIFIERS) {
            revert TaskRegistryTooManyVerifiers(p.verifiersPerUpdate, p.maxParticipants, MAX_VERIFIERS);
        }
    }

    /// @dev The requester closes `round` on `modelHash`; completes the task after its last round.
    /// Returns the model version the new one descends from.
    function _closeRound(uint256 taskId, uint64 round, bytes32 modelHash) private returns (uint256 parent) {
        (TaskSettlement.Task storage task, TaskSettlement.Round storage rs) =
            _round(taskId, round, RoundStage.Aggregated);
        TaskState storage t = task.state;
        if (msg.sender != t.requester) revert TaskRegistryNotRequester(taskId, msg.sender);
        if (modelHash == bytes32(0)) revert TaskRegistryZeroHash();
        rs.info.newModelHash = modelHash;
        rs.info.stage = RoundStage.Closed;
        t.currentModel = modelHash;
        t.lastProgressAt = uint64(block.timestamp);
        parent = t.modelVersion;
        t.modelVersion = _models.versionCount() + 1;
        emit ModelPublished(taskId, round, modelHash, t.modelVersion);
        if (round + 1 == task.params.rounds) {
            t.status = TaskStatus.Completed;
            emit TaskCompleted(taskId, _releaseEscrow(t));
        }
    }

    /// @dev Promotes waiting devices, earliest first, into free slots; revoked ones are dropped.
    function _fillFromWaiting(TaskSettlement.Task storage task) private {
        address[] storage members = task.active;
        uint16 maxParticipants = task.params.maxParticipants;
        while (members.length < maxParticipants && task.waitingHead < task.waiting.length) {
            address device = task.popWaiting(_devices);
            if (device == address(0)) break;
            members.push(device);
        }
    }

    function _setAggregator(uint256 taskId, address aggregator) private {
        _tasks[taskId].state.aggregator = aggregator;
        emit AggregatorSet(taskId, aggregator);
    }

    /// @dev The live task `taskId`; reverts when it does not exist or is completed or cancelled.
    function _liveTask(uint256 taskId) private view returns (TaskSettlement.Task storage task) {
        task = _tasks[taskId];
        TaskStatus status = task.state.status;
        if (status == TaskStatus.None) revert TaskRegistryUnknownTask(taskId);
        if (status != TaskStatus.Open && status != TaskStatus.Running) revert TaskRegistryTaskNotLive(taskId, status);
    }

    /// @dev The live task `taskId` and its round `round`, which must be the current one and at `expected`.
    function _round(uint256 taskId, uint64 round, RoundStage expected)
        private
        view
        returns (TaskSettlement.Task storage task, TaskSettlement.Round storage rs)
    {
        task = _liveTask(taskId);
        uint64 opened = task.state.roundsOpened;
        if (opened == 0 || round != opened - 1) {
            revert TaskRegistryWrongRound(taskId, round, opened == 0 ? 0 : opened - 1);
        }
        rs = task.rounds[round];
        RoundStage stage = rs.info.stage;
        if (stage != expected) revert TaskRegistryWrongStage(taskId, round, stage, expected);
    }

    function _requireParticipant(TaskSettlement.Task storage task, uint256 taskId, address account) private view {
        if (task.members[account] != MemberStatus.Active) revert TaskRegistryNotParticipant(taskId, account);
        if (!_devices.isActive(account)) revert TaskRegistryDeviceNotActive(account);
    }

    function _commitsClosed(RoundInfo storage r) private view returns (bool) {
        return block.timestamp > r.commitDeadline || r.committed == r.participants;
    }

    function _verifyClosed(RoundInfo storage r) private view returns (bool) {
        return _commitsClosed(r) && (block.timestamp > r.verifyDeadline || r.scoreCommitted == r.committed);
    }

    function _releaseEscrow(TaskState storage t) private returns (uint256 refund) {
        refund = t.escrow;
        t.escrow = 0;
        _totalEscrow -= refund;
        _totalRefunds += refund;
        _refunds[t.requester] += refund;
    }
}
