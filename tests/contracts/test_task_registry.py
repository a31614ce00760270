"""TaskRegistry: escrowed tasks, participants, rounds, proof of quality and rewards."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from offchain.chain.types import MemberStatus, RoundStage, Submission, TaskStatus
from tests.conftest import task_params
from tests.contracts.helpers import (
    ETHER,
    MODEL,
    STALL_FACTOR,
    ZERO_ADDRESS,
    ZERO_HASH,
    ContractWallet,
    addresses,
    advance_past,
    assert_solvent,
    close_round,
    commit_updates,
    expected_round,
    finalize,
    gas_cost,
    gt,
    h,
    open_round,
    play_round,
    publish_task,
    reverts_with,
    selector,
    setup_task,
    submit_scores,
    update_hash,
)

# Devices 0-3 belong to `owner`, 4-5 to `other_owner` (registered once for the module).
pytestmark = pytest.mark.usefixtures("registered")

DURATION = task_params().round_duration


def block_time(fs, receipt) -> int:
    return int(fs.chain.w3.eth.get_block(receipt.block_number)["timestamp"])


def finalize_raw(fs, caller, task_id, round_):
    return fs.chain.transact(caller, fs.tasks.functions.finalizeRound(task_id, round_))


def open_task(fs, actors, n=3, **overrides):
    """A task with `n` participants and round 0 open."""
    task_id, devices = setup_task(fs, actors, n, **overrides)
    open_round(fs, actors, task_id)
    return task_id, devices


def scoring_task(fs, actors, n=3, **overrides):
    """A task whose round 0 has every participant committed (so scoring is open)."""
    task_id, devices = open_task(fs, actors, n, **overrides)
    commit_updates(fs, task_id, 0, devices)
    return task_id, devices


def finalized_task(fs, actors, n=3, **overrides):
    """A task whose round 0 is finalised with rewards paid (stage Finalized)."""
    task_id, devices = scoring_task(fs, actors, n, **overrides)
    submit_scores(fs, task_id, 0, {d: [7000] * n for d in devices})
    fs.finalize_round(actors.stranger, task_id, 0)
    return task_id, devices


def _class_state(chain, build):
    """Builds a state once for a test class; each test still reverts to it (``fs``)."""
    snap = chain.snapshot()
    yield build()
    chain.revert(snap)


@pytest.fixture(scope="class")
def round_open(system, chain, actors, registered):
    """(task id, devices): three participants, round 0 open, nothing committed."""
    yield from _class_state(chain, lambda: open_task(system, actors, 3))


@pytest.fixture(scope="class")
def all_committed(system, chain, actors, registered):
    """(task id, devices): round 0 with all three participants committed."""
    yield from _class_state(chain, lambda: scoring_task(system, actors, 3))


@pytest.fixture(scope="class")
def round_finalized(system, chain, actors, registered):
    """(task id, devices): round 0 finalised with its reward paid (stage Finalized)."""
    yield from _class_state(chain, lambda: finalized_task(system, actors, 3))


# ================================================================ publishTask


def test_publish_task_escrows_the_reward_and_records_the_task(fs, actors):
    params = task_params(rounds=3, reward_per_round=2 * ETHER)
    before = fs.chain.balance(actors.requester.address)
    task_id, receipt = fs.publish_task(
        actors.requester, params, actors.aggregator.address
    )

    assert task_id == 1 and fs.task_count() == 1
    assert fs.task_params(task_id) == params
    state = fs.task_state(task_id)
    assert state.requester == actors.requester.address
    assert state.aggregator == actors.aggregator.address
    assert state.status is TaskStatus.OPEN
    assert state.rounds_opened == 0
    assert state.last_progress_at == block_time(fs, receipt)
    assert state.escrow == 6 * ETHER
    assert state.current_model == params.model_hash
    assert fs.chain.balance(actors.requester.address) == before - 6 * ETHER - gas_cost(
        receipt
    )
    assert fs.chain.balance(fs.tasks.address) == fs.total_held() == 6 * ETHER
    (event,) = fs.tasks.events.TaskPublished().process_receipt(
        receipt.raw, errors=DISCARD
    )
    assert (
        event.args.taskId,
        event.args.requester,
        event.args.rounds,
        event.args.rewardPerRound,
        event.args.escrow,
    ) == (1, actors.requester.address, 3, 2 * ETHER, 6 * ETHER)


def test_publish_task_numbers_tasks_from_one(fs, actors):
    assert [publish_task(fs, actors) for _ in range(3)] == [1, 2, 3]
    assert fs.task_count() == 3
    assert fs.total_held() == 3 * task_params().escrow


def test_publish_task_without_aggregator_leaves_it_unset(fs, actors):
    task_id = publish_task(fs, actors, with_aggregator=False)
    assert fs.task_state(task_id).aggregator == ZERO_ADDRESS


@pytest.mark.parametrize("minimum, maximum", [(2, 2), (2, 64), (64, 64)])
def test_publish_task_accepts_participant_bounds_within_limits(
    fs, actors, minimum, maximum
):
    task_id = publish_task(
        fs, actors, min_participants=minimum, max_participants=maximum
    )
    assert fs.task_params(task_id).max_participants == maximum


@pytest.mark.parametrize(
    "minimum, maximum", [(0, 4), (1, 4), (5, 4), (2, 65), (65, 65), (3, 0)]
)
def test_publish_task_with_bad_bounds_reverts_with_InvalidParticipantBounds(
    fs, actors, minimum, maximum
):
    with reverts_with("TaskRegistryInvalidParticipantBounds", minimum, maximum):
        publish_task(fs, actors, min_participants=minimum, max_participants=maximum)


@pytest.mark.parametrize(
    "rounds, duration",
    [(0, 600), (2, 0), (0, 0), (2, 365 * 24 * 3600 + 1), (2, 2**64 // 3 + 1), (2, 2**64 - 1)],
)
def test_publish_task_with_empty_or_overlong_schedule_reverts_with_InvalidSchedule(
    fs, actors, rounds, duration
):
    params = task_params(rounds=rounds, round_duration=duration)
    with reverts_with("TaskRegistryInvalidSchedule", rounds, duration):
        fs.chain.transact(
            actors.requester,
            fs.tasks.functions.publishTask(
                params.as_tuple(), actors.aggregator.address
            ),
            value=params.escrow,
        )


def test_publish_task_with_zero_reward_reverts_with_ZeroReward(fs, actors):
    with reverts_with("TaskRegistryZeroReward"):
        publish_task(fs, actors, reward_per_round=0)


@pytest.mark.parametrize("threshold", [10_001, 65_535])
def test_publish_task_with_threshold_above_100_percent_reverts_with_InvalidQualityThreshold(
    fs, actors, threshold
):
    with reverts_with("TaskRegistryInvalidQualityThreshold", threshold):
        publish_task(fs, actors, min_quality=threshold)


def test_publish_task_accepts_a_threshold_of_exactly_100_percent(fs, actors):
    task_id = publish_task(fs, actors, min_quality=10_000)
    assert fs.task_params(task_id).min_quality == 10_000


@pytest.mark.parametrize("field", ["model_hash", "paillier_key_hash"])
def test_publish_task_with_zero_hash_reverts_with_ZeroHash(fs, actors, field):
    with reverts_with("TaskRegistryZeroHash"):
        publish_task(fs, actors, **{field: ZERO_HASH})


@pytest.mark.parametrize("delta", [-task_params().escrow, -1, 1])
def test_publish_task_with_wrong_escrow_reverts_with_WrongEscrow(fs, actors, delta):
    params = task_params()
    with reverts_with("TaskRegistryWrongEscrow", params.escrow, params.escrow + delta):
        fs.chain.transact(
            actors.requester,
            fs.tasks.functions.publishTask(
                params.as_tuple(), actors.aggregator.address
            ),
            value=params.escrow + delta,
        )


# ================================================================ unknown tasks


def _calls(fs, actors, task_id):
    """Every external function that needs a live task, as a call on `task_id`."""
    d0, newcomer = actors.devices[0], actors.devices[4]
    return {
        "setAggregator": lambda: fs.set_aggregator(
            actors.requester, task_id, actors.stranger.address
        ),
        "join": lambda: fs.join(newcomer, task_id),
        "openRound": lambda: fs.open_round(actors.aggregator, task_id, MODEL),
        "commitUpdate": lambda: fs.commit_update(d0, task_id, 0, h(1)),
        "submitScores": lambda: fs.submit_scores(d0, task_id, 0, [0, 0, 0]),
        "finalizeRound": lambda: finalize_raw(fs, actors.stranger, task_id, 0),
        "submitAggregate": lambda: fs.submit_aggregate(
            actors.aggregator, task_id, 0, h(2)
        ),
        "publishModel": lambda: fs.publish_model(actors.requester, task_id, 0, h(3)),
        "cancelTask": lambda: fs.cancel_task(actors.requester, task_id),
    }


LIVE_FUNCTIONS = [
    "setAggregator",
    "join",
    "openRound",
    "commitUpdate",
    "submitScores",
    "finalizeRound",
    "submitAggregate",
    "publishModel",
    "cancelTask",
]


@pytest.mark.parametrize("function", LIVE_FUNCTIONS)
def test_calls_on_unknown_task_revert_with_UnknownTask(fs, actors, function):
    publish_task(fs, actors)
    for task_id in (0, 2):
        with reverts_with("TaskRegistryUnknownTask", task_id):
            _calls(fs, actors, task_id)[function]()


# ================================================================ setAggregator


def test_requester_sets_and_replaces_the_aggregator(fs, actors):
    task_id = publish_task(fs, actors, with_aggregator=False)
    fs.set_aggregator(actors.requester, task_id, actors.stranger.address)
    assert fs.task_state(task_id).aggregator == actors.stranger.address
    fs.set_aggregator(actors.requester, task_id, actors.aggregator.address)
    assert fs.task_state(task_id).aggregator == actors.aggregator.address


def test_replaced_aggregator_loses_its_rights(fs, actors):
    task_id, _ = setup_task(fs, actors, 3)
    fs.set_aggregator(actors.requester, task_id, actors.stranger.address)
    with reverts_with("TaskRegistryNotAggregator", task_id, actors.aggregator.address):
        fs.open_round(actors.aggregator, task_id, MODEL)
    fs.open_round(actors.stranger, task_id, MODEL)
    assert fs.round_info(task_id, 0).stage is RoundStage.OPEN


@pytest.mark.parametrize("caller", ["stranger", "aggregator", "owner"])
def test_set_aggregator_by_non_requester_reverts_with_NotRequester(fs, actors, caller):
    task_id = publish_task(fs, actors)
    wallet = getattr(actors, caller)
    with reverts_with("TaskRegistryNotRequester", task_id, wallet.address):
        fs.set_aggregator(wallet, task_id, wallet.address)


def test_set_aggregator_to_zero_reverts_with_ZeroAddress(fs, actors):
    task_id = publish_task(fs, actors)
    with reverts_with("TaskRegistryZeroAddress"):
        fs.set_aggregator(actors.requester, task_id, ZERO_ADDRESS)


# ================================================================ join


def test_join_adds_active_participants_in_order(fs, actors):
    task_id = publish_task(fs, actors)
    devices = actors.devices[:3]
    for device in devices:
        receipt = fs.join(device, task_id)
    (event,) = fs.tasks.events.DeviceJoined().process_receipt(
        receipt.raw, errors=DISCARD
    )
    assert event.args.waiting is False
    assert fs.participants(task_id) == addresses(devices)
    assert fs.waiting(task_id) == []
    assert all(
        fs.member_status(task_id, d.address) is MemberStatus.ACTIVE for d in devices
    )
    assert fs.member_status(task_id, actors.devices[3].address) is MemberStatus.NONE


def test_join_beyond_max_participants_goes_to_the_waiting_list(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, max_participants=4)
    late = actors.devices[4:6]
    for device in late:
        receipt = fs.join(device, task_id)
    (event,) = fs.tasks.events.DeviceJoined().process_receipt(
        receipt.raw, errors=DISCARD
    )
    assert event.args.waiting is True
    assert fs.participants(task_id) == addresses(devices)
    assert fs.waiting(task_id) == addresses(late)
    assert all(
        fs.member_status(task_id, d.address) is MemberStatus.WAITING for d in late
    )


def test_join_after_round_zero_opened_waits_even_when_not_full(fs, actors):
    task_id, devices = open_task(fs, actors, 3, max_participants=6)
    fs.join(actors.devices[3], task_id)
    assert fs.participants(task_id) == addresses(devices)
    assert fs.waiting(task_id) == [actors.devices[3].address]
    assert fs.member_status(task_id, actors.devices[3].address) is MemberStatus.WAITING
    assert fs.round_info(task_id, 0).participants == 3


def test_join_by_unregistered_account_reverts_with_DeviceNotActive(fs, actors):
    task_id = publish_task(fs, actors)
    with reverts_with("TaskRegistryDeviceNotActive", actors.stranger.address):
        fs.join(actors.stranger, task_id)


def test_join_by_revoked_device_reverts_with_DeviceNotActive(fs, actors):
    task_id = publish_task(fs, actors)
    device = actors.devices[0]
    fs.revoke_device(actors.owner, device.address)
    with reverts_with("TaskRegistryDeviceNotActive", device.address):
        fs.join(device, task_id)


def test_join_twice_as_participant_reverts_with_AlreadyJoined(fs, actors):
    task_id, (device, *_) = setup_task(fs, actors, 3)
    with reverts_with(
        "TaskRegistryAlreadyJoined", task_id, device.address, MemberStatus.ACTIVE
    ):
        fs.join(device, task_id)


def test_join_twice_while_waiting_reverts_with_AlreadyJoined(fs, actors):
    task_id, _ = setup_task(fs, actors, 4, max_participants=4)
    late = actors.devices[4]
    fs.join(late, task_id)
    with reverts_with(
        "TaskRegistryAlreadyJoined", task_id, late.address, MemberStatus.WAITING
    ):
        fs.join(late, task_id)


def test_rejoin_after_elimination_reverts_with_AlreadyJoined(fs, actors):
    task_id, devices = scoring_task(fs, actors, 4, max_participants=4)
    submit_scores(fs, task_id, 0, {d: [8000, 7000, 6000, 5000] for d in devices})
    outcome = fs.finalize_round(actors.stranger, task_id, 0)
    worst = devices[3]
    assert outcome.eliminated == worst.address
    with reverts_with(
        "TaskRegistryAlreadyJoined", task_id, worst.address, MemberStatus.ELIMINATED
    ):
        fs.join(worst, task_id)


def test_membership_is_per_task(fs, actors):
    first, devices = setup_task(fs, actors, 3)
    second = publish_task(fs, actors)
    fs.join(devices[0], second)
    assert fs.participants(second) == [devices[0].address]
    assert fs.member_status(first, devices[0].address) is MemberStatus.ACTIVE


# ================================================================ openRound


def test_open_round_starts_round_zero_with_deadlines_and_participants(fs, actors):
    task_id, devices = setup_task(fs, actors, 3)
    receipt = fs.open_round(actors.aggregator, task_id, MODEL)
    opened_at = block_time(fs, receipt)

    info = fs.round_info(task_id, 0)
    assert info.stage is RoundStage.OPEN
    assert info.commit_deadline == opened_at + DURATION
    assert info.score_deadline == opened_at + 2 * DURATION
    assert info.participants == 3
    assert (info.committed, info.scored, info.accepted, info.reward_paid) == (
        0,
        0,
        0,
        0,
    )
    assert info.global_model_hash == MODEL
    state = fs.task_state(task_id)
    assert state.status is TaskStatus.RUNNING
    assert state.rounds_opened == 1
    assert state.last_progress_at == opened_at
    (event,) = fs.tasks.events.RoundOpened().process_receipt(
        receipt.raw, errors=DISCARD
    )
    assert list(event.args.participants) == addresses(devices)


@pytest.mark.parametrize("caller", ["stranger", "requester"])
def test_open_round_by_non_aggregator_reverts_with_NotAggregator(fs, actors, caller):
    task_id, _ = setup_task(fs, actors, 3)
    wallet = getattr(actors, caller)
    with reverts_with("TaskRegistryNotAggregator", task_id, wallet.address):
        fs.open_round(wallet, task_id, MODEL)


def test_open_round_without_aggregator_reverts_with_NotAggregator(fs, actors):
    task_id = publish_task(fs, actors, with_aggregator=False)
    with reverts_with("TaskRegistryNotAggregator", task_id, actors.requester.address):
        fs.open_round(actors.requester, task_id, MODEL)


@pytest.mark.parametrize("joined", [0, 2])
def test_open_round_below_minimum_reverts_with_NotEnoughParticipants(
    fs, actors, joined
):
    task_id, _ = setup_task(fs, actors, joined, min_participants=3)
    with reverts_with("TaskRegistryNotEnoughParticipants", task_id, joined, 3):
        fs.open_round(actors.aggregator, task_id, MODEL)


def test_open_round_on_another_model_reverts_with_ModelMismatch(fs, actors):
    task_id, _ = setup_task(fs, actors, 3)
    with reverts_with("TaskRegistryModelMismatch", task_id, MODEL, h(9)):
        fs.open_round(actors.aggregator, task_id, h(9))


def test_next_round_opens_on_the_published_model_only(fs, actors):
    task_id, _ = finalized_task(fs, actors, 3)
    close_round(fs, actors, task_id, 0, new_model=h(77))
    with reverts_with("TaskRegistryModelMismatch", task_id, h(77), MODEL):
        fs.open_round(actors.aggregator, task_id, MODEL)
    fs.open_round(actors.aggregator, task_id, h(77))
    assert fs.round_info(task_id, 1).global_model_hash == h(77)
    assert fs.task_state(task_id).rounds_opened == 2


@pytest.mark.parametrize(
    "stage", [RoundStage.OPEN, RoundStage.FINALIZED, RoundStage.AGGREGATED]
)
def test_open_round_before_previous_is_closed_reverts_with_RoundInProgress(
    fs, actors, stage
):
    task_id, devices = open_task(fs, actors, 3)
    if stage is not RoundStage.OPEN:
        commit_updates(fs, task_id, 0, devices)
        submit_scores(fs, task_id, 0, {d: [7000] * 3 for d in devices})
        fs.finalize_round(actors.stranger, task_id, 0)
    if stage is RoundStage.AGGREGATED:
        fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))
    assert fs.round_info(task_id, 0).stage is stage
    with reverts_with("TaskRegistryRoundInProgress", task_id, 0, stage):
        fs.open_round(actors.aggregator, task_id, MODEL)


# ================================================================ commitUpdate


class TestCommitUpdate:
    """Participants commit the hashes of their encrypted updates."""

    def test_commit_update_records_the_hash(self, fs, actors, round_open):
        task_id, devices = round_open
        receipt = fs.commit_update(devices[1], task_id, 0, h(42))
        assert fs.submission(task_id, 0, devices[1].address).update_hash == h(42)
        assert fs.submission(task_id, 0, devices[0].address).update_hash == ZERO_HASH
        assert fs.round_info(task_id, 0).committed == 1
        (event,) = fs.tasks.events.UpdateCommitted().process_receipt(
            receipt.raw, errors=DISCARD
        )
        assert (event.args.device, event.args.updateHash) == (devices[1].address, h(42))

    def test_commit_before_any_round_reverts_with_WrongRound(self, fs, actors):
        task_id, (device, *_) = setup_task(fs, actors, 3)
        with reverts_with("TaskRegistryWrongRound", task_id, 0, 0):
            fs.commit_update(device, task_id, 0, h(1))

    @pytest.mark.parametrize("round_", [1, 7])
    def test_commit_to_another_round_reverts_with_WrongRound(
        self, fs, actors, round_, round_open
    ):
        task_id, (device, *_) = round_open
        with reverts_with("TaskRegistryWrongRound", task_id, round_, 0):
            fs.commit_update(device, task_id, round_, h(1))

    def test_commit_to_a_past_round_reverts_with_WrongRound(
        self, fs, actors, round_finalized
    ):
        task_id, devices = round_finalized
        close_round(fs, actors, task_id, 0)
        open_round(fs, actors, task_id)
        with reverts_with("TaskRegistryWrongRound", task_id, 0, 1):
            fs.commit_update(devices[0], task_id, 0, h(1))

    def test_commit_after_finalisation_reverts_with_WrongStage(
        self, fs, actors, round_finalized
    ):
        task_id, devices = round_finalized
        with reverts_with(
            "TaskRegistryWrongStage", task_id, 0, RoundStage.FINALIZED, RoundStage.OPEN
        ):
            fs.commit_update(devices[0], task_id, 0, h(1))

    @pytest.mark.parametrize("who", ["stranger", "waiting"])
    def test_commit_by_non_participant_reverts_with_NotParticipant(
        self, fs, actors, who, round_open
    ):
        task_id, _ = round_open
        wallet = actors.stranger
        if who == "waiting":
            wallet = actors.devices[3]
            fs.join(wallet, task_id)
        with reverts_with("TaskRegistryNotParticipant", task_id, wallet.address):
            fs.commit_update(wallet, task_id, 0, h(1))

    def test_commit_by_participant_revoked_since_joining_reverts_with_DeviceNotActive(
        self, fs, actors, round_open
    ):
        task_id, (device, *_) = round_open
        fs.revoke_device(actors.owner, device.address)
        with reverts_with("TaskRegistryDeviceNotActive", device.address):
            fs.commit_update(device, task_id, 0, h(1))

    def test_commit_after_deadline_reverts_with_CommitTooLate(
        self, fs, actors, round_open
    ):
        task_id, (device, *_) = round_open
        info = fs.round_info(task_id, 0)
        advance_past(fs, info.commit_deadline)
        with reverts_with(
            "TaskRegistryCommitTooLate",
            task_id,
            0,
            info.commit_deadline,
            gt(info.commit_deadline),
        ) as err:
            fs.commit_update(device, task_id, 0, h(1))
        assert err.value.error_args["deadline"] == info.commit_deadline

    def test_commit_just_before_deadline_succeeds(self, fs, actors, round_open):
        task_id, (device, *_) = round_open
        info = fs.round_info(task_id, 0)
        fs.chain.advance_time(info.commit_deadline - fs.chain.now() - 5)
        receipt = fs.commit_update(device, task_id, 0, h(1))
        assert block_time(fs, receipt) <= info.commit_deadline

    def test_commit_of_zero_hash_reverts_with_ZeroHash(self, fs, actors, round_open):
        task_id, (device, *_) = round_open
        with reverts_with("TaskRegistryZeroHash"):
            fs.commit_update(device, task_id, 0, ZERO_HASH)

    def test_commit_twice_reverts_with_AlreadyCommitted(self, fs, actors, round_open):
        task_id, (device, *_) = round_open
        fs.commit_update(device, task_id, 0, h(1))
        with reverts_with("TaskRegistryAlreadyCommitted", task_id, 0, device.address):
            fs.commit_update(device, task_id, 0, h(2))
        assert fs.submission(task_id, 0, device.address).update_hash == h(1)


# ================================================================ submitScores


class TestSubmitScores:
    """Committers score every participant once commits are closed."""

    def test_scores_are_recorded_once_everyone_committed_before_the_deadline(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        info = fs.round_info(task_id, 0)
        assert fs.chain.now() < info.commit_deadline
        receipt = fs.submit_scores(devices[0], task_id, 0, [0, 6000, 7000])
        sub = fs.submission(task_id, 0, devices[0].address)
        assert sub.scored is True and sub.quality == 0  # quality is set at finalisation
        assert fs.round_info(task_id, 0).scored == 1
        (event,) = fs.tasks.events.ScoresSubmitted().process_receipt(
            receipt.raw, errors=DISCARD
        )
        assert list(event.args.scores) == [0, 6000, 7000]

    def test_scores_after_the_commit_deadline_are_accepted_from_committers(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        advance_past(fs, fs.round_info(task_id, 0).commit_deadline)
        fs.submit_scores(devices[0], task_id, 0, [0, 6000, 7000])
        assert fs.round_info(task_id, 0).scored == 1

    def test_scores_while_commits_are_open_revert_with_ScoringNotOpen(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        info = fs.round_info(task_id, 0)
        with reverts_with(
            "TaskRegistryScoringNotOpen",
            task_id,
            0,
            info.commit_deadline,
            lambda now: now <= info.commit_deadline,
        ):
            fs.submit_scores(devices[0], task_id, 0, [0, 6000, 7000])

    def test_scores_after_the_score_deadline_revert_with_ScoresTooLate(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        info = fs.round_info(task_id, 0)
        advance_past(fs, info.score_deadline)
        with reverts_with(
            "TaskRegistryScoresTooLate",
            task_id,
            0,
            info.score_deadline,
            gt(info.score_deadline),
        ):
            fs.submit_scores(devices[0], task_id, 0, [0, 6000, 7000])

    def test_scores_from_a_participant_that_did_not_commit_revert_with_NotCommitted(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        advance_past(fs, fs.round_info(task_id, 0).commit_deadline)
        with reverts_with("TaskRegistryNotCommitted", task_id, 0, devices[2].address):
            fs.submit_scores(devices[2], task_id, 0, [6000, 7000, 0])

    def test_scores_from_non_participant_revert_with_NotParticipant(
        self, fs, actors, all_committed
    ):
        task_id, _ = all_committed
        with reverts_with(
            "TaskRegistryNotParticipant", task_id, actors.stranger.address
        ):
            fs.submit_scores(actors.stranger, task_id, 0, [0, 0, 0])

    def test_scoring_twice_reverts_with_AlreadyScored(self, fs, actors, all_committed):
        task_id, devices = all_committed
        fs.submit_scores(devices[0], task_id, 0, [0, 6000, 7000])
        with reverts_with("TaskRegistryAlreadyScored", task_id, 0, devices[0].address):
            fs.submit_scores(devices[0], task_id, 0, [0, 6000, 7000])

    @pytest.mark.parametrize("given", [0, 2, 4])
    def test_scores_not_one_per_participant_revert_with_ScoreCountMismatch(
        self, fs, actors, given, all_committed
    ):
        task_id, devices = all_committed
        with reverts_with("TaskRegistryScoreCountMismatch", task_id, 0, 3, given):
            fs.submit_scores(devices[0], task_id, 0, [5000] * given)

    @pytest.mark.parametrize("index, score", [(0, 10_001), (1, 10_001), (2, 65_535)])
    def test_score_above_100_percent_reverts_with_ScoreOutOfRange(
        self, fs, actors, index, score, all_committed
    ):
        task_id, devices = all_committed
        scores = [10_000] * 3
        scores[index] = score
        with reverts_with("TaskRegistryScoreOutOfRange", index, score):
            fs.submit_scores(devices[0], task_id, 0, scores)

    def test_own_score_is_ignored(self, fs, actors, all_committed):
        task_id, devices = all_committed
        submit_scores(
            fs,
            task_id,
            0,
            {
                devices[0]: [10_000, 6000, 6000],
                devices[1]: [6000, 10_000, 6000],
                devices[2]: [6000, 6000, 10_000],
            },
        )
        outcome = fs.finalize_round(actors.stranger, task_id, 0)
        assert set(outcome.quality.values()) == {6000}


# ================================================================ finalizeRound: timing


class TestFinalizeRoundTiming:
    """When a round may be finalised."""

    def test_finalize_while_commits_are_open_reverts_with_RoundNotOver(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        info = fs.round_info(task_id, 0)
        with reverts_with(
            "TaskRegistryRoundNotOver",
            task_id,
            0,
            info.score_deadline,
            lambda now: now <= info.score_deadline,
        ):
            finalize_raw(fs, actors.stranger, task_id, 0)

    def test_finalize_before_everyone_scored_reverts_with_RoundNotOver(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        submit_scores(fs, task_id, 0, {d: [7000] * 3 for d in devices[:2]})
        info = fs.round_info(task_id, 0)
        with reverts_with(
            "TaskRegistryRoundNotOver",
            task_id,
            0,
            info.score_deadline,
            lambda now: now <= info.score_deadline,
        ):
            finalize_raw(fs, actors.stranger, task_id, 0)
        advance_past(fs, info.score_deadline)
        finalize_raw(fs, actors.stranger, task_id, 0)
        assert fs.round_info(task_id, 0).stage is RoundStage.FINALIZED

    def test_finalize_is_allowed_early_once_every_committer_scored(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        info = fs.round_info(task_id, 0)
        advance_past(fs, info.commit_deadline)
        submit_scores(fs, task_id, 0, {d: [7000] * 3 for d in devices[:2]})
        assert fs.chain.now() < info.score_deadline
        finalize_raw(fs, actors.stranger, task_id, 0)

    def test_finalize_twice_reverts_with_WrongStage(self, fs, actors, round_finalized):
        task_id, _ = round_finalized
        with reverts_with(
            "TaskRegistryWrongStage", task_id, 0, RoundStage.FINALIZED, RoundStage.OPEN
        ):
            finalize_raw(fs, actors.stranger, task_id, 0)

    def test_finalize_of_unopened_round_reverts_with_WrongRound(
        self, fs, actors, round_open
    ):
        task_id, _ = round_open
        with reverts_with("TaskRegistryWrongRound", task_id, 1, 0):
            finalize_raw(fs, actors.stranger, task_id, 1)


# ================================================================ finalizeRound: proof of quality


def _finalize_matrix(fs, actors, n, rows_by_index, **overrides):
    """Runs round 0 with `n` participants where participant i scores rows_by_index[i]
    (every participant commits; those without a row do not score)."""
    task_id, devices = scoring_task(
        fs, actors, n, max_participants=max(n, 4), **overrides
    )
    submit_scores(fs, task_id, 0, {devices[i]: row for i, row in rows_by_index.items()})
    outcome = finalize(fs, actors, task_id, 0)
    return task_id, devices, outcome


def test_finalize_takes_the_median_of_peer_scores_names_leader_and_excludes_worst(
    fs, actors
):
    rows = {
        0: [0, 8000, 6000, 3000],
        1: [9000, 0, 6500, 2000],
        2: [8500, 7000, 0, 2500],
        3: [9500, 7500, 5000, 0],
    }
    task_id, devices, outcome = _finalize_matrix(
        fs, actors, 4, rows, reward_per_round=ETHER, min_participants=3
    )
    ids = addresses(devices)
    # Medians of the columns, own scores left out: (9000, 8500, 9500) -> 9000, etc.
    assert [fs.submission(task_id, 0, d).quality for d in ids] == [
        9000,
        7500,
        6000,
        2500,
    ]
    assert outcome.quality == dict(zip(ids, [9000, 7500, 6000, 2500]))
    info = fs.round_info(task_id, 0)
    assert info.leader == outcome.leader == ids[0]
    assert info.eliminated == outcome.eliminated == ids[3]
    assert outcome.accepted == tuple(ids[:3])
    # Shares of 1 ether in proportion to 9000 : 7500 : 6000 (sum 22500).
    expected = [ETHER * 9000 // 22500, ETHER * 7500 // 22500, ETHER * 6000 // 22500, 0]
    expected[0] += ETHER - sum(expected)
    assert [fs.submission(task_id, 0, d).reward for d in ids] == expected
    assert [fs.reward_balance(d) for d in ids] == expected
    assert [fs.submission(task_id, 0, d).accepted for d in ids] == [
        True,
        True,
        True,
        False,
    ]
    assert (info.accepted, info.reward_paid, info.stage) == (
        3,
        ETHER,
        RoundStage.FINALIZED,
    )


def test_median_of_an_even_number_of_scores_is_the_floor_of_the_middle_mean(fs, actors):
    # Five scorers: each quality is the median of four scores.
    rows = {
        0: [0, 1000, 2000, 3000, 4000],
        1: [2001, 0, 2000, 3000, 4000],
        2: [3000, 1001, 0, 3000, 4000],
        3: [4000, 1000, 2001, 0, 4000],
        4: [1000, 1000, 2000, 3001, 0],
    }
    _, devices, outcome = _finalize_matrix(fs, actors, 5, rows)
    model = expected_round(5, rows, ETHER)
    assert model.quality == [2500, 1000, 2000, 3000, 4000]
    assert [outcome.quality[d.address] for d in devices] == model.quality
    assert outcome.leader == devices[4].address
    assert outcome.eliminated == devices[1].address


def test_ties_name_the_first_as_leader_and_the_last_as_worst(fs, actors):
    rows = {i: [5000] * 4 for i in range(4)}
    _, devices, outcome = _finalize_matrix(fs, actors, 4, rows, reward_per_round=10)
    assert outcome.leader == devices[0].address
    assert outcome.eliminated == devices[3].address
    # 10 wei split in thirds: 3 each, the remainder 1 to the leader.
    assert [outcome.rewards[d.address] for d in devices] == [4, 3, 3, 0]


@pytest.mark.parametrize(
    "reward", [ETHER, 7, 1_000_000_007, 123_456_789_012_345_678_901]
)
def test_rewards_are_proportional_to_quality_with_the_remainder_to_the_leader(
    fs, actors, reward
):
    rows = {
        0: [0, 3333, 7777, 1234],
        1: [9999, 0, 7001, 4321],
        2: [6543, 3334, 0, 1111],
        3: [8888, 2222, 7500, 0],
    }
    task_id, devices, outcome = _finalize_matrix(
        fs, actors, 4, rows, reward_per_round=reward
    )
    model = expected_round(4, rows, reward)
    got = [outcome.rewards[d.address] for d in devices]
    assert got == model.rewards
    assert sum(got) == reward == fs.round_info(task_id, 0).reward_paid
    accepted = [i for i, ok in enumerate(model.accepted) if ok]
    total_quality = sum(model.quality[i] for i in accepted)
    for i in accepted:
        floor_share = reward * model.quality[i] // total_quality
        assert got[i] == floor_share or (i == model.leader and got[i] >= floor_share)
    assert_solvent(fs, addresses(devices))


@pytest.mark.parametrize(
    "threshold, accepted", [(7000, [0, 1]), (7500, [0, 1]), (7501, [0]), (9001, [])]
)
def test_participants_below_min_quality_get_nothing(fs, actors, threshold, accepted):
    rows = {
        0: [0, 8000, 6000, 3000],
        1: [9000, 0, 6500, 2000],
        2: [8500, 7000, 0, 2500],
        3: [9500, 7500, 5000, 0],
    }  # qualities 9000, 7500, 6000, 2500
    task_id, devices, outcome = _finalize_matrix(
        fs, actors, 4, rows, min_quality=threshold
    )
    assert outcome.accepted == tuple(devices[i].address for i in accepted)
    for i, device in enumerate(devices):
        paid = outcome.rewards[device.address]
        assert (paid > 0) == (i in accepted)
        assert fs.reward_balance(device.address) == paid
    info = fs.round_info(task_id, 0)
    if accepted:
        assert info.reward_paid == ETHER and info.stage is RoundStage.FINALIZED
    else:
        assert info.reward_paid == 0 and info.stage is RoundStage.AGGREGATED
        assert fs.task_state(task_id).escrow == task_params().escrow
    assert outcome.eliminated == devices[3].address  # the worst still leaves


def test_participant_that_committed_but_did_not_score_gets_nothing_and_quality_zero(
    fs, actors
):
    rows = {
        0: [0, 8000, 9000, 7000],
        1: [8000, 0, 9000, 7000],
        3: [8000, 8000, 9000, 0],
    }
    task_id, devices, outcome = _finalize_matrix(fs, actors, 4, rows)
    silent = devices[2].address
    sub = fs.submission(task_id, 0, silent)
    assert sub.update_hash != ZERO_HASH and sub.scored is False
    assert (sub.quality, sub.accepted, sub.reward) == (0, False, 0)
    assert fs.reward_balance(silent) == 0
    # The scores it received are ignored; it is not eligible for elimination either.
    model = expected_round(4, rows, ETHER)
    assert [outcome.quality[d.address] for d in devices] == model.quality
    assert outcome.eliminated == devices[model.worst].address != silent
    assert sum(outcome.rewards.values()) == ETHER


def test_device_that_did_not_commit_gets_nothing(fs, actors):
    task_id, devices = open_task(fs, actors, 4, max_participants=4)
    commit_updates(fs, task_id, 0, devices[:3])
    advance_past(fs, fs.round_info(task_id, 0).commit_deadline)
    rows = {
        devices[0]: [0, 8000, 6000, 9000],
        devices[1]: [8000, 0, 7000, 9000],
        devices[2]: [8000, 8000, 0, 9000],
    }
    submit_scores(fs, task_id, 0, rows)
    outcome = finalize(fs, actors, task_id, 0)
    absent = devices[3].address
    assert fs.submission(task_id, 0, absent) == Submission(
        ZERO_HASH, 0, False, False, 0
    )
    assert outcome.rewards[absent] == 0 and fs.reward_balance(absent) == 0
    assert absent not in outcome.accepted
    assert fs.round_info(task_id, 0).committed == 3
    assert sum(outcome.rewards.values()) == ETHER


def test_finalize_with_nobody_committing_pays_nothing_and_skips_aggregation(fs, actors):
    task_id, devices = open_task(fs, actors, 3)
    info = fs.round_info(task_id, 0)
    advance_past(fs, info.score_deadline)
    outcome = fs.finalize_round(actors.stranger, task_id, 0)
    info = fs.round_info(task_id, 0)
    assert info.stage is RoundStage.AGGREGATED
    assert (info.accepted, info.reward_paid, info.leader, info.eliminated) == (
        0,
        0,
        ZERO_ADDRESS,
        ZERO_ADDRESS,
    )
    assert outcome.accepted == () and outcome.reward_paid == 0
    assert fs.task_state(task_id).escrow == task_params().escrow
    assert fs.total_owed() == 0
    assert fs.participants(task_id) == addresses(devices)
    # The requester closes the round without an aggregate.
    fs.publish_model(actors.requester, task_id, 0, MODEL)
    assert fs.round_info(task_id, 0).stage is RoundStage.CLOSED


def test_a_single_scorer_has_no_peer_scores_and_is_not_paid(fs, actors):
    task_id, devices = scoring_task(fs, actors, 3)
    advance_past(fs, fs.round_info(task_id, 0).commit_deadline)
    fs.submit_scores(devices[0], task_id, 0, [0, 9000, 9000])
    outcome = finalize(fs, actors, task_id, 0)
    assert outcome.quality[devices[0].address] == 0
    assert outcome.leader == devices[0].address
    assert outcome.eliminated is None and outcome.reward_paid == 0
    assert fs.round_info(task_id, 0).stage is RoundStage.AGGREGATED


# ================================================================ finalizeRound: elimination


def test_worst_is_replaced_by_the_earliest_waiting_device(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, max_participants=4)
    first_waiting, second_waiting = actors.devices[4:6]
    fs.join(first_waiting, task_id)
    fs.join(second_waiting, task_id)
    rows = dict(zip(devices, [
        [0, 8000, 6000, 3000],
        [9000, 0, 6500, 2000],
        [8500, 7000, 0, 2500],
        [9500, 7500, 5000, 0],
    ]))
    _, participants, outcome = play_round(fs, actors, task_id, rows=rows)
    assert participants == addresses(devices)
    worst = devices[3].address
    assert outcome.eliminated == worst == fs.round_info(task_id, 0).eliminated
    assert outcome.rewards[worst] == 0
    assert fs.participants(task_id) == addresses(devices[:3]) + [first_waiting.address]
    assert fs.waiting(task_id) == [second_waiting.address]
    assert fs.member_status(task_id, worst) is MemberStatus.ELIMINATED
    assert fs.member_status(task_id, first_waiting.address) is MemberStatus.ACTIVE
    assert fs.member_status(task_id, second_waiting.address) is MemberStatus.WAITING


def test_replacement_takes_the_eliminated_devices_slot(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, max_participants=4)
    fs.join(actors.devices[4], task_id)
    # devices[1] is the worst this time.
    rows = dict(zip(devices, [
        [0, 1000, 6000, 7000],
        [9000, 0, 6500, 7000],
        [8500, 1500, 0, 7500],
        [9500, 2000, 5000, 0],
    ]))
    _, _, outcome = play_round(fs, actors, task_id, rows=rows, close=True)
    assert outcome.eliminated == devices[1].address
    assert fs.participants(task_id) == [
        devices[0].address,
        actors.devices[4].address,
        devices[2].address,
        devices[3].address,
    ]
    # The replacement takes part in the next round.
    round_ = open_round(fs, actors, task_id)
    fs.commit_update(actors.devices[4], task_id, round_, h(1))
    with reverts_with("TaskRegistryNotParticipant", task_id, devices[1].address):
        fs.commit_update(devices[1], task_id, round_, h(2))


def test_worst_leaves_without_replacement_when_above_the_minimum(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, min_participants=3, max_participants=4)
    rows = dict(zip(devices, [
        [0, 2000, 6000, 7000],
        [9000, 0, 6500, 7000],
        [8500, 1500, 0, 7500],
        [9500, 1000, 5000, 0],
    ]))
    _, _, outcome = play_round(fs, actors, task_id, rows=rows)
    assert outcome.eliminated == devices[1].address
    assert sorted(fs.participants(task_id)) == sorted(
        addresses([devices[0], devices[2], devices[3]])
    )
    assert fs.member_status(task_id, devices[1].address) is MemberStatus.ELIMINATED


def test_worst_stays_when_elimination_would_drop_below_the_minimum(fs, actors):
    task_id, devices = setup_task(fs, actors, 3, min_participants=3, max_participants=3)
    rows = {
        d: row
        for d, row in zip(devices, [[0, 8000, 3000], [9000, 0, 2000], [8500, 7000, 0]])
    }
    _, _, outcome = play_round(fs, actors, task_id, rows=rows)
    worst = devices[2].address
    assert outcome.eliminated is None
    assert fs.round_info(task_id, 0).eliminated == ZERO_ADDRESS
    assert fs.participants(task_id) == addresses(devices)
    assert fs.member_status(task_id, worst) is MemberStatus.ACTIVE
    # ... but it is still not paid.
    assert outcome.rewards[worst] == 0 and worst not in outcome.accepted
    assert sum(outcome.rewards.values()) == ETHER


# ================================================================ submitAggregate


class TestSubmitAggregate:
    """The aggregator posts the aggregate of a finalised round."""

    def test_aggregator_submits_the_aggregate_of_a_finalized_round(
        self, fs, actors, round_finalized
    ):
        task_id, _ = round_finalized
        receipt = fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        info = fs.round_info(task_id, 0)
        assert (info.stage, info.aggregate_hash) == (RoundStage.AGGREGATED, h(5))
        assert fs.task_state(task_id).last_progress_at == block_time(fs, receipt)

    @pytest.mark.parametrize("caller", ["stranger", "requester"])
    def test_aggregate_by_non_aggregator_reverts_with_NotAggregator(
        self, fs, actors, caller, round_finalized
    ):
        task_id, _ = round_finalized
        wallet = getattr(actors, caller)
        with reverts_with("TaskRegistryNotAggregator", task_id, wallet.address):
            fs.submit_aggregate(wallet, task_id, 0, h(5))

    def test_zero_aggregate_reverts_with_ZeroHash(self, fs, actors, round_finalized):
        task_id, _ = round_finalized
        with reverts_with("TaskRegistryZeroHash"):
            fs.submit_aggregate(actors.aggregator, task_id, 0, ZERO_HASH)

    def test_aggregate_while_round_is_open_reverts_with_WrongStage(
        self, fs, actors, round_open
    ):
        task_id, _ = round_open
        with reverts_with(
            "TaskRegistryWrongStage", task_id, 0, RoundStage.OPEN, RoundStage.FINALIZED
        ):
            fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))

    def test_aggregate_twice_reverts_with_WrongStage(self, fs, actors, round_finalized):
        task_id, _ = round_finalized
        fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        with reverts_with(
            "TaskRegistryWrongStage",
            task_id,
            0,
            RoundStage.AGGREGATED,
            RoundStage.FINALIZED,
        ):
            fs.submit_aggregate(actors.aggregator, task_id, 0, h(6))

    def test_aggregate_before_any_round_reverts_with_WrongRound(self, fs, actors):
        task_id, _ = setup_task(fs, actors, 3)
        with reverts_with("TaskRegistryWrongRound", task_id, 0, 0):
            fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))


# ================================================================ publishModel


class TestPublishModel:
    """The requester closes an aggregated round with the new model."""

    def test_requester_publishes_the_new_model_and_the_task_goes_on(
        self, fs, actors, round_finalized
    ):
        task_id, _ = round_finalized
        fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        receipt = fs.publish_model(actors.requester, task_id, 0, h(6))
        info = fs.round_info(task_id, 0)
        assert (info.stage, info.new_model_hash) == (RoundStage.CLOSED, h(6))
        state = fs.task_state(task_id)
        assert (state.status, state.current_model) == (TaskStatus.RUNNING, h(6))
        assert state.last_progress_at == block_time(fs, receipt)
        assert state.escrow == task_params().escrow - ETHER
        assert fs.refund_of(actors.requester.address) == 0

    def test_publishing_the_last_rounds_model_completes_the_task(self, fs, actors):
        task_id, _ = finalized_task(fs, actors, 3, rounds=1)
        fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        receipt = fs.publish_model(actors.requester, task_id, 0, h(6))
        state = fs.task_state(task_id)
        assert (state.status, state.escrow, state.current_model) == (
            TaskStatus.COMPLETED,
            0,
            h(6),
        )
        (event,) = fs.tasks.events.TaskCompleted().process_receipt(
            receipt.raw, errors=DISCARD
        )
        assert event.args.refund == 0

    @pytest.mark.parametrize("caller", ["stranger", "aggregator"])
    def test_publish_model_by_non_requester_reverts_with_NotRequester(
        self, fs, actors, caller, round_finalized
    ):
        task_id, _ = round_finalized
        fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        wallet = getattr(actors, caller)
        with reverts_with("TaskRegistryNotRequester", task_id, wallet.address):
            fs.publish_model(wallet, task_id, 0, h(6))

    def test_publish_zero_model_reverts_with_ZeroHash(
        self, fs, actors, round_finalized
    ):
        task_id, _ = round_finalized
        fs.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        with reverts_with("TaskRegistryZeroHash"):
            fs.publish_model(actors.requester, task_id, 0, ZERO_HASH)

    @pytest.mark.parametrize("stage", [RoundStage.OPEN, RoundStage.FINALIZED])
    def test_publish_model_before_aggregation_reverts_with_WrongStage(
        self, fs, actors, stage, round_open, round_finalized
    ):
        if stage is RoundStage.OPEN:
            task_id, _ = round_open
        else:
            task_id, _ = round_finalized
        with reverts_with(
            "TaskRegistryWrongStage", task_id, 0, stage, RoundStage.AGGREGATED
        ):
            fs.publish_model(actors.requester, task_id, 0, h(6))


# ================================================================ completion and refunds


def test_unpaid_round_rewards_come_back_to_the_requester_at_completion(fs, actors):
    task_id, devices = setup_task(fs, actors, 3, rounds=2, reward_per_round=ETHER)
    # Round 0: nobody commits, nothing is paid.
    round_ = open_round(fs, actors, task_id)
    advance_past(fs, fs.round_info(task_id, round_).score_deadline)
    fs.finalize_round(actors.stranger, task_id, round_)
    close_round(fs, actors, task_id, round_, new_model=MODEL)
    # Round 1: paid in full.
    rows = {d: [7000] * 3 for d in devices}
    _, _, outcome = play_round(fs, actors, task_id, rows=rows, close=True)
    assert outcome.reward_paid == ETHER

    assert fs.task_state(task_id).status is TaskStatus.COMPLETED
    assert fs.task_state(task_id).escrow == 0
    assert fs.refund_of(actors.requester.address) == ETHER
    assert fs.total_held() == ETHER == fs.chain.balance(fs.tasks.address)

    before = fs.chain.balance(actors.requester.address)
    receipt = fs.withdraw_refund(actors.requester)
    assert fs.chain.balance(actors.requester.address) == before + ETHER - gas_cost(
        receipt
    )
    assert fs.refund_of(actors.requester.address) == 0
    assert fs.total_held() == 0 == fs.chain.balance(fs.tasks.address)


def test_withdraw_refund_with_nothing_owed_reverts_with_NothingToRefund(fs, actors):
    with reverts_with("TaskRegistryNothingToRefund", actors.requester.address):
        fs.withdraw_refund(actors.requester)


def test_withdraw_refund_twice_reverts_with_NothingToRefund(fs, actors):
    task_id = publish_task(fs, actors)
    fs.cancel_task(actors.requester, task_id)
    fs.withdraw_refund(actors.requester)
    with reverts_with("TaskRegistryNothingToRefund", actors.requester.address):
        fs.withdraw_refund(actors.requester)


def test_refunds_of_several_tasks_add_up(fs, actors):
    first = publish_task(fs, actors, rounds=1)
    second = publish_task(fs, actors, rounds=3)
    fs.cancel_task(actors.requester, first)
    fs.cancel_task(actors.requester, second)
    assert fs.refund_of(actors.requester.address) == 4 * ETHER
    before = fs.chain.balance(actors.requester.address)
    receipt = fs.withdraw_refund(actors.requester)
    assert fs.chain.balance(actors.requester.address) == before + 4 * ETHER - gas_cost(
        receipt
    )


def _contract_requester_with_refund(fs, actors, reenter_selector=None):
    requester = ContractWallet(fs, actors.deployer, reenter_selector)
    params = task_params()
    requester.call(
        fs.tasks,
        "publishTask",
        params.as_tuple(),
        actors.aggregator.address,
        value=params.escrow,
    )
    task_id = fs.task_count()
    assert fs.task_state(task_id).requester == requester.address
    requester.call(fs.tasks, "cancelTask", task_id)
    assert fs.refund_of(requester.address) == params.escrow
    return requester, params.escrow


def test_refund_to_a_requester_rejecting_ether_reverts_with_TransferFailed(fs, actors):
    requester, escrow = _contract_requester_with_refund(fs, actors)
    with reverts_with("TaskRegistryTransferFailed", requester.address, escrow):
        requester.call(fs.tasks, "withdrawRefund")
    assert fs.refund_of(requester.address) == escrow
    assert fs.total_held() == escrow == fs.chain.balance(fs.tasks.address)


def test_withdraw_refund_cannot_be_reentered(fs, actors):
    requester, escrow = _contract_requester_with_refund(
        fs, actors, reenter_selector=selector("withdrawRefund()")
    )
    requester.call(fs.tasks, "withdrawRefund")
    assert requester.reentry_attempted and not requester.reentry_succeeded
    assert requester.reentry_error_selector == selector(
        "ReentrancyGuardReentrantCall()"
    )
    assert fs.chain.balance(requester.address) == escrow
    assert fs.total_held() == 0 == fs.chain.balance(fs.tasks.address)


# ================================================================ cancelTask


def test_requester_cancels_an_idle_task_and_gets_the_escrow_back(fs, actors):
    task_id, _ = setup_task(fs, actors, 3)
    receipt = fs.cancel_task(actors.requester, task_id)
    state = fs.task_state(task_id)
    assert (state.status, state.escrow) == (TaskStatus.CANCELLED, 0)
    assert fs.refund_of(actors.requester.address) == task_params().escrow
    assert fs.total_held() == task_params().escrow == fs.chain.balance(fs.tasks.address)
    (event,) = fs.tasks.events.TaskCancelled().process_receipt(
        receipt.raw, errors=DISCARD
    )
    assert (event.args.by, event.args.refund) == (
        actors.requester.address,
        task_params().escrow,
    )
    before = fs.chain.balance(actors.requester.address)
    receipt = fs.withdraw_refund(actors.requester)
    assert fs.chain.balance(
        actors.requester.address
    ) == before + task_params().escrow - gas_cost(receipt)
    assert fs.total_held() == 0 == fs.chain.balance(fs.tasks.address)


def test_requester_cancels_between_rounds_and_gets_the_rest_back(fs, actors):
    task_id, _ = finalized_task(fs, actors, 3, rounds=3)
    close_round(fs, actors, task_id, 0)
    fs.cancel_task(actors.requester, task_id)
    assert fs.refund_of(actors.requester.address) == 2 * ETHER
    assert fs.total_owed() == ETHER


@pytest.mark.parametrize("duration", [DURATION, 365 * 24 * 3600])
def test_requester_cancels_an_idle_task_whatever_its_round_duration(
    fs, actors, duration
):
    task_id = publish_task(fs, actors, round_duration=duration)
    fs.cancel_task(actors.requester, task_id)
    assert fs.task_state(task_id).status is TaskStatus.CANCELLED
    assert fs.refund_of(actors.requester.address) == task_params().escrow


class TestCancelDuringARound:
    """Cancelling a task whose round is under way."""

    @pytest.mark.parametrize("stage", [RoundStage.OPEN, RoundStage.FINALIZED])
    def test_requester_cannot_cancel_a_round_in_progress_CannotCancel(
        self, fs, actors, stage, round_open, round_finalized
    ):
        task_id, _ = round_finalized if stage is RoundStage.FINALIZED else round_open
        stalled_after = (
            fs.task_state(task_id).last_progress_at + STALL_FACTOR * DURATION
        )
        with reverts_with(
            "TaskRegistryCannotCancel", task_id, actors.requester.address, stalled_after
        ):
            fs.cancel_task(actors.requester, task_id)

    @pytest.mark.parametrize("caller", ["stranger", "aggregator", "device"])
    def test_others_cannot_cancel_before_the_task_stalls_CannotCancel(
        self, fs, actors, caller, round_open
    ):
        task_id, devices = round_open
        wallet = devices[0] if caller == "device" else getattr(actors, caller)
        state = fs.task_state(task_id)
        stalled_after = state.last_progress_at + STALL_FACTOR * DURATION
        fs.chain.advance_time(stalled_after - fs.chain.now() - 10)
        with reverts_with(
            "TaskRegistryCannotCancel", task_id, wallet.address, stalled_after
        ):
            fs.cancel_task(wallet, task_id)

    def test_anyone_cancels_a_stalled_task_and_the_requester_is_refunded(
        self, fs, actors, round_finalized
    ):
        task_id, devices = round_finalized  # the aggregator never aggregates
        state = fs.task_state(task_id)
        advance_past(fs, state.last_progress_at + STALL_FACTOR * DURATION)
        receipt = fs.cancel_task(actors.stranger, task_id)
        assert fs.task_state(task_id).status is TaskStatus.CANCELLED
        assert fs.refund_of(actors.requester.address) == ETHER
        assert fs.refund_of(actors.stranger.address) == 0
        (event,) = fs.tasks.events.TaskCancelled().process_receipt(
            receipt.raw, errors=DISCARD
        )
        assert (event.args.by, event.args.refund) == (actors.stranger.address, ETHER)
        assert_solvent(fs, addresses(devices))

    def test_stall_clock_restarts_on_progress(self, fs, actors, all_committed):
        task_id, devices = all_committed
        opened = fs.task_state(task_id).last_progress_at
        submit_scores(fs, task_id, 0, {d: [7000] * 3 for d in devices})
        fs.chain.advance_time(2 * DURATION)
        fs.finalize_round(actors.stranger, task_id, 0)
        progressed = fs.task_state(task_id).last_progress_at
        assert progressed > opened + 2 * DURATION
        advance_past(fs, opened + STALL_FACTOR * DURATION)
        with reverts_with(
            "TaskRegistryCannotCancel",
            task_id,
            actors.stranger.address,
            progressed + STALL_FACTOR * DURATION,
        ):
            fs.cancel_task(actors.stranger, task_id)


def test_stranger_cannot_cancel_a_task_that_never_started_CannotCancel(fs, actors):
    # Only a task with a round opened can stall; before that, only the requester may cancel.
    task_id, _ = setup_task(fs, actors, 3)
    stalled_after = fs.task_state(task_id).last_progress_at + STALL_FACTOR * DURATION
    advance_past(fs, stalled_after + DURATION)
    with reverts_with(
        "TaskRegistryCannotCancel", task_id, actors.stranger.address, stalled_after
    ):
        fs.cancel_task(actors.stranger, task_id)


@pytest.fixture(scope="class")
def ended(system, chain, actors, registered):
    """A cancelled (stalled mid-round) and a completed task, built once per class."""
    snap = chain.snapshot()
    fs = system
    cancelled, _ = open_task(fs, actors, 3)
    advance_past(
        fs, fs.task_state(cancelled).last_progress_at + STALL_FACTOR * DURATION
    )
    fs.cancel_task(actors.stranger, cancelled)
    completed, _ = finalized_task(fs, actors, 3, rounds=1)
    close_round(fs, actors, completed, 0)
    yield {TaskStatus.CANCELLED: cancelled, TaskStatus.COMPLETED: completed}
    chain.revert(snap)


class TestEndedTasks:
    """Nothing but views works on a cancelled or completed task."""

    @pytest.mark.parametrize("status", [TaskStatus.CANCELLED, TaskStatus.COMPLETED])
    @pytest.mark.parametrize("function", LIVE_FUNCTIONS)
    def test_every_live_function_reverts_with_TaskNotLive(
        self, fs, actors, ended, function, status
    ):
        task_id = ended[status]
        assert fs.task_state(task_id).status is status
        with reverts_with("TaskRegistryTaskNotLive", task_id, status):
            _calls(fs, actors, task_id)[function]()

    def test_views_still_answer(self, fs, actors, ended):
        completed = ended[TaskStatus.COMPLETED]
        assert fs.round_info(completed, 0).stage is RoundStage.CLOSED
        assert fs.task_state(ended[TaskStatus.CANCELLED]).escrow == 0
        assert (
            fs.refund_of(actors.requester.address) == task_params().escrow
        )  # cancelled one


# ================================================================ views


def test_views_of_unknown_ids_are_empty(fs, actors):
    assert fs.task_count() == 0
    assert fs.task_state(5).status is TaskStatus.NONE
    assert fs.round_info(5, 0).stage is RoundStage.NONE
    assert fs.participants(5) == [] and fs.waiting(5) == []
    assert fs.member_status(5, actors.devices[0].address) is MemberStatus.NONE
    assert fs.total_held() == 0


def test_max_participants_constants(fs):
    assert fs.chain.call(fs.tasks.functions.MAX_PARTICIPANTS()) == 64
    assert fs.chain.call(fs.tasks.functions.STALL_FACTOR()) == STALL_FACTOR


def test_update_hashes_are_kept_per_round(fs, actors):
    task_id, devices = finalized_task(fs, actors, 3)
    close_round(fs, actors, task_id, 0)
    round_ = open_round(fs, actors, task_id)
    fs.commit_update(devices[0], task_id, round_, h(99))
    assert fs.submission(task_id, 0, devices[0].address).update_hash == update_hash(
        0, devices[0]
    )
    assert fs.submission(task_id, 1, devices[0].address).update_hash == h(99)
