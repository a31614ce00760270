// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ITaskRegistry
/// @notice Learning tasks with escrowed rewards, rounds of committed encrypted updates,
/// peer scores and on-chain proof of quality.
interface ITaskRegistry {
    /// @notice Lifecycle of a task.
    enum TaskStatus {
        None,
        Open,
        Running,
        Completed,
        Cancelled
    }

    /// @notice Lifecycle of a round: opened, finalised (quality known), aggregated, closed (model published).
    enum RoundStage {
        None,
        Open,
        Finalized,
        Aggregated,
        Closed
    }

    /// @notice Where a device stands in a task.
    enum MemberStatus {
        None,
        Active,
        Waiting,
        Eliminated
    }

    /// @notice What a requester fixes when publishing a task.
    struct TaskParams {
        bytes32 category;
        bytes32 modelHash;
        bytes32 paillierKeyHash;
        uint64 rounds;
        uint64 roundDuration;
        uint128 rewardPerRound;
        uint16 minParticipants;
        uint16 maxParticipants;
        uint16 minQuality;
    }

    /// @notice The moving parts of a task.
    struct TaskState {
        address requester;
        address aggregator;
        TaskStatus status;
        uint64 roundsOpened;
        uint64 lastProgressAt;
        uint256 escrow;
        bytes32 currentModel;
    }

    /// @notice One round of a task.
    struct RoundInfo {
        RoundStage stage;
        uint64 commitDeadline;
        uint64 scoreDeadline;
        uint16 participants;
        uint16 committed;
        uint16 scored;
        uint16 accepted;
        address leader;
        address eliminated;
        bytes32 globalModelHash;
        bytes32 aggregateHash;
        bytes32 newModelHash;
        uint256 rewardPaid;
    }

    /// @notice One participant's part in one round.
    struct Submission {
        bytes32 updateHash;
        uint16 quality;
        bool scored;
        bool accepted;
        uint256 reward;
    }

    /// @notice Emitted when a task is published with its escrow.
    event TaskPublished(
        uint256 indexed taskId,
        address indexed requester,
        bytes32 category,
        bytes32 modelHash,
        bytes32 paillierKeyHash,
        uint64 rounds,
        uint256 rewardPerRound,
        uint256 escrow
    );
    /// @notice Emitted when the requester names the task's aggregator.
    event AggregatorSet(uint256 indexed taskId, address indexed aggregator);
    /// @notice Emitted when a device joins, as a participant or on the waiting list.
    event DeviceJoined(uint256 indexed taskId, address indexed device, bool waiting);
    /// @notice Emitted when the aggregator opens a round on the global model `globalModelHash`.
    event RoundOpened(
        uint256 indexed taskId,
        uint64 indexed round,
        bytes32 globalModelHash,
        uint64 commitDeadline,
        uint64 scoreDeadline,
        address[] participants
    );
    /// @notice Emitted when a participant commits the hash of its encrypted update.
    event UpdateCommitted(uint256 indexed taskId, uint64 indexed round, address indexed device, bytes32 updateHash);
    /// @notice Emitted when a participant submits its scores of the round's participants.
    event ScoresSubmitted(uint256 indexed taskId, uint64 indexed round, address indexed device, uint16[] scores);
    /// @notice Emitted at finalisation for every participant of the round.
    event QualityAssessed(
        uint256 indexed taskId,
        uint64 indexed round,
        address indexed device,
        uint16 quality,
        bool accepted,
        uint256 reward
    );
    /// @notice Emitted when the worst participant leaves the task and `replacement` (or zero) takes its place.
    event ParticipantEliminated(
        uint256 indexed taskId, uint64 indexed round, address indexed device, address replacement
    );
    /// @notice Emitted when a round's quality, leader, elimination and rewards are settled.
    event RoundFinalized(
        uint256 indexed taskId,
        uint64 indexed round,
        address leader,
        address eliminated,
        address[] accepted,
        uint256 rewardPaid
    );
    /// @notice Emitted when the aggregator posts the hash of the homomorphic sum of accepted updates.
    event AggregateSubmitted(uint256 indexed taskId, uint64 indexed round, bytes32 aggregateHash);
    /// @notice Emitted when the requester posts the round's new global model.
    event ModelPublished(uint256 indexed taskId, uint64 indexed round, bytes32 modelHash);
    /// @notice Emitted after the last round; `refund` is the unspent escrow owed to the requester.
    event TaskCompleted(uint256 indexed taskId, uint256 refund);
    /// @notice Emitted when a task is cancelled; `refund` is the escrow owed to the requester.
    event TaskCancelled(uint256 indexed taskId, address indexed by, uint256 refund);
    /// @notice Emitted when a requester withdraws its refunds.
    event RefundWithdrawn(address indexed requester, uint256 amount);

    /// @notice Thrown when participant bounds are not 2 <= min <= max <= MAX_PARTICIPANTS.
    error TaskRegistryInvalidParticipantBounds(uint16 minParticipants, uint16 maxParticipants);
    /// @notice Thrown when rounds is zero or the round duration is zero or above MAX_ROUND_DURATION.
    error TaskRegistryInvalidSchedule(uint64 rounds, uint64 roundDuration);
    /// @notice Thrown when the reward per round is zero.
    error TaskRegistryZeroReward();
    /// @notice Thrown when the quality threshold exceeds 10,000 basis points.
    error TaskRegistryInvalidQualityThreshold(uint16 minQuality);
    /// @notice Thrown when a model, key, aggregate or update hash is zero.
    error TaskRegistryZeroHash();
    /// @notice Thrown when an address argument is zero.
    error TaskRegistryZeroAddress();
    /// @notice Thrown when the value sent is not rounds x reward per round.
    error TaskRegistryWrongEscrow(uint256 expected, uint256 sent);
    /// @notice Thrown when no task has id `taskId`.
    error TaskRegistryUnknownTask(uint256 taskId);
    /// @notice Thrown when `caller` is not the task's requester.
    error TaskRegistryNotRequester(uint256 taskId, address caller);
    /// @notice Thrown when `caller` is not the task's aggregator.
    error TaskRegistryNotAggregator(uint256 taskId, address caller);
    /// @notice Thrown when the task is completed or cancelled.
    error TaskRegistryTaskNotLive(uint256 taskId, TaskStatus status);
    /// @notice Thrown when `device` is not an active device of the device registry.
    error TaskRegistryDeviceNotActive(address device);
    /// @notice Thrown when `device` has already joined (or left) the task.
    error TaskRegistryAlreadyJoined(uint256 taskId, address device, MemberStatus status);
    /// @notice Thrown when `account` is not an active participant of the task.
    error TaskRegistryNotParticipant(uint256 taskId, address account);
    /// @notice Thrown when a round is opened before the previous one is closed.
    error TaskRegistryRoundInProgress(uint256 taskId, uint64 round, RoundStage stage);
    /// @notice Thrown when fewer than the minimum of participants are active.
    error TaskRegistryNotEnoughParticipants(uint256 taskId, uint256 have, uint256 need);
    /// @notice Thrown when a round is opened on another model than the task's current one.
    error TaskRegistryModelMismatch(uint256 taskId, bytes32 expected, bytes32 given);
    /// @notice Thrown when `round` is not the task's current round.
    error TaskRegistryWrongRound(uint256 taskId, uint64 round, uint64 current);
    /// @notice Thrown when the round is not in the stage the call needs.
    error TaskRegistryWrongStage(uint256 taskId, uint64 round, RoundStage stage, RoundStage expected);
    /// @notice Thrown when an update is committed after the round's commit deadline.
    error TaskRegistryCommitTooLate(uint256 taskId, uint64 round, uint256 deadline, uint256 nowTs);
    /// @notice Thrown when `device` commits twice in one round.
    error TaskRegistryAlreadyCommitted(uint256 taskId, uint64 round, address device);
    /// @notice Thrown when `device` scores without having committed an update.
    error TaskRegistryNotCommitted(uint256 taskId, uint64 round, address device);
    /// @notice Thrown when scores arrive while updates may still be committed.
    error TaskRegistryScoringNotOpen(uint256 taskId, uint64 round, uint256 opensAfter, uint256 nowTs);
    /// @notice Thrown when scores arrive after the round's score deadline.
    error TaskRegistryScoresTooLate(uint256 taskId, uint64 round, uint256 deadline, uint256 nowTs);
    /// @notice Thrown when `device` scores twice in one round.
    error TaskRegistryAlreadyScored(uint256 taskId, uint64 round, address device);
    /// @notice Thrown when the score list does not have one entry per participant.
    error TaskRegistryScoreCountMismatch(uint256 taskId, uint64 round, uint256 expected, uint256 given);
    /// @notice Thrown when a score exceeds 10,000 basis points.
    error TaskRegistryScoreOutOfRange(uint256 index, uint16 score);
    /// @notice Thrown when a round is finalised before its scores are in or its deadline passed.
    error TaskRegistryRoundNotOver(uint256 taskId, uint64 round, uint256 deadline, uint256 nowTs);
    /// @notice Thrown when `caller` may not cancel yet; anyone may after `stalledAfter`.
    error TaskRegistryCannotCancel(uint256 taskId, address caller, uint256 stalledAfter);
    /// @notice Thrown when `account` has no refund to withdraw.
    error TaskRegistryNothingToRefund(address account);
    /// @notice Thrown when sending `amount` wei to `to` failed.
    error TaskRegistryTransferFailed(address to, uint256 amount);

    /// @notice Publishes a task; `msg.value` must be `rounds * rewardPerRound` and is held in escrow.
    function publishTask(TaskParams calldata params, address aggregator) external payable returns (uint256 taskId);

    /// @notice The requester names (or replaces) the task's aggregator.
    function setAggregator(uint256 taskId, address aggregator) external;

    /// @notice An active registered device joins; it waits when the task is full or already running.
    function join(uint256 taskId) external;

    /// @notice The aggregator opens the next round on the task's current global model.
    function openRound(uint256 taskId, bytes32 globalModelHash) external;

    /// @notice A participant commits the hash of its encrypted update before the commit deadline.
    function commitUpdate(uint256 taskId, uint64 round, bytes32 updateHash) external;

    /// @notice A participant that committed scores every participant (its own entry is ignored).
    function submitScores(uint256 taskId, uint64 round, uint16[] calldata scores) external;

    /// @notice Anyone settles the round: quality, leader, elimination, rewards.
    function finalizeRound(uint256 taskId, uint64 round) external;

    /// @notice The aggregator posts the hash of the homomorphic sum of the accepted updates.
    function submitAggregate(uint256 taskId, uint64 round, bytes32 aggregateHash) external;

    /// @notice The requester posts the round's new global model; after the last round the task completes.
    function publishModel(uint256 taskId, uint64 round, bytes32 modelHash) external;

    /// @notice The requester cancels an idle task, or anyone cancels a stalled one; escrow is refunded.
    function cancelTask(uint256 taskId) external;

    /// @notice Pays the caller's refunds of unspent escrow.
    function withdrawRefund() external returns (uint256 amount);

    function taskCount() external view returns (uint256);
    function taskParams(uint256 taskId) external view returns (TaskParams memory);
    function taskState(uint256 taskId) external view returns (TaskState memory);
    function roundInfo(uint256 taskId, uint64 round) external view returns (RoundInfo memory);
    function submissionOf(uint256 taskId, uint64 round, address device) external view returns (Submission memory);
    function participantsOf(uint256 taskId) external view returns (address[] memory);
    function waitingOf(uint256 taskId) external view returns (address[] memory);
    function memberStatus(uint256 taskId, address device) external view returns (MemberStatus);
    function refundOf(address requester) external view returns (uint256);
    /// @notice Escrow plus refunds owed: always equal to the contract's ETH balance.
    function totalHeld() external view returns (uint256);
}
