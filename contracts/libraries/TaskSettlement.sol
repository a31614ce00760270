// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IDeviceRegistry} from "../interfaces/IDeviceRegistry.sol";
import {ITaskRegistry} from "../interfaces/ITaskRegistry.sol";
import {Quality} from "./Quality.sol";

/// @title TaskSettlement
/// @notice What the task registry keeps about one task, and how a round of it is settled: proof of
/// quality from revealed scores, leader, elimination and replacement, each participant's reward.
/// @dev Like Uniswap v4's `Pool`, a library over a storage struct: the registry holds one {Task}
/// per id and calls {settleRound} on it. {settleRound} is external, so its code is deployed once
/// as this library and runs by DELEGATECALL on the registry's storage; moving ETH stays with the
/// registry.
library TaskSettlement {
    /// @notice Upper bound on a task's participants; bounds every loop of a transaction.
    uint16 internal constant MAX_PARTICIPANTS = 64;

    /// @notice One task: its parameters, its moving parts, who takes part and its rounds.
    struct Task {
        ITaskRegistry.TaskParams params;
        ITaskRegistry.TaskState state;
        address[] active;
        address[] waiting;
        uint256 waitingHead;
        mapping(address device => ITaskRegistry.MemberStatus) members;
        mapping(address device => uint64) epsilon;
        mapping(address account => bool) allowed;
        mapping(uint64 round => Round) rounds;
    }

    /// @notice One round of a task: its summary and each participant's part in it.
    struct Round {
        ITaskRegistry.RoundInfo info;
        mapping(address device => ITaskRegistry.Submission) submissions;
        mapping(address device => uint256[]) scoreRows;
    }

    /// @dev Quality of each participant of a round and its ranking; `n` (members.length) means none.
    struct Ranking {
        uint16[] quality;
        bool[] revealed;
        uint256 leader;
        uint256 worst;
    }

    /// @notice Settles `round` of `self` (task `taskId`): quality, leader, rewards, elimination of
    /// the worst, and removal of participants whose device was revoked. Participants that did not
    /// reveal are not ranked and get nothing; the round settles without them.
    /// @dev Emits {ITaskRegistry.QualityAssessed} for every participant, {ITaskRegistry.ParticipantEliminated}
    /// for every leaver and {ITaskRegistry.RoundFinalized}. Moves no ETH: the caller takes `paid`
    /// out of escrow and credits `amounts[i]` to `accepted[i]`.
    /// @return accepted The participants rewarded, in participant order.
    /// @return amounts What each of `accepted` earned.
    /// @return paid The sum of `amounts`: the round's reward when anyone is accepted, else 0.
    function settleRound(Task storage self, uint256 taskId, uint64 round, IDeviceRegistry devices)
        external
        returns (address[] memory accepted, uint256[] memory amounts, uint256 paid)
    {
        Round storage rs = self.rounds[round];
        ITaskRegistry.RoundInfo storage r = rs.info;
        address[] memory members = self.active;
        Ranking memory ranking = _qualities(rs, members);
        _rank(ranking);
        if (ranking.leader < members.length) r.leader = members[ranking.leader];

        (accepted, amounts, paid) = _settle(self.params, rs, taskId, round, members, ranking);
        r.accepted = uint16(accepted.length);
        r.rewardPaid = paid;
        r.stage = accepted.length == 0 ? ITaskRegistry.RoundStage.Aggregated : ITaskRegistry.RoundStage.Finalized;
        if (ranking.worst < members.length) {
            r.eliminated = _eliminate(self, taskId, round, members[ranking.worst], devices, false, false);
        }
        // A revoked device cannot commit again: its slot is freed. A silent participant (no
        // reveal) gives its slot to a waiting device, so staying silent cannot dodge elimination.
        for (uint256 i; i < members.length; ++i) {
            if (!ranking.revealed[i]) {
                _eliminate(self, taskId, round, members[i], devices, !devices.isActive(members[i]), true);
            }
        }
        emit ITaskRegistry.RoundFinalized(taskId, round, r.leader, r.eliminated, accepted, paid);
    }

    /// @notice The earliest waiting device that is still active, now Active; zero when none.
    /// Revoked ones are dropped on the way; at most MAX_PARTICIPANTS entries are looked at.
    function popWaiting(Task storage self, IDeviceRegistry devices) internal returns (address device) {
        address[] storage queue = self.waiting;
        uint256 head = self.waitingHead;
        uint256 stop = head + MAX_PARTICIPANTS < queue.length ? head + MAX_PARTICIPANTS : queue.length;
        while (head < stop && device == address(0)) {
            address candidate = queue[head++];
            bool active = devices.isActive(candidate);
            self.members[candidate] = active ? ITaskRegistry.MemberStatus.Active : ITaskRegistry.MemberStatus.Eliminated;
            if (active) device = candidate;
        }
        self.waitingHead = head;
    }

    /// @dev Quality of each participant that revealed: the median of the scores its update received
    /// from the verifiers assigned to it that revealed. Zero for everyone else.
    function _qualities(Round storage rs, address[] memory members) private view returns (Ranking memory ranking) {
        uint256 n = members.length;
        uint256 size = rs.info.assignmentSize;
        uint256 offset = rs.info.assignmentOffset;
        uint16[] memory quality = new uint16[](n);
        bool[] memory revealed = new bool[](n);
        ranking = Ranking(quality, revealed, n, n);
        uint256[][] memory rows = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            if (rs.submissions[members[i]].revealed) {
                revealed[i] = true;
                rows[i] = rs.scoreRows[members[i]];
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

    /// @dev Sets the leader: best quality (first on ties), and the worst: lowest quality (last on
    /// ties), chosen only among two or more participants that revealed. `n` means none.
    function _rank(Ranking memory ranking) private pure {
        uint16[] memory quality = ranking.quality;
        bool[] memory revealed = ranking.revealed;
        uint256 n = quality.length;
        uint256 leader = n;
        uint256 worst = n;
        uint256 eligible = 0;
        for (uint256 i; i < n; ++i) {
            if (!revealed[i]) continue;
            ++eligible;
            if (leader == n || quality[i] > quality[leader]) leader = i;
            if (worst == n || quality[i] <= quality[worst]) worst = i;
        }
        if (eligible < 2) worst = n;
        ranking.leader = leader;
        ranking.worst = worst;
    }

    /// @dev Records every participant's quality and the accepted ones' rewards, in proportion to it.
    /// Accepted: revealed, not the worst, quality > 0, at least the task's minimum and no more than
    /// its quality gap below the median quality of the round. The rounding remainder
    /// goes to the leader, so exactly the round's reward is paid whenever anyone is accepted.
    function _settle(
        ITaskRegistry.TaskParams storage p,
        Round storage rs,
        uint256 taskId,
        uint64 round,
        address[] memory members,
        Ranking memory ranking
    ) private returns (address[] memory accepted, uint256[] memory amounts, uint256 paid) {
        (uint256[] memory rewards, bool[] memory ok, uint256 count) = _shares(p, ranking);
        for (uint256 i; i < members.length; ++i) {
            paid += rewards[i];
        }
        if (count > 0) {
            uint256 reward = p.rewardPerRound;
            rewards[ranking.leader] += reward - paid;
            paid = reward;
        }
        accepted = new address[](count);
        amounts = new uint256[](count);
        uint256 k = 0;
        for (uint256 i; i < members.length; ++i) {
            ITaskRegistry.Submission storage s = rs.submissions[members[i]];
            s.quality = ranking.quality[i];
            s.accepted = ok[i];
            s.reward = rewards[i];
            if (ok[i]) {
                accepted[k] = members[i];
                amounts[k++] = rewards[i];
            }
            emit ITaskRegistry.QualityAssessed(taskId, round, members[i], ranking.quality[i], ok[i], rewards[i]);
        }
    }

    /// @dev Each accepted participant's share of the round's reward, rounded down (`Math.mulDiv`).
    function _shares(ITaskRegistry.TaskParams storage p, Ranking memory ranking)
        private
        view
        returns (uint256[] memory rewards, bool[] memory ok, uint256 count)
    {
        uint16[] memory quality = ranking.quality;
        uint256 n = quality.length;
        uint256 threshold = p.minQuality;
        uint256 floor = _median(quality, ranking.revealed);
        uint256 gap = p.qualityGap;
        floor = floor > gap ? floor - gap : 0;
        if (floor > threshold) threshold = floor;
        ok = new bool[](n);
        uint256 qualitySum = 0;
        for (uint256 i; i < n; ++i) {
            ok[i] = ranking.revealed[i] && i != ranking.worst && quality[i] > 0 && quality[i] >= threshold;
            if (ok[i]) {
                qualitySum += quality[i];
                ++count;
            }
        }
        rewards = new uint256[](n);
        uint256 reward = p.rewardPerRound;
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

    /// @dev Removes `device` from the active set; the earliest waiting (still active) device takes
    /// its slot. Without a replacement it stays, unless `force`, or unless it may simply leave
    /// (`onlyIfReplaced` false) without taking the task below its minimum of participants.
    function _eliminate(
        Task storage self,
        uint256 taskId,
        uint64 round,
        address device,
        IDeviceRegistry devices,
        bool force,
        bool onlyIfReplaced
    ) private returns (address) {
        address[] storage members = self.active;
        address replacement = popWaiting(self, devices);
        if (
            replacement == address(0) && !force
                && (onlyIfReplaced || members.length <= self.params.minParticipants)
        ) return address(0);
        uint256 index;
        while (members[index] != device) ++index;
        if (replacement != address(0)) {
            members[index] = replacement;
        } else {
            members[index] = members[members.length - 1];
            members.pop();
        }
        self.members[device] = ITaskRegistry.MemberStatus.Eliminated;
        emit ITaskRegistry.ParticipantEliminated(taskId, round, device, replacement);
        return device;
    }
}
