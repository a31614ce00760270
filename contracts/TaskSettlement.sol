// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IDeviceRegistry} from "./interfaces/IDeviceRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IRewardVault} from "./interfaces/IRewardVault.sol";
import {ITaskRegistry} from "./interfaces/ITaskRegistry.sol";
import {Quality} from "./libraries/Quality.sol";

/// @title TaskSettlement
/// @notice The task registry's state and how a round is settled: proof of quality from revealed
/// scores, leader, elimination and replacement, rewards through the vault.
abstract contract TaskSettlement is ITaskRegistry {
    /// @notice Upper bound on a task's participants; bounds every loop of a transaction.
    uint16 public constant MAX_PARTICIPANTS = 64;

    IDeviceRegistry internal immutable _devices;
    IRewardVault internal immutable _vault;
    IModelRegistry internal immutable _models;

    uint256 internal _totalEscrow;
    mapping(uint256 taskId => TaskParams) internal _params;
    mapping(uint256 taskId => TaskState) internal _tasks;
    mapping(uint256 taskId => address[]) internal _active;
    mapping(uint256 taskId => address[]) internal _waiting;
    mapping(uint256 taskId => uint256) internal _waitingHead;
    mapping(uint256 taskId => mapping(address device => MemberStatus)) internal _members;
    mapping(uint256 taskId => mapping(address device => uint64)) internal _epsilon;
    mapping(uint256 taskId => mapping(uint64 round => RoundInfo)) internal _rounds;
    mapping(uint256 taskId => mapping(uint64 round => mapping(address device => Submission))) internal _submissions;
    mapping(uint256 taskId => mapping(uint64 round => mapping(address device => uint256[]))) internal _scoreRows;

    constructor(IDeviceRegistry devices, IRewardVault vault, IModelRegistry models) {
        _devices = devices;
        _vault = vault;
        _models = models;
    }

    function _liveTask(uint256 taskId) internal view returns (TaskState storage t) {
        t = _tasks[taskId];
        if (t.status == TaskStatus.None) revert TaskRegistryUnknownTask(taskId);
        if (t.status != TaskStatus.Open && t.status != TaskStatus.Running) {
            revert TaskRegistryTaskNotLive(taskId, t.status);
        }
    }

    /// @dev Settles round `round`: quality, leader, rewards, elimination of the worst, and removal
    /// of participants whose device was revoked. Participants that did not reveal are not ranked
    /// and get nothing; the round settles without them.
    function _settleRound(uint256 taskId, uint64 round, RoundInfo storage r) internal {
        address[] memory members = _active[taskId];
        (uint16[] memory quality, bool[] memory revealed) = _qualities(taskId, round, r, members);
        (uint256 leader, uint256 worst) = _rank(quality, revealed);
        if (leader < members.length) r.leader = members[leader];

        (address[] memory accepted, uint256[] memory amounts, uint256 paid) =
            _settle(taskId, round, members, quality, revealed, leader, worst);
        r.accepted = uint16(accepted.length);
        r.rewardPaid = paid;
        r.stage = accepted.length == 0 ? RoundStage.Aggregated : RoundStage.Finalized;
        if (worst < members.length) r.eliminated = _eliminate(taskId, round, members[worst], false, false);
        _dropSilent(taskId, round, members, revealed);
        emit RoundFinalized(taskId, round, r.leader, r.eliminated, accepted, paid);
        if (paid > 0) {
            // Interaction last: every state change of the round is done before ETH leaves.
            _tasks[taskId].escrow -= paid;
            _totalEscrow -= paid;
            _vault.credit{value: paid}(accepted, amounts);
        }
    }

    /// @dev A revoked device cannot commit again: its slot is freed. A silent participant (no
    /// reveal) gives its slot to a waiting device, so staying silent cannot dodge elimination.
    function _dropSilent(uint256 taskId, uint64 round, address[] memory members, bool[] memory revealed) private {
        for (uint256 i; i < members.length; ++i) {
            if (!revealed[i]) _eliminate(taskId, round, members[i], !_devices.isActive(members[i]), true);
        }
    }

    /// @dev Quality of each participant that revealed: the median of the scores its update received
    /// from the verifiers assigned to it that revealed. Zero for everyone else.
    function _qualities(uint256 taskId, uint64 round, RoundInfo storage r, address[] memory members)
        private
        view
        returns (uint16[] memory quality, bool[] memory revealed)
    {
        uint256 n = members.length;
        uint256 size = r.assignmentSize;
        uint256 offset = r.assignmentOffset;
        quality = new uint16[](n);
        revealed = new bool[](n);
        uint256[][] memory rows = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            if (_submissions[taskId][round][members[i]].revealed) {
                revealed[i] = true;
                rows[i] = _scoreRows[taskId][round][members[i]];
            }
        }
        uint16[] memory column = new uint16[](size);
        for (uint256 j; j < n; ++j) {
            if (!revealed[j]) continue;
            uint256 count = 0;
            for (uint256 t; t < size; ++t) {
                uint256 i = Quality.verifier(j, t, offset, n);
                if (revealed[i]) column[count++] = Quality.at(rows[i], t);
            }
            quality[j] = Quality.median(column, count);
        }
    }

    /// @dev Leader: best quality (first on ties). Worst: lowest quality (last on ties), chosen only
    /// among two or more participants that revealed. `n` means none.
    function _rank(uint16[] memory quality, bool[] memory revealed)
        private
        pure
        returns (uint256 leader, uint256 worst)
    {
        uint256 n = quality.length;
        leader = n;
        worst = n;
        uint256 eligible = 0;
        for (uint256 i; i < n; ++i) {
            if (!revealed[i]) continue;
            ++eligible;
            if (leader == n || quality[i] > quality[leader]) leader = i;
            if (worst == n || quality[i] <= quality[worst]) worst = i;
        }
        if (eligible < 2) worst = n;
    }

    /// @dev Records every participant's quality and the accepted ones' rewards, in proportion to it.
    /// Accepted: revealed, not the worst, quality > 0, at least the task's minimum and no more than
    /// its quality gap below the median quality of the round. The rounding remainder
    /// goes to the leader, so exactly the round's reward is paid whenever anyone is accepted.
    function _settle(
        uint256 taskId,
        uint64 round,
        address[] memory members,
        uint16[] memory quality,
        bool[] memory revealed,
        uint256 leader,
        uint256 worst
    ) private returns (address[] memory accepted, uint256[] memory amounts, uint256 paid) {
        (uint256[] memory rewards, bool[] memory ok, uint256 count) = _shares(taskId, quality, revealed, worst);
        for (uint256 i; i < members.length; ++i) {
            paid += rewards[i];
        }
        if (count > 0) {
            uint256 reward = _params[taskId].rewardPerRound;
            rewards[leader] += reward - paid;
            paid = reward;
        }
        (accepted, amounts) = _record(taskId, round, members, quality, rewards, ok, count);
    }

    /// @dev Each accepted participant's share of the round's reward, rounded down (`Math.mulDiv`).
    function _shares(uint256 taskId, uint16[] memory quality, bool[] memory revealed, uint256 worst)
        private
        view
        returns (uint256[] memory rewards, bool[] memory ok, uint256 count)
    {
        uint256 n = quality.length;
        uint256 threshold = _params[taskId].minQuality;
        uint256 floor = _median(quality, revealed);
        uint256 gap = _params[taskId].qualityGap;
        floor = floor > gap ? floor - gap : 0;
        if (floor > threshold) threshold = floor;
        ok = new bool[](n);
        uint256 qualitySum = 0;
        for (uint256 i; i < n; ++i) {
            ok[i] = revealed[i] && i != worst && quality[i] > 0 && quality[i] >= threshold;
            if (ok[i]) {
                qualitySum += quality[i];
                ++count;
            }
        }
        rewards = new uint256[](n);
        uint256 reward = _params[taskId].rewardPerRound;
        for (uint256 i; i < n; ++i) {
            if (ok[i]) rewards[i] = Math.mulDiv(reward, quality[i], qualitySum);
        }
    }

    /// @dev The median quality of the participants that revealed (0 when none).
    function _median(uint16[] memory quality, bool[] memory revealed) private pure returns (uint256) {
        uint16[] memory values = new uint16[](quality.length);
        uint256 count = 0;
        for (uint256 i; i < quality.length; ++i) {
            if (revealed[i]) values[count++] = quality[i];
        }
        return Quality.median(values, count);
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
        uint256 k = 0;
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

    /// @dev The earliest waiting device that is still active, now Active; zero when none.
    /// Revoked ones are dropped on the way; at most MAX_PARTICIPANTS entries are looked at.
    function _popWaiting(uint256 taskId) internal returns (address device) {
        address[] storage queue = _waiting[taskId];
        uint256 head = _waitingHead[taskId];
        uint256 stop = head + MAX_PARTICIPANTS < queue.length ? head + MAX_PARTICIPANTS : queue.length;
        while (head < stop && device == address(0)) {
            address candidate = queue[head++];
            bool active = _devices.isActive(candidate);
            _members[taskId][candidate] = active ? MemberStatus.Active : MemberStatus.Eliminated;
            if (active) device = candidate;
        }
        _waitingHead[taskId] = head;
    }

    /// @dev Removes `device` from the active set; the earliest waiting (still active) device takes
    /// its slot. Without a replacement it stays, unless `force`, or unless it may simply leave
    /// (`onlyIfReplaced` false) without taking the task below its minimum of participants.
    function _eliminate(uint256 taskId, uint64 round, address device, bool force, bool onlyIfReplaced)
        private
        returns (address)
    {
        address[] storage members = _active[taskId];
        address replacement = _popWaiting(taskId);
        if (
            replacement == address(0) && !force
                && (onlyIfReplaced || members.length <= _params[taskId].minParticipants)
        ) return address(0);
        uint256 index;
        while (members[index] != device) ++index;
        if (replacement != address(0)) {
            members[index] = replacement;
        } else {
            members[index] = members[members.length - 1];
            members.pop();
        }
        _members[taskId][device] = MemberStatus.Eliminated;
        emit ParticipantEliminated(taskId, round, device, replacement);
        return device;
    }
}
