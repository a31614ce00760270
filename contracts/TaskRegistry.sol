// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";
import {ITaskRegistry} from "./interfaces/ITaskRegistry.sol";
import {Quality} from "./libraries/Quality.sol";

/// @title TaskRegistry
/// @notice Learning tasks: escrow, participants, rounds, proof of quality and rewards.
/// Solvency: the contract's ETH balance always equals {totalHeld} (escrow + refunds owed).
contract TaskRegistry is ITaskRegistry, ReentrancyGuard {
    /// @notice Upper bound on a task's participants; bounds every loop of a transaction.
    uint16 public constant MAX_PARTICIPANTS = 64;
    /// @notice A running task (a round was opened) with no progress for this many round
    /// durations may be cancelled by anyone.
    uint64 public constant STALL_FACTOR = 3;
    /// @notice Longest round phase; keeps every deadline far from uint64 overflow.
    uint64 public constant MAX_ROUND_DURATION = 365 days;

    IDeviceRegistry private immutable _devices;
    IRewardVault private immutable _vault;

    uint256 private _taskCount;
    uint256 private _totalEscrow;
    uint256 private _totalRefunds;
    mapping(uint256 taskId => TaskParams) private _params;
    mapping(uint256 taskId => TaskState) private _tasks;
    mapping(uint256 taskId => address[]) private _active;
    mapping(uint256 taskId => address[]) private _waiting;
    mapping(uint256 taskId => uint256) private _waitingHead;
    mapping(uint256 taskId => mapping(address device => MemberStatus)) private _members;
    mapping(uint256 taskId => mapping(uint64 round => RoundInfo)) private _rounds;
    mapping(uint256 taskId => mapping(uint64 round => mapping(address device => Submission))) private _submissions;
    mapping(uint256 taskId => mapping(uint64 round => mapping(address device => uint256[]))) private _scoreRows;
    mapping(address requester => uint256) private _refunds;

    constructor(IDeviceRegistry devices, IRewardVault vault) {
        _devices = devices;
        _vault = vault;
    }

    // ------------------------------------------------------------------ task lifecycle

    /// @inheritdoc ITaskRegistry
    function publishTask(TaskParams calldata p, address aggregator) external payable returns (uint256 taskId) {
        if (p.minParticipants < 2 || p.minParticipants > p.maxParticipants || p.maxParticipants > MAX_PARTICIPANTS) {
            revert TaskRegistryInvalidParticipantBounds(p.minParticipants, p.maxParticipants);
        }
        if (p.rounds == 0 || p.roundDuration == 0 || p.roundDuration > MAX_ROUND_DURATION) {
            revert TaskRegistryInvalidSchedule(p.rounds, p.roundDuration);
        }
        if (p.rewardPerRound == 0) revert TaskRegistryZeroReward();
        if (p.minQuality > Quality.MAX_SCORE) revert TaskRegistryInvalidQualityThreshold(p.minQuality);
        if (p.modelHash == bytes32(0) || p.paillierKeyHash == bytes32(0)) revert TaskRegistryZeroHash();
        uint256 escrow = uint256(p.rounds) * p.rewardPerRound;
        if (msg.value != escrow) revert TaskRegistryWrongEscrow(escrow, msg.value);

        taskId = ++_taskCount;
        _params[taskId] = p;
        TaskState storage t = _tasks[taskId];
        t.requester = msg.sender;
        t.status = TaskStatus.Open;
        t.lastProgressAt = uint64(block.timestamp);
        t.escrow = escrow;
        t.currentModel = p.modelHash;
        _totalEscrow += escrow;
        emit TaskPublished(
            taskId, msg.sender, p.category, p.modelHash, p.paillierKeyHash, p.rounds, p.rewardPerRound, escrow
        );
        if (aggregator != address(0)) _setAggregator(taskId, aggregator);
    }

    /// @inheritdoc ITaskRegistry
    function setAggregator(uint256 taskId, address aggregator) external {
        TaskState storage t = _liveTask(taskId);
        if (msg.sender != t.requester) revert TaskRegistryNotRequester(taskId, msg.sender);
        if (aggregator == address(0)) revert TaskRegistryZeroAddress();
        _setAggregator(taskId, aggregator);
    }

    /// @inheritdoc ITaskRegistry
    function join(uint256 taskId) external {
        TaskState storage t = _liveTask(taskId);
        if (!_devices.isActive(msg.sender)) revert TaskRegistryDeviceNotActive(msg.sender);
        MemberStatus status = _members[taskId][msg.sender];
        if (status != MemberStatus.None) revert TaskRegistryAlreadyJoined(taskId, msg.sender, status);
        bool waiting = t.roundsOpened > 0 || _active[taskId].length >= _params[taskId].maxParticipants;
        if (waiting) {
            _members[taskId][msg.sender] = MemberStatus.Waiting;
            _waiting[taskId].push(msg.sender);
        } else {
            _members[taskId][msg.sender] = MemberStatus.Active;
            _active[taskId].push(msg.sender);
        }
        emit DeviceJoined(taskId, msg.sender, waiting);
    }

    /// @inheritdoc ITaskRegistry
    function cancelTask(uint256 taskId) external {
        TaskState storage t = _liveTask(taskId);
        uint256 stalledAfter = uint256(t.lastProgressAt) + uint256(STALL_FACTOR) * _params[taskId].roundDuration;
        bool idle = t.roundsOpened == 0 || _rounds[taskId][t.roundsOpened - 1].stage == RoundStage.Closed;
        bool requesterMay = msg.sender == t.requester && idle;
        bool anyoneMay = t.roundsOpened > 0 && block.timestamp > stalledAfter;
        if (!requesterMay && !anyoneMay) revert TaskRegistryCannotCancel(taskId, msg.sender, stalledAfter);
        t.status = TaskStatus.Cancelled;
        uint256 refund = _releaseEscrow(t);
        emit TaskCancelled(taskId, msg.sender, refund);
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
        TaskState storage t = _liveTask(taskId);
        if (msg.sender != t.aggregator) revert TaskRegistryNotAggregator(taskId, msg.sender);
        uint64 round = t.roundsOpened;
        if (round > 0) {
            RoundStage previous = _rounds[taskId][round - 1].stage;
            if (previous != RoundStage.Closed) revert TaskRegistryRoundInProgress(taskId, round - 1, previous);
        }
        address[] storage members = _active[taskId];
        uint16 minimum = _params[taskId].minParticipants;
        if (members.length < minimum) revert TaskRegistryNotEnoughParticipants(taskId, members.length, minimum);
        if (globalModelHash != t.currentModel) revert TaskRegistryModelMismatch(taskId, t.currentModel, globalModelHash);

        uint64 duration = _params[taskId].roundDuration;
        RoundInfo storage r = _rounds[taskId][round];
        r.stage = RoundStage.Open;
        r.commitDeadline = uint64(block.timestamp) + duration;
        r.scoreDeadline = r.commitDeadline + duration;
        r.participants = uint16(members.length);
        r.globalModelHash = globalModelHash;
        t.roundsOpened = round + 1;
        t.status = TaskStatus.Running;
        t.lastProgressAt = uint64(block.timestamp);
        emit RoundOpened(taskId, round, globalModelHash, r.commitDeadline, r.scoreDeadline, members);
    }

    /// @inheritdoc ITaskRegistry
    function commitUpdate(uint256 taskId, uint64 round, bytes32 updateHash) external {
        RoundInfo storage r = _openRound(taskId, round);
        _requireParticipant(taskId, msg.sender);
        if (block.timestamp > r.commitDeadline) {
            revert TaskRegistryCommitTooLate(taskId, round, r.commitDeadline, block.timestamp);
        }
        if (updateHash == bytes32(0)) revert TaskRegistryZeroHash();
        Submission storage s = _submissions[taskId][round][msg.sender];
        if (s.updateHash != bytes32(0)) revert TaskRegistryAlreadyCommitted(taskId, round, msg.sender);
        s.updateHash = updateHash;
        r.committed += 1;
        emit UpdateCommitted(taskId, round, msg.sender, updateHash);
    }

    /// @inheritdoc ITaskRegistry
    function submitScores(uint256 taskId, uint64 round, uint16[] calldata scores) external {
        RoundInfo storage r = _openRound(taskId, round);
        _requireParticipant(taskId, msg.sender);
        if (!_commitsClosed(r)) revert TaskRegistryScoringNotOpen(taskId, round, r.commitDeadline, block.timestamp);
        if (block.timestamp > r.scoreDeadline) {
            revert TaskRegistryScoresTooLate(taskId, round, r.scoreDeadline, block.timestamp);
        }
        Submission storage s = _submissions[taskId][round][msg.sender];
        if (s.updateHash == bytes32(0)) revert TaskRegistryNotCommitted(taskId, round, msg.sender);
        if (s.scored) revert TaskRegistryAlreadyScored(taskId, round, msg.sender);
        if (scores.length != r.participants) {
            revert TaskRegistryScoreCountMismatch(taskId, round, r.participants, scores.length);
        }
        for (uint256 i; i < scores.length; ++i) {
            if (scores[i] > Quality.MAX_SCORE) revert TaskRegistryScoreOutOfRange(i, scores[i]);
        }
        s.scored = true;
        r.scored += 1;
        _scoreRows[taskId][round][msg.sender] = Quality.pack(scores);
        emit ScoresSubmitted(taskId, round, msg.sender, scores);
    }

    /// @inheritdoc ITaskRegistry
    function finalizeRound(uint256 taskId, uint64 round) external nonReentrant {
        RoundInfo storage r = _openRound(taskId, round);
        bool allScored = _commitsClosed(r) && r.scored == r.committed;
        if (!allScored && block.timestamp <= r.scoreDeadline) {
            revert TaskRegistryRoundNotOver(taskId, round, r.scoreDeadline, block.timestamp);
        }
        address[] memory members = _active[taskId];
        uint16[] memory quality = _qualities(taskId, round, members);
        (uint256 leader, uint256 worst) = _rank(taskId, round, members, quality);
        if (leader < members.length) r.leader = members[leader];

        (address[] memory accepted, uint256 paid) = _settle(taskId, round, members, quality, leader, worst);
        r.accepted = uint16(accepted.length);
        r.rewardPaid = paid;
        r.stage = accepted.length == 0 ? RoundStage.Aggregated : RoundStage.Finalized;
        _tasks[taskId].lastProgressAt = uint64(block.timestamp);
        if (worst < members.length) r.eliminated = _eliminate(taskId, round, members[worst]);
        emit RoundFinalized(taskId, round, r.leader, r.eliminated, accepted, paid);
    }

    /// @inheritdoc ITaskRegistry
    function submitAggregate(uint256 taskId, uint64 round, bytes32 aggregateHash) external {
        RoundInfo storage r = _round(taskId, round, RoundStage.Finalized);
        if (msg.sender != _tasks[taskId].aggregator) revert TaskRegistryNotAggregator(taskId, msg.sender);
        if (aggregateHash == bytes32(0)) revert TaskRegistryZeroHash();
        r.aggregateHash = aggregateHash;
        r.stage = RoundStage.Aggregated;
        _tasks[taskId].lastProgressAt = uint64(block.timestamp);
        emit AggregateSubmitted(taskId, round, aggregateHash);
    }

    /// @inheritdoc ITaskRegistry
    function publishModel(uint256 taskId, uint64 round, bytes32 modelHash) external {
        RoundInfo storage r = _round(taskId, round, RoundStage.Aggregated);
        TaskState storage t = _tasks[taskId];
        if (msg.sender != t.requester) revert TaskRegistryNotRequester(taskId, msg.sender);
        if (modelHash == bytes32(0)) revert TaskRegistryZeroHash();
        r.newModelHash = modelHash;
        r.stage = RoundStage.Closed;
        t.currentModel = modelHash;
        t.lastProgressAt = uint64(block.timestamp);
        emit ModelPublished(taskId, round, modelHash);
        if (round + 1 == _params[taskId].rounds) {
            t.status = TaskStatus.Completed;
            emit TaskCompleted(taskId, _releaseEscrow(t));
        }
    }

    // ------------------------------------------------------------------ views

    function taskCount() external view returns (uint256) {
        return _taskCount;
    }

    function taskParams(uint256 taskId) external view returns (TaskParams memory) {
        return _params[taskId];
    }

    function taskState(uint256 taskId) external view returns (TaskState memory) {
        return _tasks[taskId];
    }

    function roundInfo(uint256 taskId, uint64 round) external view returns (RoundInfo memory) {
        return _rounds[taskId][round];
    }

    function submissionOf(uint256 taskId, uint64 round, address device) external view returns (Submission memory) {
        return _submissions[taskId][round][device];
    }

    function participantsOf(uint256 taskId) external view returns (address[] memory) {
        return _active[taskId];
    }

    function waitingOf(uint256 taskId) external view returns (address[] memory list) {
        address[] storage queue = _waiting[taskId];
        uint256 head = _waitingHead[taskId];
        list = new address[](queue.length - head);
        for (uint256 i; i < list.length; ++i) {
            list[i] = queue[head + i];
        }
    }

    function memberStatus(uint256 taskId, address device) external view returns (MemberStatus) {
        return _members[taskId][device];
    }

    function refundOf(address requester) external view returns (uint256) {
        return _refunds[requester];
    }

    /// @inheritdoc ITaskRegistry
    function totalHeld() external view returns (uint256) {
        return _totalEscrow + _totalRefunds;
    }

    // ------------------------------------------------------------------ internals

    function _setAggregator(uint256 taskId, address aggregator) private {
        _tasks[taskId].aggregator = aggregator;
        emit AggregatorSet(taskId, aggregator);
    }

    function _liveTask(uint256 taskId) private view returns (TaskState storage t) {
        t = _tasks[taskId];
        if (t.status == TaskStatus.None) revert TaskRegistryUnknownTask(taskId);
        if (t.status != TaskStatus.Open && t.status != TaskStatus.Running) revert TaskRegistryTaskNotLive(taskId, t.status);
    }

    function _round(uint256 taskId, uint64 round, RoundStage expected) private view returns (RoundInfo storage r) {
        TaskState storage t = _liveTask(taskId);
        if (t.roundsOpened == 0 || round != t.roundsOpened - 1) {
            revert TaskRegistryWrongRound(taskId, round, t.roundsOpened == 0 ? 0 : t.roundsOpened - 1);
        }
        r = _rounds[taskId][round];
        if (r.stage != expected) revert TaskRegistryWrongStage(taskId, round, r.stage, expected);
    }

    function _openRound(uint256 taskId, uint64 round) private view returns (RoundInfo storage) {
        return _round(taskId, round, RoundStage.Open);
    }

    function _requireParticipant(uint256 taskId, address account) private view {
        if (_members[taskId][account] != MemberStatus.Active) revert TaskRegistryNotParticipant(taskId, account);
        if (!_devices.isActive(account)) revert TaskRegistryDeviceNotActive(account);
    }

    function _commitsClosed(RoundInfo storage r) private view returns (bool) {
        return block.timestamp > r.commitDeadline || r.committed == r.participants;
    }

    /// @dev Quality of each participant: the median of the scores it received from the other
    /// participants that scored. Zero for participants that committed nothing or did not score.
    function _qualities(uint256 taskId, uint64 round, address[] memory members)
        private
        view
        returns (uint16[] memory quality)
    {
        uint256 n = members.length;
        quality = new uint16[](n);
        uint16[] memory column = new uint16[](n);
        for (uint256 j; j < n; ++j) {
            if (!_submissions[taskId][round][members[j]].scored) continue;
            uint256 count;
            for (uint256 i; i < n; ++i) {
                if (i == j || !_submissions[taskId][round][members[i]].scored) continue;
                column[count++] = Quality.at(_scoreRows[taskId][round][members[i]], j);
            }
            quality[j] = Quality.median(column, count);
        }
    }

    /// @dev Leader: best quality (first on ties). Worst: lowest quality (last on ties), chosen only
    /// among two or more participants that both committed and scored. `n` means none.
    function _rank(uint256 taskId, uint64 round, address[] memory members, uint16[] memory quality)
        private
        view
        returns (uint256 leader, uint256 worst)
    {
        uint256 n = members.length;
        leader = n;
        worst = n;
        uint256 eligible;
        for (uint256 i; i < n; ++i) {
            if (!_submissions[taskId][round][members[i]].scored) continue;
            ++eligible;
            if (leader == n || quality[i] > quality[leader]) leader = i;
            if (worst == n || quality[i] <= quality[worst]) worst = i;
        }
        if (eligible < 2) worst = n;
    }

    /// @dev Records every participant's quality and pays accepted ones in proportion to it.
    /// Accepted: committed, scored, not the worst, quality >= threshold and > 0.
    /// The rounding remainder goes to the leader, so exactly the round's reward is paid.
    function _settle(
        uint256 taskId,
        uint64 round,
        address[] memory members,
        uint16[] memory quality,
        uint256 leader,
        uint256 worst
    ) private returns (address[] memory accepted, uint256 paid) {
        (uint256[] memory rewards, bool[] memory ok) = _shares(taskId, round, members, quality, worst);
        uint256 count;
        for (uint256 i; i < members.length; ++i) {
            paid += rewards[i];
            if (ok[i]) ++count;
        }
        if (count > 0) {
            uint256 reward = _params[taskId].rewardPerRound;
            rewards[leader] += reward - paid;
            paid = reward;
        }
        uint256[] memory amounts;
        (accepted, amounts) = _record(taskId, round, members, quality, rewards, ok, count);
        if (paid > 0) {
            // Effects before the call: the escrow is reduced before ETH leaves for the vault.
            _tasks[taskId].escrow -= paid;
            _totalEscrow -= paid;
            _vault.credit{value: paid}(accepted, amounts);
        }
    }

    /// @dev Stores each participant's quality, acceptance and reward, and emits {QualityAssessed}.
    function _record(
        uint256 taskId,
        uint64 round,
        address[] memory members,
        uint16[] memory quality,
        uint256[] memory rewards,
        bool[] memory ok,
        uint256 count
    ) private returns (address[] memory accepted, uint256[] memory amounts) {
        accepted = new address[](count);
        amounts = new uint256[](count);
        uint256 k;
        for (uint256 i; i < members.length; ++i) {
            Submission storage s = _submissions[taskId][round][members[i]];
            s.quality = quality[i];
            s.accepted = ok[i];
            s.reward = rewards[i];
            if (ok[i]) {
                accepted[k] = members[i];
                amounts[k++] = rewards[i];
            }
            emit QualityAssessed(taskId, round, members[i], quality[i], ok[i], rewards[i]);
        }
    }

    /// @dev Each accepted participant's share of the round's reward, rounded down (`Math.mulDiv`).
    function _shares(uint256 taskId, uint64 round, address[] memory members, uint16[] memory quality, uint256 worst)
        private
        view
        returns (uint256[] memory rewards, bool[] memory ok)
    {
        uint256 n = members.length;
        uint16 threshold = _params[taskId].minQuality;
        ok = new bool[](n);
        uint256 qualitySum;
        for (uint256 i; i < n; ++i) {
            ok[i] = i != worst && quality[i] > 0 && quality[i] >= threshold
                && _submissions[taskId][round][members[i]].scored;
            if (ok[i]) qualitySum += quality[i];
        }
        rewards = new uint256[](n);
        uint256 reward = _params[taskId].rewardPerRound;
        for (uint256 i; i < n; ++i) {
            if (ok[i]) rewards[i] = Math.mulDiv(reward, quality[i], qualitySum);
        }
    }

    /// @dev Removes `device` from the active set; the earliest waiting device takes its place.
    /// Skipped (returns zero) when no one waits and the task would fall below its minimum.
    function _eliminate(uint256 taskId, uint64 round, address device) private returns (address) {
        address[] storage members = _active[taskId];
        address[] storage queue = _waiting[taskId];
        uint256 head = _waitingHead[taskId];
        bool someoneWaits = head < queue.length;
        if (!someoneWaits && members.length <= _params[taskId].minParticipants) return address(0);
        uint256 index;
        while (members[index] != device) ++index;
        address replacement;
        if (someoneWaits) {
            replacement = queue[head];
            _waitingHead[taskId] = head + 1;
            _members[taskId][replacement] = MemberStatus.Active;
            members[index] = replacement;
        } else {
            members[index] = members[members.length - 1];
            members.pop();
        }
        _members[taskId][device] = MemberStatus.Eliminated;
        emit ParticipantEliminated(taskId, round, device, replacement);
        return device;
    }

    function _releaseEscrow(TaskState storage t) private returns (uint256 refund) {
        refund = t.escrow;
        t.escrow = 0;
        _totalEscrow -= refund;
        _totalRefunds += refund;
        _refunds[t.requester] += refund;
    }
}
