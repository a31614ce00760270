// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ITaskRegistry
/// @notice Learning tasks with escrowed rewards. Each round has three phases: train (devices commit
/// the hash of their encrypted update and their ε spent), verify (verifiers commit
/// `keccak(taskId, round, scores, salt, sender)`), reveal (verifiers reveal scores and salt). The
/// contract then computes proof of quality: the median score each update received.
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
    /// @dev Durations in seconds. `epsilonBudget` is in micro-ε (1e-6) at the task's δ.
    /// `verifiersPerUpdate` 0 means every other participant verifies every update. An update is
    /// accepted only if its quality is at least `minQuality` and at most `qualityGap` basis points
    /// below the round's median quality (10,000 turns the relative test off).
    struct TaskParams {
        bytes32 category;
        bytes32 modelHash;
        bytes32 paillierKeyHash;
        uint64 rounds;
        uint64 trainDuration;
        uint64 verifyDuration;
        uint64 revealDuration;
        uint64 gracePeriod;
        uint64 epsilonBudget;
        uint128 rewardPerRound;
        uint16 minParticipants;
        uint16 maxParticipants;
        uint16 minQuality;
        uint16 qualityGap;
        uint16 verifiersPerUpdate;
    }

    /// @notice The moving parts of a task.
    struct TaskState {
        address requester;
        address aggregator;
        TaskStatus status;
        bool restricted;
        uint64 roundsOpened;
        uint64 lastProgressAt;
        uint256 escrow;
        bytes32 currentModel;
        uint256 modelVersion;
    }

    /// @notice One round of a task.
    struct RoundInfo {
        RoundStage stage;
        uint64 commitDeadline;
        uint64 verifyDeadline;
        uint64 revealDeadline;
        uint16 participants;
        uint16 committed;
        uint16 scoreCommitted;
        uint16 revealed;
        uint16 accepted;
        uint16 assignmentSize;
        uint32 assignmentOffset;
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
        bytes32 scoreCommitment;
        uint64 epsilon;
        uint16 quality;
        bool revealed;
        bool accepted;
        uint256 reward;
    }

    /// @notice Emitted when `requester` publishes a task with `escrow` wei held for its rewards:
    /// every parameter, the aggregator named at publication (zero when none yet; later changes
    /// emit {AggregatorSet}) and the allow-list (empty when anyone may join), so a client rebuilds
    /// the task from this event alone.
    event TaskPublished(
        uint256 indexed taskId,
        address indexed requester,
        address indexed aggregator,
        uint256 escrow,
        TaskParams params,
        address[] allowList
    );
    /// @notice Emitted when the requester names the task's aggregator.
    event AggregatorSet(uint256 indexed taskId, address indexed aggregator);
    /// @notice Emitted when a device joins, as a participant or on the waiting list.
    event DeviceJoined(uint256 indexed taskId, address indexed device, bool waiting);
    /// @notice Emitted when the aggregator opens a round on the global model `globalModelHash`.
    /// With N = `participants.length`, participant i scores the updates of participants
    /// (i + 1 + (assignmentOffset + t) mod (N - 1)) mod N for t < `assignmentSize`, in that order
    /// (see {assignmentOf}): the event alone tells every verifier whom it scores.
    event RoundOpened(
        uint256 indexed taskId,
        uint64 indexed round,
        bytes32 globalModelHash,
        uint64 commitDeadline,
        uint64 verifyDeadline,
        uint64 revealDeadline,
        uint16 assignmentSize,
        uint32 assignmentOffset,
        address[] participants
    );
    /// @notice Emitted when a participant commits its encrypted update's hash and its ε spent so far.
    event UpdateCommitted(
        uint256 indexed taskId, uint64 indexed round, address indexed device, bytes32 updateHash, uint64 epsilon
    );
    /// @notice Emitted when a participant commits to its scores.
    event ScoresCommitted(uint256 indexed taskId, uint64 indexed round, address indexed device, bytes32 commitment);
    /// @notice Emitted when a participant reveals the scores of the updates assigned to it.
    event ScoresRevealed(uint256 indexed taskId, uint64 indexed round, address indexed device, uint16[] scores);
    /// @notice Emitted at finalisation for every participant of the round.
    event QualityAssessed(
        uint256 indexed taskId, uint64 indexed round, address indexed device, uint16 quality, bool accepted, uint256 reward
    );
    /// @notice Emitted when a participant leaves the task (worst of the round, or revoked) and
    /// `replacement` (or zero) takes its place.
    event ParticipantEliminated(
        uint256 indexed taskId, uint64 indexed round, address indexed device, address replacement
    );
    /// @notice Emitted when a round's quality, leader, elimination and rewards are settled.
    event RoundFinalized(
        uint256 indexed taskId, uint64 indexed round, address leader, address eliminated, address[] accepted, uint256 rewardPaid
    );
    /// @notice Emitted when the aggregator posts the hash of the homomorphic sum of accepted updates.
    event AggregateSubmitted(uint256 indexed taskId, uint64 indexed round, bytes32 aggregateHash);
    /// @notice Emitted when the requester posts the round's new global model, registered as `versionId`.
    event ModelPublished(uint256 indexed taskId, uint64 indexed round, bytes32 modelHash, uint256 versionId);
    /// @notice Emitted after the last round; `refund` is the unspent escrow owed to the requester.
    event TaskCompleted(uint256 indexed taskId, uint256 refund);
    /// @notice Emitted when a task is cancelled; `refund` is the escrow owed to the requester.
    event TaskCancelled(uint256 indexed taskId, address indexed by, uint256 refund);
    /// @notice Emitted when a requester withdraws its refunds.
    event RefundWithdrawn(address indexed requester, uint256 amount);

    /// @notice Thrown when participant bounds are not 2 <= min <= max <= MAX_PARTICIPANTS.
    error TaskRegistryInvalidParticipantBounds(uint16 minParticipants, uint16 maxParticipants);
    /// @notice Thrown when rounds is zero, or a phase or the grace period is zero or above MAX_PHASE_DURATION.
    error TaskRegistryInvalidSchedule(uint64 rounds, uint64 trainDuration, uint64 verifyDuration, uint64 revealDuration, uint64 gracePeriod);
    /// @notice Thrown when the reward per round is zero.
    error TaskRegistryZeroReward();
    /// @notice Thrown when the quality threshold exceeds 10,000 basis points.
    error TaskRegistryInvalidQualityThreshold(uint16 minQuality);
    /// @notice Thrown when the ε budget is zero.
    error TaskRegistryZeroEpsilonBudget();
    /// @notice Thrown when each update would get more than MAX_VERIFIERS verifiers (with
    /// `verifiersPerUpdate` 0, every other participant: maxParticipants - 1).
    error TaskRegistryTooManyVerifiers(uint16 verifiersPerUpdate, uint16 maxParticipants, uint256 maximum);
    /// @notice Thrown when the allow-list is longer than MAX_ALLOW_LIST.
    error TaskRegistryAllowListTooLong(uint256 length, uint256 maximum);
    /// @notice Thrown when a model, key, aggregate, update or commitment hash is zero.
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
    /// @notice Thrown when the task has an allow-list that names neither `device` nor its owner.
    error TaskRegistryNotAllowed(uint256 taskId, address device);
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
    /// @notice Thrown when an update is committed after the round's commit deadline (T1).
    error TaskRegistryCommitTooLate(uint256 taskId, uint64 round, uint256 deadline, uint256 nowTs);
    /// @notice Thrown when `device` commits twice in one round.
    error TaskRegistryAlreadyCommitted(uint256 taskId, uint64 round, address device);
    /// @notice Thrown when a commit reports less ε than the device already spent in the task.
    error TaskRegistryEpsilonDecreased(uint256 taskId, address device, uint64 recorded, uint64 reported);
    /// @notice Thrown when a commit would take the device's ε past the task's budget.
    error TaskRegistryPrivacyBudgetExceeded(uint256 taskId, address device, uint64 epsilon, uint64 budget);
    /// @notice Thrown when `device` commits or reveals scores without having committed an update.
    error TaskRegistryNotCommitted(uint256 taskId, uint64 round, address device);
    /// @notice Thrown when a phase is used before it opens (`opensAfter` is the previous deadline).
    error TaskRegistryPhaseNotOpen(uint256 taskId, uint64 round, uint256 opensAfter, uint256 nowTs);
    /// @notice Thrown when a phase is used after its deadline.
    error TaskRegistryPhaseClosed(uint256 taskId, uint64 round, uint256 deadline, uint256 nowTs);
    /// @notice Thrown when `device` commits scores twice in one round.
    error TaskRegistryAlreadyScored(uint256 taskId, uint64 round, address device);
    /// @notice Thrown when `device` reveals without a score commitment.
    error TaskRegistryNoScoreCommitment(uint256 taskId, uint64 round, address device);
    /// @notice Thrown when `device` reveals twice.
    error TaskRegistryAlreadyRevealed(uint256 taskId, uint64 round, address device);
    /// @notice Thrown when revealed scores and salt do not hash to the commitment.
    error TaskRegistryRevealMismatch(uint256 taskId, uint64 round, address device, bytes32 commitment, bytes32 computed);
    /// @notice Thrown when the score list does not have one entry per assigned update.
    error TaskRegistryScoreCountMismatch(uint256 taskId, uint64 round, uint256 expected, uint256 given);
    /// @notice Thrown when a score exceeds 10,000 basis points.
    error TaskRegistryScoreOutOfRange(uint256 index, uint16 score);
    /// @notice Thrown when a round is finalised before its reveals are in or its reveal deadline passed.
    error TaskRegistryRoundNotOver(uint256 taskId, uint64 round, uint256 deadline, uint256 nowTs);
    /// @notice Thrown when `caller` may not cancel yet; anyone may after `stalledAfter`.
    error TaskRegistryCannotCancel(uint256 taskId, address caller, uint256 stalledAfter);
    /// @notice Thrown when `account` has no refund to withdraw.
    error TaskRegistryNothingToRefund(address account);
    /// @notice Thrown when sending `amount` wei to `to` failed.
    error TaskRegistryTransferFailed(address to, uint256 amount);

    /// @notice Publishes a task; `msg.value` must be `rounds * rewardPerRound` and is held in escrow.
    /// A non-empty `allowList` (devices or owners) restricts who may join.
    function publishTask(TaskParams calldata params, address aggregator, address[] calldata allowList)
        external
        payable
        returns (uint256 taskId);

    /// @notice The requester names (or replaces) the task's aggregator.
    function setAggregator(uint256 taskId, address aggregator) external;

    /// @notice An active registered (and allowed) device joins; it waits when the task is full or running.
    function join(uint256 taskId) external;

    /// @notice The aggregator opens the next round on the task's current global model.
    function openRound(uint256 taskId, bytes32 globalModelHash) external;

    /// @notice Train phase: a participant commits its encrypted update's hash and the ε it has spent
    /// in this task so far (micro-ε, never decreasing, at most the task's budget).
    function commitUpdate(uint256 taskId, uint64 round, bytes32 updateHash, uint64 epsilon) external;

    /// @notice Verify phase: a participant that committed an update commits to its scores.
    function commitScores(uint256 taskId, uint64 round, bytes32 commitment) external;

    /// @notice Reveal phase: the scores of the assigned updates (see {assignmentOf}) and the salt.
    function revealScores(uint256 taskId, uint64 round, uint16[] calldata scores, bytes32 salt) external;

    /// @notice Anyone settles the round: quality, leader, elimination, rewards.
    function finalizeRound(uint256 taskId, uint64 round) external;

    /// @notice The aggregator posts the hash of the homomorphic sum of the accepted updates.
    function submitAggregate(uint256 taskId, uint64 round, bytes32 aggregateHash) external;

    /// @notice The requester posts the round's new global model, registered as a model version;
    /// after the last round the task completes.
    function publishModel(uint256 taskId, uint64 round, bytes32 modelHash, string calldata uri, bytes32 metricsHash)
        external;

    /// @notice The requester cancels an idle task, or anyone cancels a stalled one; escrow is refunded.
    function cancelTask(uint256 taskId) external;

    /// @notice Pays the caller's refunds of unspent escrow.
    function withdrawRefund() external returns (uint256 amount);

    /// @notice The score commitment a participant must post: keccak256(abi.encode(taskId, round,
    /// scores, salt, device)). Binding the sender makes a copied commitment unrevealable.
    function scoreCommitment(uint256 taskId, uint64 round, uint16[] calldata scores, bytes32 salt, address device)
        external
        pure
        returns (bytes32);

    /// @notice The participants whose updates `device` must score in the current, open `round`, in
    /// score order. Participant i scores participant (i + 1 + (offset + t) mod (N - 1)) mod N for
    /// t < assignmentSize: each update gets exactly assignmentSize verifiers, never itself.
    function assignmentOf(uint256 taskId, uint64 round, address device) external view returns (address[] memory);

    /// @notice The participants that score `device`'s update in the current, open `round`.
    function verifiersOf(uint256 taskId, uint64 round, address device) external view returns (address[] memory);

    function taskCount() external view returns (uint256);
    function taskParams(uint256 taskId) external view returns (TaskParams memory);
    function taskState(uint256 taskId) external view returns (TaskState memory);
    function roundInfo(uint256 taskId, uint64 round) external view returns (RoundInfo memory);
    function submissionOf(uint256 taskId, uint64 round, address device) external view returns (Submission memory);
    function participantsOf(uint256 taskId) external view returns (address[] memory);
    function waitingOf(uint256 taskId) external view returns (address[] memory);
    function memberStatus(uint256 taskId, address device) external view returns (MemberStatus);
    function epsilonOf(uint256 taskId, address device) external view returns (uint64);
    function isAllowed(uint256 taskId, address device) external view returns (bool);
    function refundOf(address requester) external view returns (uint256);
    /// @notice Escrow plus refunds owed: always equal to the contract's ETH balance.
    function totalHeld() external view returns (uint256);
}
