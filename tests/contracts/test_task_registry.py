"""TaskRegistry: escrowed tasks, allow-lists, participants, three-phase rounds (train:
commit updates and ε; verify: commit to scores; reveal: reveal scores), the verifier
assignment, proof of quality, rewards, elimination, cancellation and refunds."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from web3 import Web3

from offchain.chain.accounts import new_wallet
from offchain.protocol.commitments import score_commitment
from offchain.protocol.terms import (
    ETHER,
    MAX_ALLOW_LIST,
    MAX_PARTICIPANTS,
    MAX_PHASE_DURATION,
    MAX_SCORE,
    MAX_VERIFIERS,
    NO_HASH,
    ZERO_ADDRESS,
)
from offchain.protocol.types import MemberStatus, RoundStage, Submission, TaskStatus
from tests.conftest import task_params
from tests.contracts.helpers import (
    MODEL,
    Assignment,
    ContractWallet,
    addresses,
    assert_solvent,
    assigned_rows,
    block_time,
    close_round,
    commit_scores,
    commit_updates,
    epsilon_for,
    expected_round,
    finalize,
    gas_cost,
    gt,
    h,
    open_round,
    params_from_event,
    play_round,
    publish_task,
    reveal_scores,
    reverts_with,
    round_assignment,
    salt_of,
    score_round,
    selector,
    setup_task,
    stalled_after,
    update_hash,
)

# Devices 0-3 belong to `owner`, 4-5 to `other_owner` (registered once for the module).
pytestmark = pytest.mark.usefixtures("registered")

P = task_params()
TRAIN, VERIFY, REVEAL, GRACE = (
    P.train_duration,
    P.verify_duration,
    P.reveal_duration,
    P.grace_period,
)
STALL = TRAIN + VERIFY + REVEAL + GRACE


def at_most(bound: int):
    matcher = lambda value: value <= bound
    matcher.__name__ = f"<= {bound}"
    return matcher


def uniform(devices, score: int = 7000) -> dict:
    """Every device gives every other `score`."""
    return {d: [score] * len(devices) for d in devices}


def finalize_raw(fs, caller, task_id, round_):
    return fs.chain.transact(caller, fs.tasks.functions.finalizeRound(task_id, round_))


def publish_raw(fs, sender, params, allow_list=(), value=None, aggregator=None):
    return fs.chain.transact(
        sender,
        fs.tasks.functions.publishTask(
            params.as_tuple(), aggregator or ZERO_ADDRESS, list(allow_list)
        ),
        value=params.escrow if value is None else value,
    )


def commit_scores_of(fs, device, task_id, round_, scores, salt=None):
    """`device` commits to `scores` (assignment order) with `salt` (its default salt)."""
    salt = salt_of(round_, device) if salt is None else salt
    commitment = score_commitment(task_id, round_, scores, salt, device.address)
    return fs.tasks.commit_scores(device, task_id, round_, commitment)


def open_task(fs, actors, n=3, **overrides):
    """A task with `n` participants and round 0 open."""
    task_id, devices = setup_task(fs, actors, n, **overrides)
    open_round(fs, actors, task_id)
    return task_id, devices


def committed_task(fs, actors, n=3, **overrides):
    """Round 0 with every participant committed: the verify phase is open."""
    task_id, devices = open_task(fs, actors, n, **overrides)
    commit_updates(fs, task_id, 0, devices)
    return task_id, devices


def score_committed_task(fs, actors, n=3, **overrides):
    """Round 0 with every participant's score commitment (7000 for everyone) in: the
    reveal phase is open. Returns the task, devices and their rows."""
    task_id, devices = committed_task(fs, actors, n, **overrides)
    rows = assigned_rows(fs, task_id, 0, uniform(devices))
    commit_scores(fs, task_id, 0, rows)
    return task_id, devices, rows


def finalized_task(fs, actors, n=3, **overrides):
    """A task whose round 0 is finalised with rewards paid (stage Finalized)."""
    task_id, devices, rows = score_committed_task(fs, actors, n, **overrides)
    reveal_scores(fs, task_id, 0, rows)
    fs.tasks.finalize_round(actors.stranger, task_id, 0)
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
    yield from _class_state(chain, lambda: committed_task(system, actors, 3))


@pytest.fixture(scope="class")
def all_score_committed(system, chain, actors, registered):
    """(task id, devices, rows): round 0 with all three score commitments in."""
    yield from _class_state(chain, lambda: score_committed_task(system, actors, 3))


@pytest.fixture(scope="class")
def round_finalized(system, chain, actors, registered):
    """(task id, devices): round 0 finalised with its reward paid (stage Finalized)."""
    yield from _class_state(chain, lambda: finalized_task(system, actors, 3))


# ================================================================ publishTask


def test_publish_task_escrows_the_reward_and_records_the_task(fs, actors):
    params = task_params(rounds=3, reward_per_round=2 * ETHER, verifiers_per_update=2)
    before = fs.chain.balance(actors.requester.address)
    task_id, receipt = fs.tasks.publish(
        actors.requester, params, actors.aggregator.address
    )

    assert task_id == 1 and fs.tasks.count() == 1
    assert fs.tasks.params(task_id) == params
    state = fs.tasks.state(task_id)
    assert state.requester == actors.requester.address
    assert state.aggregator == actors.aggregator.address
    assert state.status is TaskStatus.OPEN
    assert state.restricted is False
    assert state.rounds_opened == 0
    assert state.last_progress_at == block_time(fs, receipt)
    assert state.escrow == 6 * ETHER
    assert state.current_model == params.model_hash
    assert fs.chain.balance(actors.requester.address) == before - 6 * ETHER - gas_cost(
        receipt
    )
    assert fs.chain.balance(fs.tasks.address) == fs.tasks.total_held() == 6 * ETHER
    (event,) = fs.tasks.receipt_events("TaskPublished", receipt)
    assert {**event.args, "params": params_from_event(event.args.params)} == {
        "taskId": 1,
        "requester": actors.requester.address,
        "aggregator": actors.aggregator.address,
        "escrow": 6 * ETHER,
        "params": params,
        "allowList": [],
    }
    (named,) = fs.tasks.receipt_events("AggregatorSet", receipt)
    assert (named.args.taskId, named.args.aggregator) == (1, actors.aggregator.address)
    assert event.logIndex < named.logIndex


def test_task_published_event_carries_every_parameter_and_the_allow_list(fs, actors):
    """A client rebuilds the task from the event alone: every TaskParams field (each
    set to a value of its own, none left at a default), the aggregator and the
    allow-list equal what the views return."""
    params = task_params(
        category=b"every-field".ljust(32, b"\0"), model_hash=h(1),
        paillier_key_hash=h(2),
        rounds=4, train_duration=601, verify_duration=302, reveal_duration=303,
        grace_period=904, epsilon_budget=12_345_678, reward_per_round=3 * ETHER + 7,
        min_participants=4, max_participants=6, min_quality=1_234, quality_gap=2_500,
        verifiers_per_update=2)
    defaults = task_params()
    assert all(getattr(params, f) != getattr(defaults, f) for f in vars(params)), (
        "every field must differ from the default to show it round-trips")
    allow = [actors.owner.address, actors.devices[4].address, actors.stranger.address]
    task_id, receipt = fs.tasks.publish(
        actors.requester, params, actors.aggregator.address, allow)

    (event,) = fs.tasks.receipt_events("TaskPublished", receipt)
    assert params_from_event(event.args.params) == params == fs.tasks.params(task_id)
    assert list(event.args.allowList) == allow
    assert all(fs.tasks.is_allowed(task_id, a) for a in allow)
    assert event.args.aggregator == actors.aggregator.address
    assert event.args.aggregator == fs.tasks.state(task_id).aggregator
    assert event.args.requester == actors.requester.address
    assert event.args.escrow == params.escrow == fs.tasks.state(task_id).escrow
    assert event.args.taskId == task_id


TASK_PUBLISHED = (
    "TaskPublished(uint256,address,address,uint256,(bytes32,bytes32,bytes32,uint64,uint64,"
    "uint64,uint64,uint64,uint64,uint128,uint16,uint16,uint16,uint16,uint16),address[])")
ROUND_OPENED = (
    "RoundOpened(uint256,uint64,bytes32,uint64,uint64,uint64,uint16,uint32,address[])")


@pytest.mark.parametrize("signature", [TASK_PUBLISHED, ROUND_OPENED])
def test_event_signatures_are_what_clients_subscribe_to(fs, signature):
    name = signature.split("(")[0]
    topic = getattr(fs.tasks.events, name)().topic
    assert Web3.to_bytes(hexstr=topic) == Web3.keccak(text=signature)


def test_task_published_event_indexes_task_requester_and_aggregator(fs, actors):
    task_id, receipt = fs.tasks.publish(actors.requester, P, actors.aggregator.address)
    topic = Web3.keccak(text=TASK_PUBLISHED)
    (log,) = [x for x in receipt.raw["logs"] if bytes(x["topics"][0]) == topic]
    assert [bytes(t) for t in log["topics"][1:]] == [
        task_id.to_bytes(32, "big"),
        bytes(12) + bytes.fromhex(actors.requester.address[2:]),
        bytes(12) + bytes.fromhex(actors.aggregator.address[2:]),
    ]
    # Filtering by aggregator finds exactly its tasks.
    other, _ = fs.tasks.publish(actors.requester, P, actors.stranger.address)
    logs = fs.chain.w3.eth.get_logs({
        "address": fs.tasks.address, "fromBlock": receipt.block_number,
        "topics": ["0x" + topic.hex(), None, None,
                   "0x" + "00" * 12 + actors.stranger.address[2:].lower()]})
    assert [fs.tasks.events.TaskPublished().process_log(x).args.taskId
            for x in logs] == [other]


def test_publish_task_registers_the_initial_model_as_a_version(fs, actors):
    task_id, receipt = fs.tasks.publish(actors.requester, P, actors.aggregator.address)
    state = fs.tasks.state(task_id)
    assert state.model_version == 1 == fs.models.count()
    version = fs.models.version(1)
    assert (version.model_hash, version.metrics_hash, version.parent) == (
        MODEL,
        NO_HASH,
        0,
    )
    assert (version.task_id, version.round, version.uri) == (task_id, 0, "")
    assert version.publisher == fs.tasks.address
    assert version.created_at == block_time(fs, receipt)
    (event,) = fs.models.receipt_events("ModelVersionRegistered", receipt)
    assert dict(event.args) == {
        "versionId": 1,
        "modelHash": MODEL,
        "taskId": task_id,
        "parent": 0,
        "round": 0,
        "publisher": fs.tasks.address,
    }


def test_publish_task_numbers_tasks_from_one(fs, actors):
    assert [publish_task(fs, actors) for _ in range(3)] == [1, 2, 3]
    assert fs.tasks.count() == 3
    assert fs.tasks.total_held() == 3 * P.escrow
    assert [fs.tasks.state(t).model_version for t in (1, 2, 3)] == [1, 2, 3]


def test_publish_task_without_aggregator_leaves_it_unset(fs, actors):
    task_id, receipt = fs.tasks.publish(actors.requester, P)
    assert fs.tasks.state(task_id).aggregator == ZERO_ADDRESS
    assert fs.tasks.receipt_events("AggregatorSet", receipt) == []
    (event,) = fs.tasks.receipt_events("TaskPublished", receipt)
    assert event.args.aggregator == ZERO_ADDRESS


@pytest.mark.parametrize(
    "minimum, maximum, verifiers", [(2, 2, 0), (2, 17, 0), (2, 64, 16), (64, 64, 4)]
)
def test_publish_task_accepts_participant_bounds_within_limits(
    fs, actors, minimum, maximum, verifiers
):
    task_id = publish_task(
        fs, actors, min_participants=minimum, max_participants=maximum,
        verifiers_per_update=verifiers,
    )
    assert fs.tasks.params(task_id).max_participants == maximum


@pytest.mark.parametrize("maximum, verifiers", [(18, 0), (64, 0), (64, 17), (20, 40)])
def test_publish_task_with_too_many_verifiers_per_update_reverts_with_TooManyVerifiers(
    fs, actors, maximum, verifiers
):
    with reverts_with(
        "TaskRegistryTooManyVerifiers", verifiers, maximum, MAX_VERIFIERS
    ):
        publish_task(fs, actors, min_participants=2, max_participants=maximum,
                     verifiers_per_update=verifiers)


@pytest.mark.parametrize(
    "minimum, maximum", [(0, 4), (1, 4), (5, 4), (2, 65), (65, 65), (3, 0)]
)
def test_publish_task_with_bad_bounds_reverts_with_InvalidParticipantBounds(
    fs, actors, minimum, maximum
):
    with reverts_with("TaskRegistryInvalidParticipantBounds", minimum, maximum):
        publish_task(fs, actors, min_participants=minimum, max_participants=maximum)


BAD_SCHEDULES = [
    {"rounds": 0},
    {"train_duration": 0},
    {"verify_duration": 0},
    {"reveal_duration": 0},
    {"grace_period": 0},
    {"train_duration": MAX_PHASE_DURATION + 1},
    {"verify_duration": MAX_PHASE_DURATION + 1},
    {"reveal_duration": MAX_PHASE_DURATION + 1},
    {"grace_period": MAX_PHASE_DURATION + 1},
    {"train_duration": 2**64 - 1},
    {
        "rounds": 0,
        "train_duration": 0,
        "verify_duration": 0,
        "reveal_duration": 0,
        "grace_period": 0,
    },
]


@pytest.mark.parametrize(
    "overrides", BAD_SCHEDULES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_publish_task_with_empty_or_overlong_schedule_reverts_with_InvalidSchedule(
    fs, actors, overrides
):
    params = task_params(**overrides)
    with reverts_with(
        "TaskRegistryInvalidSchedule",
        params.rounds,
        params.train_duration,
        params.verify_duration,
        params.reveal_duration,
        params.grace_period,
    ):
        publish_raw(fs, actors.requester, params)


def test_publish_task_accepts_phases_of_exactly_the_maximum(fs, actors):
    longest = {
        "train_duration": MAX_PHASE_DURATION,
        "verify_duration": MAX_PHASE_DURATION,
        "reveal_duration": MAX_PHASE_DURATION,
        "grace_period": MAX_PHASE_DURATION,
    }
    task_id, _devices = open_task(fs, actors, 3, **longest)
    info = fs.tasks.round_info(task_id, 0)
    assert info.reveal_deadline == info.commit_deadline + 2 * MAX_PHASE_DURATION
    assert fs.chain.view(fs.tasks.functions.MAX_PHASE_DURATION()) == MAX_PHASE_DURATION


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
    task_id = publish_task(fs, actors, min_quality=MAX_SCORE)
    assert fs.tasks.params(task_id).min_quality == MAX_SCORE


def test_publish_task_with_zero_epsilon_budget_reverts_with_ZeroEpsilonBudget(
    fs, actors
):
    with reverts_with("TaskRegistryZeroEpsilonBudget"):
        publish_task(fs, actors, epsilon_budget=0)


@pytest.mark.parametrize("field", ["model_hash", "paillier_key_hash"])
def test_publish_task_with_zero_hash_reverts_with_ZeroHash(fs, actors, field):
    with reverts_with("TaskRegistryZeroHash"):
        publish_task(fs, actors, **{field: NO_HASH})


@pytest.mark.parametrize("delta", [-P.escrow, -1, 1])
def test_publish_task_with_wrong_escrow_reverts_with_WrongEscrow(fs, actors, delta):
    with reverts_with("TaskRegistryWrongEscrow", P.escrow, P.escrow + delta):
        publish_raw(fs, actors.requester, P, value=P.escrow + delta)
    assert fs.tasks.count() == 0 and fs.models.count() == 0


def test_publish_task_checks_the_schedule_before_the_reward_and_the_budget(fs, actors):
    params = task_params(train_duration=0, reward_per_round=0, epsilon_budget=0)
    with reverts_with("TaskRegistryInvalidSchedule", trainDuration=0):
        publish_raw(fs, actors.requester, params)


# ================================================================ allow-lists


def test_publish_task_with_an_allow_list_restricts_it(fs, actors):
    allowed = actors.devices[0].address
    task_id = publish_task(fs, actors, allow_list=[allowed])
    assert fs.tasks.state(task_id).restricted is True
    assert fs.tasks.is_allowed(task_id, allowed) is True
    assert fs.tasks.is_allowed(task_id, actors.devices[1].address) is False


def test_unrestricted_task_allows_anyone(fs, actors):
    task_id = publish_task(fs, actors)
    assert fs.tasks.state(task_id).restricted is False
    assert fs.tasks.is_allowed(task_id, actors.devices[5].address) is True
    assert fs.tasks.is_allowed(task_id, actors.stranger.address) is True


def test_allow_list_of_256_entries_is_accepted(fs, actors):
    listed = [Web3.to_checksum_address((0x1000 + i).to_bytes(20, "big")) for i in range(255)]
    task_id = publish_task(fs, actors, allow_list=listed + [actors.devices[5].address])
    assert fs.tasks.is_allowed(task_id, listed[0])
    assert fs.tasks.is_allowed(task_id, listed[-1])
    fs.tasks.join(actors.devices[5], task_id)
    assert fs.tasks.participants(task_id) == [actors.devices[5].address]


def test_allow_list_longer_than_256_reverts_with_AllowListTooLong(fs, actors):
    listed = [Web3.to_checksum_address((0x1000 + i).to_bytes(20, "big")) for i in range(257)]
    with reverts_with("TaskRegistryAllowListTooLong", 257, MAX_ALLOW_LIST):
        publish_task(fs, actors, allow_list=listed)


def test_listed_device_joins_and_unlisted_device_reverts_with_NotAllowed(fs, actors):
    d = actors.devices
    task_id = publish_task(fs, actors, allow_list=[d[0].address, d[4].address])
    fs.tasks.join(d[0], task_id)
    fs.tasks.join(d[4], task_id)  # another owner's device, listed itself
    for device in (d[1], d[5]):
        assert fs.tasks.is_allowed(task_id, device.address) is False
        with reverts_with("TaskRegistryNotAllowed", task_id, device.address):
            fs.tasks.join(device, task_id)
    assert fs.tasks.participants(task_id) == [d[0].address, d[4].address]


def test_listing_an_owner_allows_all_its_devices(fs, actors):
    d = actors.devices
    task_id = publish_task(fs, actors, allow_list=[actors.owner.address])
    allowed = [fs.tasks.is_allowed(task_id, x.address) for x in d]
    assert allowed == [True] * 4 + [False] * 2
    for device in d[:4]:
        fs.tasks.join(device, task_id)
    with reverts_with("TaskRegistryNotAllowed", task_id, d[4].address):
        fs.tasks.join(d[4], task_id)
    assert fs.tasks.participants(task_id) == addresses(d[:4])


def test_owner_listing_follows_the_device_registry(fs, actors):
    task_id = publish_task(fs, actors, allow_list=[actors.other_owner.address])
    newcomer = new_wallet()
    fs.chain.fund(newcomer.address, ETHER)
    assert fs.tasks.is_allowed(task_id, newcomer.address) is False
    fs.devices.register_device(actors.other_owner, newcomer)
    assert fs.tasks.is_allowed(task_id, newcomer.address) is True
    fs.tasks.join(newcomer, task_id)
    assert fs.tasks.member_status(task_id, newcomer.address) is MemberStatus.ACTIVE


def test_allow_lists_are_per_task(fs, actors):
    restricted = publish_task(fs, actors, allow_list=[actors.devices[0].address])
    other = publish_task(fs, actors, allow_list=[actors.devices[1].address])
    free = publish_task(fs, actors)
    device = actors.devices[1]
    assert [fs.tasks.is_allowed(t, device.address) for t in (restricted, other, free)] == [
        False,
        True,
        True,
    ]
    with reverts_with("TaskRegistryNotAllowed", restricted, device.address):
        fs.tasks.join(device, restricted)
    fs.tasks.join(device, other)
    fs.tasks.join(device, free)


def test_unregistered_account_on_a_restricted_task_reverts_with_DeviceNotActive_first(
    fs, actors
):
    task_id = publish_task(fs, actors, allow_list=[actors.devices[0].address])
    with reverts_with("TaskRegistryDeviceNotActive", actors.stranger.address):
        fs.tasks.join(actors.stranger, task_id)


def test_revoked_listed_device_reverts_with_DeviceNotActive(fs, actors):
    device = actors.devices[0]
    task_id = publish_task(fs, actors, allow_list=[device.address])
    fs.devices.revoke(actors.owner, device.address)
    with reverts_with("TaskRegistryDeviceNotActive", device.address):
        fs.tasks.join(device, task_id)


# ================================================================ unknown tasks


def _calls(fs, actors, task_id):
    """Every external function that needs a live task, as a call on `task_id`."""
    d0, newcomer = actors.devices[0], actors.devices[4]
    return {
        "setAggregator": lambda: fs.tasks.set_aggregator(
            actors.requester, task_id, actors.stranger.address
        ),
        "join": lambda: fs.tasks.join(newcomer, task_id),
        "openRound": lambda: fs.tasks.open_round(actors.aggregator, task_id, MODEL),
        "commitUpdate": lambda: fs.tasks.commit_update(d0, task_id, 0, h(1), 1),
        "commitScores": lambda: fs.tasks.commit_scores(d0, task_id, 0, h(2)),
        "revealScores": lambda: fs.tasks.reveal_scores(d0, task_id, 0, [0, 0], h(3)),
        "finalizeRound": lambda: finalize_raw(fs, actors.stranger, task_id, 0),
        "submitAggregate": lambda: fs.tasks.submit_aggregate(
            actors.aggregator, task_id, 0, h(2)
        ),
        "publishModel": lambda: fs.tasks.publish_model(
            actors.requester, task_id, 0, h(3)
        ),
        "cancelTask": lambda: fs.tasks.cancel(actors.requester, task_id),
    }


LIVE_FUNCTIONS = [
    "setAggregator",
    "join",
    "openRound",
    "commitUpdate",
    "commitScores",
    "revealScores",
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
    receipt = fs.tasks.set_aggregator(
        actors.requester, task_id, actors.stranger.address
    )
    assert fs.tasks.state(task_id).aggregator == actors.stranger.address
    (event,) = fs.tasks.receipt_events("AggregatorSet", receipt)
    assert (event.args.taskId, event.args.aggregator) == (
        task_id,
        actors.stranger.address,
    )
    fs.tasks.set_aggregator(actors.requester, task_id, actors.aggregator.address)
    assert fs.tasks.state(task_id).aggregator == actors.aggregator.address


def test_replaced_aggregator_loses_its_rights(fs, actors):
    task_id, _ = setup_task(fs, actors, 3)
    fs.tasks.set_aggregator(actors.requester, task_id, actors.stranger.address)
    with reverts_with("TaskRegistryNotAggregator", task_id, actors.aggregator.address):
        fs.tasks.open_round(actors.aggregator, task_id, MODEL)
    fs.tasks.open_round(actors.stranger, task_id, MODEL)
    assert fs.tasks.round_info(task_id, 0).stage is RoundStage.OPEN


@pytest.mark.parametrize("caller", ["stranger", "aggregator", "owner"])
def test_set_aggregator_by_non_requester_reverts_with_NotRequester(fs, actors, caller):
    task_id = publish_task(fs, actors)
    wallet = getattr(actors, caller)
    with reverts_with("TaskRegistryNotRequester", task_id, wallet.address):
        fs.tasks.set_aggregator(wallet, task_id, wallet.address)


def test_set_aggregator_to_zero_reverts_with_ZeroAddress(fs, actors):
    task_id = publish_task(fs, actors)
    with reverts_with("TaskRegistryZeroAddress"):
        fs.tasks.set_aggregator(actors.requester, task_id, ZERO_ADDRESS)


# ================================================================ join


def test_join_adds_active_participants_in_order(fs, actors):
    task_id = publish_task(fs, actors)
    devices = actors.devices[:3]
    for device in devices:
        receipt = fs.tasks.join(device, task_id)
    (event,) = fs.tasks.receipt_events("DeviceJoined", receipt)
    assert dict(event.args) == {
        "taskId": task_id,
        "device": devices[2].address,
        "waiting": False,
    }
    assert fs.tasks.participants(task_id) == addresses(devices)
    assert fs.tasks.waiting(task_id) == []
    assert all(
        fs.tasks.member_status(task_id, d.address) is MemberStatus.ACTIVE for d in devices
    )
    assert fs.tasks.member_status(task_id, actors.devices[3].address) is MemberStatus.NONE


def test_join_beyond_max_participants_goes_to_the_waiting_list(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, max_participants=4)
    late = actors.devices[4:6]
    for device in late:
        receipt = fs.tasks.join(device, task_id)
    (event,) = fs.tasks.receipt_events("DeviceJoined", receipt)
    assert (event.args.device, event.args.waiting) == (late[1].address, True)
    assert fs.tasks.participants(task_id) == addresses(devices)
    assert fs.tasks.waiting(task_id) == addresses(late)
    assert all(
        fs.tasks.member_status(task_id, d.address) is MemberStatus.WAITING for d in late
    )


def test_join_after_round_zero_opened_waits_even_when_not_full(fs, actors):
    task_id, devices = open_task(fs, actors, 3, max_participants=6)
    fs.tasks.join(actors.devices[3], task_id)
    assert fs.tasks.participants(task_id) == addresses(devices)
    assert fs.tasks.waiting(task_id) == [actors.devices[3].address]
    assert fs.tasks.member_status(task_id, actors.devices[3].address) is MemberStatus.WAITING
    assert fs.tasks.round_info(task_id, 0).participants == 3


def test_join_by_unregistered_account_reverts_with_DeviceNotActive(fs, actors):
    task_id = publish_task(fs, actors)
    with reverts_with("TaskRegistryDeviceNotActive", actors.stranger.address):
        fs.tasks.join(actors.stranger, task_id)


def test_join_by_revoked_device_reverts_with_DeviceNotActive(fs, actors):
    task_id = publish_task(fs, actors)
    device = actors.devices[0]
    fs.devices.revoke(actors.owner, device.address)
    with reverts_with("TaskRegistryDeviceNotActive", device.address):
        fs.tasks.join(device, task_id)


def test_join_twice_as_participant_reverts_with_AlreadyJoined(fs, actors):
    task_id, (device, *_) = setup_task(fs, actors, 3)
    with reverts_with(
        "TaskRegistryAlreadyJoined", task_id, device.address, MemberStatus.ACTIVE
    ):
        fs.tasks.join(device, task_id)


def test_join_twice_while_waiting_reverts_with_AlreadyJoined(fs, actors):
    task_id, _ = setup_task(fs, actors, 4, max_participants=4)
    late = actors.devices[4]
    fs.tasks.join(late, task_id)
    with reverts_with(
        "TaskRegistryAlreadyJoined", task_id, late.address, MemberStatus.WAITING
    ):
        fs.tasks.join(late, task_id)


def test_rejoin_after_elimination_reverts_with_AlreadyJoined(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, max_participants=4)
    matrix = {d: [8000, 7000, 6000, 5000] for d in devices}
    _, _, outcome = play_round(fs, actors, task_id, matrix=matrix)
    worst = devices[3]
    assert outcome.eliminated == worst.address
    with reverts_with(
        "TaskRegistryAlreadyJoined", task_id, worst.address, MemberStatus.ELIMINATED
    ):
        fs.tasks.join(worst, task_id)


def test_membership_is_per_task(fs, actors):
    first, devices = setup_task(fs, actors, 3)
    second = publish_task(fs, actors)
    fs.tasks.join(devices[0], second)
    assert fs.tasks.participants(second) == [devices[0].address]
    assert fs.tasks.member_status(first, devices[0].address) is MemberStatus.ACTIVE


# ================================================================ openRound


def test_open_round_starts_round_zero_with_three_phase_deadlines(fs, actors):
    task_id, devices = setup_task(fs, actors, 3)
    receipt = fs.tasks.open_round(actors.aggregator, task_id, MODEL)
    opened_at = block_time(fs, receipt)

    info = fs.tasks.round_info(task_id, 0)
    assert info.stage is RoundStage.OPEN
    assert info.commit_deadline == opened_at + TRAIN
    assert info.verify_deadline == opened_at + TRAIN + VERIFY
    assert info.reveal_deadline == opened_at + TRAIN + VERIFY + REVEAL
    assert (info.participants, info.assignment_size) == (3, 2)
    assert (
        info.committed,
        info.score_committed,
        info.revealed,
        info.accepted,
        info.reward_paid,
    ) == (0, 0, 0, 0, 0)
    assert (info.leader, info.eliminated) == (ZERO_ADDRESS, ZERO_ADDRESS)
    assert info.global_model_hash == MODEL
    state = fs.tasks.state(task_id)
    assert state.status is TaskStatus.RUNNING
    assert state.rounds_opened == 1
    assert state.last_progress_at == opened_at
    (event,) = fs.tasks.receipt_events("RoundOpened", receipt)
    assert dict(event.args) == {
        "taskId": task_id,
        "round": 0,
        "globalModelHash": MODEL,
        "commitDeadline": info.commit_deadline,
        "verifyDeadline": info.verify_deadline,
        "revealDeadline": info.reveal_deadline,
        "assignmentSize": info.assignment_size,
        "assignmentOffset": info.assignment_offset,
        "participants": addresses(devices),
    }


@pytest.mark.parametrize("n, k", [(3, 0), (5, 2), (6, 4)])
def test_round_opened_event_gives_every_verifier_its_assignment(fs, actors, n, k):
    """From RoundOpened alone a client knows whom each participant scores and who
    scores it: the circulant assignment over the event's participants, size and offset
    equals the contract's assignmentOf / verifiersOf."""
    task_id, _ = setup_task(fs, actors, n, min_participants=n, max_participants=n,
                            verifiers_per_update=k)
    receipt = fs.tasks.open_round(actors.aggregator, task_id, MODEL)
    (event,) = fs.tasks.receipt_events("RoundOpened", receipt)
    info = fs.tasks.round_info(task_id, 0)
    assert (event.args.assignmentSize, event.args.assignmentOffset) == (
        info.assignment_size, info.assignment_offset)
    assert event.args.assignmentSize == (n - 1 if k == 0 else k)
    members = list(event.args.participants)
    assignment = Assignment(len(members), event.args.assignmentSize,
                            event.args.assignmentOffset)
    for i, device in enumerate(members):
        assert fs.tasks.assignment(task_id, 0, device) == [
            members[j] for j in assignment.targets(i)]
        assert fs.tasks.verifiers(task_id, 0, device) == [
            members[j] for j in assignment.verifiers(i)]


def test_round_opened_event_of_a_later_round_has_that_rounds_assignment(fs, actors):
    task_id, _ = setup_task(fs, actors, 4, max_participants=4, verifiers_per_update=2)
    play_round(fs, actors, task_id, close=True)
    model = fs.tasks.state(task_id).current_model
    receipt = fs.tasks.open_round(actors.aggregator, task_id, model)
    (event,) = fs.tasks.receipt_events("RoundOpened", receipt)
    info = fs.tasks.round_info(task_id, 1)
    args = event.args
    assert (args.round, args.assignmentSize, args.assignmentOffset) == (
        1, info.assignment_size, info.assignment_offset)
    assert list(event.args.participants) == fs.tasks.participants(task_id)


def test_assignment_offset_comes_from_the_blocks_randomness(fs, actors):
    task_id, _ = setup_task(fs, actors, 3)
    receipt = fs.tasks.open_round(actors.aggregator, task_id, MODEL)
    block = fs.chain.w3.eth.get_block(receipt.block_number)
    prevrandao = bytes(block["mixHash"])
    digest = Web3.keccak(abi_encode(["bytes32", "uint256", "uint64"], [prevrandao, task_id, 0]))
    expected = int.from_bytes(digest, "big") % 2**32
    assert fs.tasks.round_info(task_id, 0).assignment_offset == expected


@pytest.mark.parametrize("caller", ["stranger", "requester"])
def test_open_round_by_non_aggregator_reverts_with_NotAggregator(fs, actors, caller):
    task_id, _ = setup_task(fs, actors, 3)
    wallet = getattr(actors, caller)
    with reverts_with("TaskRegistryNotAggregator", task_id, wallet.address):
        fs.tasks.open_round(wallet, task_id, MODEL)


def test_open_round_without_aggregator_reverts_with_NotAggregator(fs, actors):
    task_id = publish_task(fs, actors, with_aggregator=False)
    with reverts_with("TaskRegistryNotAggregator", task_id, actors.requester.address):
        fs.tasks.open_round(actors.requester, task_id, MODEL)


@pytest.mark.parametrize("joined", [0, 2])
def test_open_round_below_minimum_reverts_with_NotEnoughParticipants(
    fs, actors, joined
):
    task_id, _ = setup_task(fs, actors, joined, min_participants=3)
    with reverts_with("TaskRegistryNotEnoughParticipants", task_id, joined, 3):
        fs.tasks.open_round(actors.aggregator, task_id, MODEL)


def test_open_round_on_another_model_reverts_with_ModelMismatch(fs, actors):
    task_id, _ = setup_task(fs, actors, 3)
    with reverts_with("TaskRegistryModelMismatch", task_id, MODEL, h(9)):
        fs.tasks.open_round(actors.aggregator, task_id, h(9))


def test_next_round_opens_on_the_published_model_only(fs, actors):
    task_id, _ = finalized_task(fs, actors, 3)
    close_round(fs, actors, task_id, 0, new_model=h(77))
    with reverts_with("TaskRegistryModelMismatch", task_id, h(77), MODEL):
        fs.tasks.open_round(actors.aggregator, task_id, MODEL)
    fs.tasks.open_round(actors.aggregator, task_id, h(77))
    assert fs.tasks.round_info(task_id, 1).global_model_hash == h(77)
    assert fs.tasks.state(task_id).rounds_opened == 2


@pytest.mark.parametrize(
    "stage", [RoundStage.OPEN, RoundStage.FINALIZED, RoundStage.AGGREGATED]
)
def test_open_round_before_previous_is_closed_reverts_with_RoundInProgress(
    fs, actors, stage
):
    if stage is RoundStage.OPEN:
        task_id, _ = open_task(fs, actors, 3)
    else:
        task_id, _ = finalized_task(fs, actors, 3)
    if stage is RoundStage.AGGREGATED:
        fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))
    assert fs.tasks.round_info(task_id, 0).stage is stage
    with reverts_with("TaskRegistryRoundInProgress", task_id, 0, stage):
        fs.tasks.open_round(actors.aggregator, task_id, MODEL)


def test_open_round_promotes_waiting_devices_into_free_slots(fs, actors):
    d = actors.devices
    task_id, devices = setup_task(fs, actors, 3, max_participants=5)
    # Round 0: nobody reveals and nobody waits, so nobody leaves.
    round_ = open_round(fs, actors, task_id)
    finalize(fs, actors, task_id, round_)
    close_round(fs, actors, task_id, round_, new_model=MODEL)
    # Three devices join while the task runs: they wait.
    for late in (d[3], d[4], d[5]):
        receipt = fs.tasks.join(late, task_id)
        assert fs.tasks.receipt_events("DeviceJoined", receipt)[0].args.waiting is True
    assert fs.tasks.participants(task_id) == addresses(devices)
    assert fs.tasks.waiting(task_id) == addresses(d[3:6])

    receipt = fs.tasks.open_round(actors.aggregator, task_id, MODEL)
    # Two free slots (max 5): the earliest two waiting devices take them.
    assert fs.tasks.participants(task_id) == addresses(d[:5])
    assert fs.tasks.waiting(task_id) == [d[5].address]
    assert [fs.tasks.member_status(task_id, x.address) for x in d[3:6]] == [
        MemberStatus.ACTIVE,
        MemberStatus.ACTIVE,
        MemberStatus.WAITING,
    ]
    (event,) = fs.tasks.receipt_events("RoundOpened", receipt)
    assert list(event.args.participants) == addresses(d[:5])
    info = fs.tasks.round_info(task_id, 1)
    assert (info.participants, info.assignment_size) == (5, 4)
    # The promoted devices take part in the round.
    fs.tasks.commit_update(d[4], task_id, 1, h(1), 1)


def test_open_round_reaches_the_minimum_with_waiting_devices(fs, actors):
    d = actors.devices
    task_id, _devices = setup_task(fs, actors, 3, min_participants=3, max_participants=4)
    fs.devices.revoke(actors.owner, d[2].address)
    round_ = open_round(fs, actors, task_id)
    fs.tasks.join(d[3], task_id)
    commit_updates(fs, task_id, round_, d[:2])
    score_round(fs, task_id, round_, {d[0]: [7000] * 3, d[1]: [7000] * 3})
    outcome = finalize(fs, actors, task_id, round_)
    # d1 (the worst of two) is replaced by d3; the revoked d2 leaves without a replacement.
    assert outcome.eliminated == d[1].address
    assert fs.tasks.participants(task_id) == [d[0].address, d[3].address]
    fs.tasks.join(d[4], task_id)
    close_round(fs, actors, task_id, round_)
    fs.tasks.open_round(actors.aggregator, task_id, h(700))
    assert fs.tasks.participants(task_id) == [d[0].address, d[3].address, d[4].address]


# ================================================================ commitUpdate (train phase)


class TestCommitUpdate:
    """Participants commit the hashes of their encrypted updates and their ε spent."""

    def test_commit_update_records_the_hash_and_epsilon(self, fs, actors, round_open):
        task_id, devices = round_open
        receipt = fs.tasks.commit_update(devices[1], task_id, 0, h(42), 1_234_567)
        sub = fs.tasks.submission(task_id, 0, devices[1].address)
        assert (sub.update_hash, sub.epsilon) == (h(42), 1_234_567)
        assert sub.score_commitment == NO_HASH and sub.revealed is False
        assert fs.tasks.epsilon_of(task_id, devices[1].address) == 1_234_567
        assert fs.tasks.submission(task_id, 0, devices[0].address).update_hash == NO_HASH
        assert fs.tasks.epsilon_of(task_id, devices[0].address) == 0
        assert fs.tasks.round_info(task_id, 0).committed == 1
        (event,) = fs.tasks.receipt_events("UpdateCommitted", receipt)
        assert dict(event.args) == {
            "taskId": task_id,
            "round": 0,
            "device": devices[1].address,
            "updateHash": h(42),
            "epsilon": 1_234_567,
        }

    def test_commit_before_any_round_reverts_with_WrongRound(self, fs, actors):
        task_id, (device, *_) = setup_task(fs, actors, 3)
        with reverts_with("TaskRegistryWrongRound", task_id, 0, 0):
            fs.tasks.commit_update(device, task_id, 0, h(1), 1)

    @pytest.mark.parametrize("round_", [1, 7])
    def test_commit_to_another_round_reverts_with_WrongRound(
        self, fs, actors, round_, round_open
    ):
        task_id, (device, *_) = round_open
        with reverts_with("TaskRegistryWrongRound", task_id, round_, 0):
            fs.tasks.commit_update(device, task_id, round_, h(1), 1)

    def test_commit_to_a_past_round_reverts_with_WrongRound(
        self, fs, actors, round_finalized
    ):
        task_id, devices = round_finalized
        close_round(fs, actors, task_id, 0)
        open_round(fs, actors, task_id)
        with reverts_with("TaskRegistryWrongRound", task_id, 0, 1):
            fs.tasks.commit_update(devices[0], task_id, 0, h(1), epsilon_for(1))

    def test_commit_after_finalisation_reverts_with_WrongStage(
        self, fs, actors, round_finalized
    ):
        task_id, devices = round_finalized
        with reverts_with(
            "TaskRegistryWrongStage", task_id, 0, RoundStage.FINALIZED, RoundStage.OPEN
        ):
            fs.tasks.commit_update(devices[0], task_id, 0, h(1), 1)

    @pytest.mark.parametrize("who", ["stranger", "waiting"])
    def test_commit_by_non_participant_reverts_with_NotParticipant(
        self, fs, actors, who, round_open
    ):
        task_id, _ = round_open
        wallet = actors.stranger
        if who == "waiting":
            wallet = actors.devices[3]
            fs.tasks.join(wallet, task_id)
        with reverts_with("TaskRegistryNotParticipant", task_id, wallet.address):
            fs.tasks.commit_update(wallet, task_id, 0, h(1), 1)

    def test_commit_by_participant_revoked_since_joining_reverts_with_DeviceNotActive(
        self, fs, actors, round_open
    ):
        task_id, (device, *_) = round_open
        fs.devices.revoke(actors.owner, device.address)
        with reverts_with("TaskRegistryDeviceNotActive", device.address):
            fs.tasks.commit_update(device, task_id, 0, h(1), 1)

    def test_commit_after_the_commit_deadline_reverts_with_CommitTooLate(
        self, fs, actors, round_open
    ):
        task_id, (device, *_) = round_open
        info = fs.tasks.round_info(task_id, 0)
        fs.chain.advance_past(info.commit_deadline)
        with reverts_with(
            "TaskRegistryCommitTooLate",
            task_id,
            0,
            info.commit_deadline,
            gt(info.commit_deadline),
        ):
            fs.tasks.commit_update(device, task_id, 0, h(1), 1)

    def test_commit_just_before_the_deadline_succeeds(self, fs, actors, round_open):
        task_id, (device, *_) = round_open
        info = fs.tasks.round_info(task_id, 0)
        fs.chain.advance_time(info.commit_deadline - fs.chain.now() - 5)
        receipt = fs.tasks.commit_update(device, task_id, 0, h(1), 1)
        assert block_time(fs, receipt) <= info.commit_deadline

    def test_commit_of_zero_hash_reverts_with_ZeroHash(self, fs, actors, round_open):
        task_id, (device, *_) = round_open
        with reverts_with("TaskRegistryZeroHash"):
            fs.tasks.commit_update(device, task_id, 0, NO_HASH, 1)

    def test_commit_twice_reverts_with_AlreadyCommitted(self, fs, actors, round_open):
        task_id, (device, *_) = round_open
        fs.tasks.commit_update(device, task_id, 0, h(1), 5)
        with reverts_with("TaskRegistryAlreadyCommitted", task_id, 0, device.address):
            fs.tasks.commit_update(device, task_id, 0, h(2), 6)
        sub = fs.tasks.submission(task_id, 0, device.address)
        assert (sub.update_hash, sub.epsilon) == (h(1), 5)


# ================================================================ the ε ledger


class TestEpsilonLedger:
    """Each commit carries the device's cumulative ε (micro-ε): never decreasing, never
    above the task's budget."""

    @pytest.mark.parametrize("epsilon", [0, 1, P.epsilon_budget])
    def test_any_epsilon_up_to_the_budget_is_accepted(
        self, fs, actors, epsilon, round_open
    ):
        task_id, (device, *_) = round_open
        fs.tasks.commit_update(device, task_id, 0, h(1), epsilon)
        assert fs.tasks.epsilon_of(task_id, device.address) == epsilon

    @pytest.mark.parametrize("epsilon", [P.epsilon_budget + 1, 2**64 - 1])
    def test_epsilon_above_the_budget_reverts_with_PrivacyBudgetExceeded(
        self, fs, actors, epsilon, round_open
    ):
        task_id, (device, *_) = round_open
        with reverts_with(
            "TaskRegistryPrivacyBudgetExceeded",
            task_id,
            device.address,
            epsilon,
            P.epsilon_budget,
        ):
            fs.tasks.commit_update(device, task_id, 0, h(1), epsilon)
        assert fs.tasks.epsilon_of(task_id, device.address) == 0
        assert fs.tasks.round_info(task_id, 0).committed == 0

    def test_epsilon_grows_over_rounds_and_may_stay_equal(self, fs, actors):
        task_id, devices = setup_task(fs, actors, 3, rounds=3)
        d0 = devices[0].address
        play_round(fs, actors, task_id, close=True)  # ε 1e6 each
        assert fs.tasks.epsilon_of(task_id, d0) == epsilon_for(0)
        round_ = open_round(fs, actors, task_id)
        fs.tasks.commit_update(devices[0], task_id, round_, h(1), epsilon_for(0))  # equal
        fs.tasks.commit_update(devices[1], task_id, round_, h(2), 7_654_321)
        assert fs.tasks.epsilon_of(task_id, d0) == epsilon_for(0)
        assert fs.tasks.epsilon_of(task_id, devices[1].address) == 7_654_321
        assert fs.tasks.submission(task_id, 0, d0).epsilon == epsilon_for(0)
        assert fs.tasks.submission(task_id, 1, devices[1].address).epsilon == 7_654_321

    def test_epsilon_below_the_recorded_one_reverts_with_EpsilonDecreased(
        self, fs, actors
    ):
        task_id, devices = setup_task(fs, actors, 3, rounds=2)
        play_round(fs, actors, task_id, close=True)
        round_ = open_round(fs, actors, task_id)
        device = devices[2]
        recorded = epsilon_for(0)
        for reported in (recorded - 1, 0):
            with reverts_with(
                "TaskRegistryEpsilonDecreased",
                task_id,
                device.address,
                recorded,
                reported,
            ):
                fs.tasks.commit_update(device, task_id, round_, h(1), reported)
        assert fs.tasks.epsilon_of(task_id, device.address) == recorded

    def test_the_ledger_is_kept_per_task(self, fs, actors):
        first, devices = open_task(fs, actors, 3)
        second = publish_task(fs, actors, epsilon_budget=3)
        for device in devices:
            fs.tasks.join(device, second)
        open_round(fs, actors, second)
        device = devices[0]
        fs.tasks.commit_update(device, first, 0, h(1), 9_000_000)
        fs.tasks.commit_update(device, second, 0, h(2), 3)
        assert fs.tasks.epsilon_of(first, device.address) == 9_000_000
        assert fs.tasks.epsilon_of(second, device.address) == 3
        with reverts_with(
            "TaskRegistryPrivacyBudgetExceeded", second, devices[1].address, 4, 3
        ):
            fs.tasks.commit_update(devices[1], second, 0, h(3), 4)

    def test_a_device_that_reaches_the_budget_can_only_report_the_budget(
        self, fs, actors
    ):
        budget = 2_000_000
        task_id, devices = setup_task(fs, actors, 3, rounds=2, epsilon_budget=budget)
        round_ = open_round(fs, actors, task_id)
        commit_updates(fs, task_id, round_, devices, epsilon=budget)
        finalize(fs, actors, task_id, round_)
        close_round(fs, actors, task_id, round_, new_model=MODEL)
        round_ = open_round(fs, actors, task_id)
        device = devices[0]
        with reverts_with(
            "TaskRegistryPrivacyBudgetExceeded", task_id, device.address, budget + 1, budget
        ):
            fs.tasks.commit_update(device, task_id, round_, h(1), budget + 1)
        fs.tasks.commit_update(device, task_id, round_, h(1), budget)


# ================================================================ commitScores (verify phase)


class TestCommitScores:
    """Participants that committed an update commit to their scores once commits close."""

    def test_commit_scores_records_the_commitment(self, fs, actors, all_committed):
        task_id, devices = all_committed
        info = fs.tasks.round_info(task_id, 0)
        # Everyone committed: the verify phase opened before the commit deadline.
        assert fs.chain.now() < info.commit_deadline
        receipt = fs.tasks.commit_scores(devices[0], task_id, 0, h(11))
        sub = fs.tasks.submission(task_id, 0, devices[0].address)
        assert (sub.score_commitment, sub.revealed) == (h(11), False)
        assert fs.tasks.round_info(task_id, 0).score_committed == 1
        (event,) = fs.tasks.receipt_events("ScoresCommitted", receipt)
        assert dict(event.args) == {
            "taskId": task_id,
            "round": 0,
            "device": devices[0].address,
            "commitment": h(11),
        }

    @pytest.mark.parametrize("committer", [True, False])
    def test_commit_scores_while_commits_are_open_reverts_with_PhaseNotOpen(
        self, fs, actors, committer, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        info = fs.tasks.round_info(task_id, 0)
        device = devices[0] if committer else devices[2]
        with reverts_with(
            "TaskRegistryPhaseNotOpen",
            task_id,
            0,
            info.commit_deadline,
            at_most(info.commit_deadline),
        ):
            fs.tasks.commit_scores(device, task_id, 0, h(11))

    def test_verify_phase_opens_at_the_commit_deadline_when_someone_did_not_commit(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        fs.chain.advance_past(fs.tasks.round_info(task_id, 0).commit_deadline)
        fs.tasks.commit_scores(devices[0], task_id, 0, h(11))
        assert fs.tasks.round_info(task_id, 0).score_committed == 1

    def test_commit_scores_just_before_the_verify_deadline_succeeds(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        info = fs.tasks.round_info(task_id, 0)
        fs.chain.advance_time(info.verify_deadline - fs.chain.now() - 5)
        receipt = fs.tasks.commit_scores(devices[0], task_id, 0, h(11))
        assert block_time(fs, receipt) <= info.verify_deadline

    def test_commit_scores_after_the_verify_deadline_reverts_with_PhaseClosed(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        info = fs.tasks.round_info(task_id, 0)
        fs.chain.advance_past(info.verify_deadline)
        with reverts_with(
            "TaskRegistryPhaseClosed",
            task_id,
            0,
            info.verify_deadline,
            gt(info.verify_deadline),
        ):
            fs.tasks.commit_scores(devices[0], task_id, 0, h(11))

    def test_commit_scores_without_an_update_reverts_with_NotCommitted(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        fs.chain.advance_past(fs.tasks.round_info(task_id, 0).commit_deadline)
        with reverts_with("TaskRegistryNotCommitted", task_id, 0, devices[2].address):
            fs.tasks.commit_scores(devices[2], task_id, 0, h(11))

    def test_commit_scores_by_non_participant_reverts_with_NotParticipant(
        self, fs, actors, all_committed
    ):
        task_id, _ = all_committed
        with reverts_with("TaskRegistryNotParticipant", task_id, actors.stranger.address):
            fs.tasks.commit_scores(actors.stranger, task_id, 0, h(11))

    def test_commit_scores_by_revoked_participant_reverts_with_DeviceNotActive(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        fs.devices.revoke(actors.owner, devices[1].address)
        with reverts_with("TaskRegistryDeviceNotActive", devices[1].address):
            fs.tasks.commit_scores(devices[1], task_id, 0, h(11))

    def test_commit_scores_twice_reverts_with_AlreadyScored(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        fs.tasks.commit_scores(devices[0], task_id, 0, h(11))
        with reverts_with("TaskRegistryAlreadyScored", task_id, 0, devices[0].address):
            fs.tasks.commit_scores(devices[0], task_id, 0, h(12))
        submission = fs.tasks.submission(task_id, 0, devices[0].address)
        assert submission.score_commitment == h(11)

    def test_zero_commitment_reverts_with_ZeroHash(self, fs, actors, all_committed):
        task_id, devices = all_committed
        with reverts_with("TaskRegistryZeroHash"):
            fs.tasks.commit_scores(devices[0], task_id, 0, NO_HASH)

    def test_commit_scores_after_finalisation_reverts_with_WrongStage(
        self, fs, actors, round_finalized
    ):
        task_id, devices = round_finalized
        with reverts_with(
            "TaskRegistryWrongStage", task_id, 0, RoundStage.FINALIZED, RoundStage.OPEN
        ):
            fs.tasks.commit_scores(devices[0], task_id, 0, h(11))

    def test_commit_scores_to_another_round_reverts_with_WrongRound(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        with reverts_with("TaskRegistryWrongRound", task_id, 1, 0):
            fs.tasks.commit_scores(devices[0], task_id, 1, h(11))


# ================================================================ revealScores (reveal phase)


def test_score_commitment_view_matches_the_client_and_binds_every_field(fs, actors):
    a, b = actors.devices[0].address, actors.devices[1].address
    base = (3, 1, [7000, 0, 10_000], h(1), a)
    view = lambda *args: bytes(fs.chain.view(fs.tasks.functions.scoreCommitment(*args)))
    assert view(*base) == score_commitment(*base)
    expected = Web3.keccak(
        abi_encode(["uint256", "uint64", "uint16[]", "bytes32", "address"], list(base))
    )
    assert view(*base) == bytes(expected)
    variants = [
        (4, 1, [7000, 0, 10_000], h(1), a),
        (3, 2, [7000, 0, 10_000], h(1), a),
        (3, 1, [7000, 0, 10_001], h(1), a),
        (3, 1, [7000, 0], h(1), a),
        (3, 1, [7000, 0, 10_000], h(2), a),
        (3, 1, [7000, 0, 10_000], h(1), b),
    ]
    assert len({view(*base)} | {view(*v) for v in variants}) == 1 + len(variants)


class TestRevealScores:
    """Score committers reveal their scores and salt once the verify phase closes."""

    def test_reveal_records_the_scores(self, fs, actors, all_score_committed):
        task_id, devices, rows = all_score_committed
        info = fs.tasks.round_info(task_id, 0)
        # Everyone committed to scores: the reveal phase opened before the verify deadline.
        assert fs.chain.now() < info.verify_deadline
        device = devices[0]
        receipt = fs.tasks.reveal_scores(
            device, task_id, 0, rows[device], salt_of(0, device)
        )
        sub = fs.tasks.submission(task_id, 0, device.address)
        assert (sub.revealed, sub.quality, sub.accepted) == (True, 0, False)
        assert fs.tasks.round_info(task_id, 0).revealed == 1
        (event,) = fs.tasks.receipt_events("ScoresRevealed", receipt)
        assert dict(event.args) == {
            "taskId": task_id,
            "round": 0,
            "device": device.address,
            "scores": [7000, 7000],
        }

    def test_reveal_while_commits_are_open_reverts_with_PhaseNotOpen(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        info = fs.tasks.round_info(task_id, 0)
        with reverts_with(
            "TaskRegistryPhaseNotOpen",
            task_id,
            0,
            info.verify_deadline,
            at_most(info.commit_deadline),
        ):
            fs.tasks.reveal_scores(devices[0], task_id, 0, [1, 2], h(1))

    def test_reveal_while_scores_are_still_being_committed_reverts_with_PhaseNotOpen(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        commit_scores_of(fs, devices[0], task_id, 0, [7000, 7000])
        info = fs.tasks.round_info(task_id, 0)
        with reverts_with(
            "TaskRegistryPhaseNotOpen",
            task_id,
            0,
            info.verify_deadline,
            at_most(info.verify_deadline),
        ):
            fs.tasks.reveal_scores(
                devices[0], task_id, 0, [7000, 7000], salt_of(0, devices[0])
            )

    def test_reveal_phase_opens_at_the_verify_deadline_when_someone_did_not_commit_scores(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        commit_scores_of(fs, devices[0], task_id, 0, [7000, 7000])
        fs.chain.advance_past(fs.tasks.round_info(task_id, 0).verify_deadline)
        fs.tasks.reveal_scores(
            devices[0], task_id, 0, [7000, 7000], salt_of(0, devices[0])
        )
        assert fs.tasks.round_info(task_id, 0).revealed == 1

    def test_reveal_just_before_the_reveal_deadline_succeeds(
        self, fs, actors, all_score_committed
    ):
        task_id, devices, rows = all_score_committed
        info = fs.tasks.round_info(task_id, 0)
        fs.chain.advance_time(info.reveal_deadline - fs.chain.now() - 5)
        receipt = fs.tasks.reveal_scores(
            devices[1], task_id, 0, rows[devices[1]], salt_of(0, devices[1])
        )
        assert block_time(fs, receipt) <= info.reveal_deadline

    def test_reveal_after_the_reveal_deadline_reverts_with_PhaseClosed(
        self, fs, actors, all_score_committed
    ):
        task_id, devices, rows = all_score_committed
        info = fs.tasks.round_info(task_id, 0)
        fs.chain.advance_past(info.reveal_deadline)
        with reverts_with(
            "TaskRegistryPhaseClosed",
            task_id,
            0,
            info.reveal_deadline,
            gt(info.reveal_deadline),
        ):
            fs.tasks.reveal_scores(
                devices[0], task_id, 0, rows[devices[0]], salt_of(0, devices[0])
            )

    @pytest.mark.parametrize("committed_update", [True, False])
    def test_reveal_without_a_score_commitment_reverts_with_NoScoreCommitment(
        self, fs, actors, committed_update, round_open
    ):
        task_id, devices = round_open
        committers = devices if committed_update else devices[:2]
        commit_updates(fs, task_id, 0, committers)
        commit_scores(fs, task_id, 0, {d: [7000, 7000] for d in devices[:2]})
        fs.chain.advance_past(fs.tasks.round_info(task_id, 0).verify_deadline)
        with reverts_with(
            "TaskRegistryNoScoreCommitment", task_id, 0, devices[2].address
        ):
            fs.tasks.reveal_scores(
                devices[2], task_id, 0, [7000, 7000], salt_of(0, devices[2])
            )

    def test_reveal_twice_reverts_with_AlreadyRevealed(
        self, fs, actors, all_score_committed
    ):
        task_id, devices, rows = all_score_committed
        device = devices[2]
        fs.tasks.reveal_scores(device, task_id, 0, rows[device], salt_of(0, device))
        with reverts_with("TaskRegistryAlreadyRevealed", task_id, 0, device.address):
            fs.tasks.reveal_scores(device, task_id, 0, rows[device], salt_of(0, device))
        assert fs.tasks.round_info(task_id, 0).revealed == 1

    @pytest.mark.parametrize(
        "scores, salt",
        [
            ([7000, 7000], h(99)),  # wrong salt
            ([7000, 7001], None),  # wrong scores
            ([7000], None),  # fewer scores
            ([7000, 7000, 7000], None),  # more scores
            ([7000, 7000], NO_HASH),
        ],
        ids=["wrong-salt", "wrong-score", "fewer-scores", "more-scores", "zero-salt"],
    )
    def test_reveal_that_does_not_open_the_commitment_reverts_with_RevealMismatch(
        self, fs, actors, scores, salt, all_score_committed
    ):
        task_id, devices, _ = all_score_committed
        device = devices[1]
        salt = salt_of(0, device) if salt is None else salt
        commitment = fs.tasks.submission(task_id, 0, device.address).score_commitment
        computed = score_commitment(task_id, 0, scores, salt, device.address)
        with reverts_with(
            "TaskRegistryRevealMismatch", task_id, 0, device.address, commitment, computed
        ):
            fs.tasks.reveal_scores(device, task_id, 0, scores, salt)
        assert fs.tasks.submission(task_id, 0, device.address).revealed is False

    def test_revealing_another_devices_scores_and_salt_reverts_with_RevealMismatch(
        self, fs, actors, all_score_committed
    ):
        task_id, (d0, d1, _), rows = all_score_committed
        mine = fs.tasks.submission(task_id, 0, d1.address).score_commitment
        computed = score_commitment(task_id, 0, rows[d0], salt_of(0, d0), d1.address)
        with reverts_with(
            "TaskRegistryRevealMismatch", task_id, 0, d1.address, mine, computed
        ):
            fs.tasks.reveal_scores(d1, task_id, 0, rows[d0], salt_of(0, d0))

    def test_a_copied_commitment_cannot_be_revealed_by_the_copier(
        self, fs, actors, all_committed
    ):
        # d1 watches the mempool and posts d0's commitment as its own: it cannot open it,
        # because the commitment binds the sender.
        task_id, (d0, d1, d2) = all_committed
        scores, salt = [9000, 3000], salt_of(0, d0)
        copied = score_commitment(task_id, 0, scores, salt, d0.address)
        fs.tasks.commit_scores(d0, task_id, 0, copied)
        fs.tasks.commit_scores(d1, task_id, 0, copied)
        commit_scores_of(fs, d2, task_id, 0, [7000, 7000])
        computed = score_commitment(task_id, 0, scores, salt, d1.address)
        with reverts_with(
            "TaskRegistryRevealMismatch", task_id, 0, d1.address, copied, computed
        ):
            fs.tasks.reveal_scores(d1, task_id, 0, scores, salt)
        fs.tasks.reveal_scores(d0, task_id, 0, scores, salt)
        assert fs.tasks.submission(task_id, 0, d0.address).revealed is True

    @pytest.mark.parametrize("field", ["task", "round"])
    def test_a_commitment_made_for_another_task_or_round_reverts_with_RevealMismatch(
        self, fs, actors, field, all_committed
    ):
        task_id, devices = all_committed
        device, scores, salt = devices[0], [7000, 7000], salt_of(0, devices[0])
        other = (task_id + 1, 0) if field == "task" else (task_id, 1)
        stale = score_commitment(*other, scores, salt, device.address)
        fs.tasks.commit_scores(device, task_id, 0, stale)
        commit_scores(fs, task_id, 0, {d: [7000, 7000] for d in devices[1:]})
        computed = score_commitment(task_id, 0, scores, salt, device.address)
        with reverts_with(
            "TaskRegistryRevealMismatch", task_id, 0, device.address, stale, computed
        ):
            fs.tasks.reveal_scores(device, task_id, 0, scores, salt)

    @pytest.mark.parametrize("given", [0, 1, 3])
    def test_scores_not_one_per_assigned_update_revert_with_ScoreCountMismatch(
        self, fs, actors, given, all_committed
    ):
        task_id, devices = all_committed
        device, scores = devices[0], [5000] * given
        commit_scores_of(fs, device, task_id, 0, scores)
        commit_scores(fs, task_id, 0, {d: [7000, 7000] for d in devices[1:]})
        with reverts_with("TaskRegistryScoreCountMismatch", task_id, 0, 2, given):
            fs.tasks.reveal_scores(device, task_id, 0, scores, salt_of(0, device))

    @pytest.mark.parametrize("index, score", [(0, 10_001), (1, 10_001), (1, 65_535)])
    def test_score_above_100_percent_reverts_with_ScoreOutOfRange(
        self, fs, actors, index, score, all_committed
    ):
        task_id, devices = all_committed
        device, scores = devices[0], [10_000, 10_000]
        scores[index] = score
        commit_scores_of(fs, device, task_id, 0, scores)
        commit_scores(fs, task_id, 0, {d: [7000, 7000] for d in devices[1:]})
        with reverts_with("TaskRegistryScoreOutOfRange", index, score):
            fs.tasks.reveal_scores(device, task_id, 0, scores, salt_of(0, device))

    def test_scores_of_0_and_100_percent_are_accepted(self, fs, actors, all_committed):
        task_id, devices = all_committed
        rows = {devices[0]: [0, 10_000], devices[1]: [10_000, 0], devices[2]: [0, 0]}
        commit_scores(fs, task_id, 0, rows)
        reveal_scores(fs, task_id, 0, rows)
        assert fs.tasks.round_info(task_id, 0).revealed == 3

    def test_reveal_by_non_participant_reverts_with_NotParticipant(
        self, fs, actors, all_score_committed
    ):
        task_id, _, _ = all_score_committed
        with reverts_with("TaskRegistryNotParticipant", task_id, actors.stranger.address):
            fs.tasks.reveal_scores(actors.stranger, task_id, 0, [1, 1], h(1))

    def test_reveal_by_revoked_participant_reverts_with_DeviceNotActive(
        self, fs, actors, all_score_committed
    ):
        task_id, devices, rows = all_score_committed
        fs.devices.revoke(actors.owner, devices[0].address)
        with reverts_with("TaskRegistryDeviceNotActive", devices[0].address):
            fs.tasks.reveal_scores(
                devices[0], task_id, 0, rows[devices[0]], salt_of(0, devices[0])
            )

    def test_reveal_after_finalisation_reverts_with_WrongStage(
        self, fs, actors, round_finalized
    ):
        task_id, devices = round_finalized
        with reverts_with(
            "TaskRegistryWrongStage", task_id, 0, RoundStage.FINALIZED, RoundStage.OPEN
        ):
            fs.tasks.reveal_scores(
                devices[0], task_id, 0, [7000, 7000], salt_of(0, devices[0])
            )


# ================================================================ finalizeRound: timing


class TestFinalizeRoundTiming:
    """When a round may be finalised: after the reveal deadline, or as soon as every
    score commitment is revealed once the verify phase is closed."""

    def _not_over(self, fs, task_id):
        info = fs.tasks.round_info(task_id, 0)
        return reverts_with(
            "TaskRegistryRoundNotOver",
            task_id,
            0,
            info.reveal_deadline,
            at_most(info.reveal_deadline),
        )

    def test_finalize_while_commits_are_open_reverts_with_RoundNotOver(
        self, fs, actors, round_open
    ):
        task_id, devices = round_open
        commit_updates(fs, task_id, 0, devices[:2])
        with self._not_over(fs, task_id):
            finalize_raw(fs, actors.stranger, task_id, 0)

    def test_finalize_while_scores_are_being_committed_reverts_with_RoundNotOver(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        commit_scores(fs, task_id, 0, {d: [7000, 7000] for d in devices[:2]})
        with self._not_over(fs, task_id):
            finalize_raw(fs, actors.stranger, task_id, 0)

    def test_finalize_before_every_reveal_reverts_with_RoundNotOver_until_the_deadline(
        self, fs, actors, all_score_committed
    ):
        task_id, devices, rows = all_score_committed
        reveal_scores(fs, task_id, 0, {d: rows[d] for d in devices[:2]})
        with self._not_over(fs, task_id):
            finalize_raw(fs, actors.stranger, task_id, 0)
        fs.chain.advance_past(fs.tasks.round_info(task_id, 0).reveal_deadline)
        receipt = finalize_raw(fs, actors.stranger, task_id, 0)
        assert fs.tasks.round_info(task_id, 0).stage is RoundStage.FINALIZED
        assert fs.tasks.state(task_id).last_progress_at == block_time(fs, receipt)

    def test_finalize_is_allowed_early_once_every_commitment_is_revealed(
        self, fs, actors, all_score_committed
    ):
        task_id, _devices, rows = all_score_committed
        reveal_scores(fs, task_id, 0, rows)
        assert fs.chain.now() < fs.tasks.round_info(task_id, 0).commit_deadline
        finalize_raw(fs, actors.stranger, task_id, 0)
        assert fs.tasks.round_info(task_id, 0).stage is RoundStage.FINALIZED

    def test_finalize_is_allowed_after_the_verify_deadline_once_every_commitment_is_revealed(
        self, fs, actors, all_committed
    ):
        task_id, devices = all_committed
        rows = {d: [7000, 7000] for d in devices[:2]}
        commit_scores(fs, task_id, 0, rows)
        reveal_scores(fs, task_id, 0, rows)  # waits for the verify deadline
        assert fs.chain.now() < fs.tasks.round_info(task_id, 0).reveal_deadline
        finalize_raw(fs, actors.stranger, task_id, 0)
        assert fs.tasks.round_info(task_id, 0).stage is RoundStage.FINALIZED

    def test_finalize_right_after_the_commit_deadline_when_nobody_committed(
        self, fs, actors, round_open
    ):
        task_id, _ = round_open
        info = fs.tasks.round_info(task_id, 0)
        fs.chain.advance_past(info.commit_deadline)
        assert fs.chain.now() < info.verify_deadline
        finalize_raw(fs, actors.stranger, task_id, 0)
        assert fs.tasks.round_info(task_id, 0).stage is RoundStage.AGGREGATED

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


def _finalize_matrix(fs, actors, n, matrix_by_index, *, reveal=None, **overrides):
    """Runs round 0 with `n` participants: everyone commits; participant i commits to
    its scores from the full row matrix_by_index[i] (no row: it does not score) and
    reveals them (only the indices in `reveal` when given)."""
    task_id, devices = committed_task(
        fs, actors, n, max_participants=max(n, 4), **overrides
    )
    matrix = {devices[i]: row for i, row in matrix_by_index.items()}
    revealers = None if reveal is None else [devices[i] for i in reveal]
    score_round(fs, task_id, 0, matrix, reveal=revealers)
    outcome = finalize(fs, actors, task_id, 0)
    return task_id, devices, outcome


SPREAD = {
    0: [0, 8000, 6000, 3000],
    1: [9000, 0, 6500, 2000],
    2: [8500, 7000, 0, 2500],
    3: [9500, 7500, 5000, 0],
}  # qualities 9000, 7500, 6000, 2500


def test_finalize_takes_the_median_of_peer_scores_names_leader_and_excludes_worst(
    fs, actors
):
    task_id, devices, outcome = _finalize_matrix(
        fs, actors, 4, SPREAD, reward_per_round=ETHER, min_participants=3
    )
    ids = addresses(devices)
    # Medians of the columns, own scores left out: (9000, 8500, 9500) -> 9000, etc.
    assert [fs.tasks.submission(task_id, 0, d).quality for d in ids] == [
        9000,
        7500,
        6000,
        2500,
    ]
    assert outcome.quality == dict(zip(ids, [9000, 7500, 6000, 2500]))
    info = fs.tasks.round_info(task_id, 0)
    assert info.leader == outcome.leader == ids[0]
    assert info.eliminated == outcome.eliminated == ids[3]
    assert outcome.accepted == tuple(ids[:3])
    # Shares of 1 ether in proportion to 9000 : 7500 : 6000 (sum 22500).
    expected = [ETHER * 9000 // 22500, ETHER * 7500 // 22500, ETHER * 6000 // 22500, 0]
    expected[0] += ETHER - sum(expected)
    assert [fs.tasks.submission(task_id, 0, d).reward for d in ids] == expected
    assert [fs.vault.balance_of(d) for d in ids] == expected
    assert [fs.tasks.submission(task_id, 0, d).accepted for d in ids] == [
        True,
        True,
        True,
        False,
    ]
    assert (info.accepted, info.revealed, info.reward_paid, info.stage) == (
        3,
        4,
        ETHER,
        RoundStage.FINALIZED,
    )


def test_finalize_emits_quality_reward_elimination_and_round_events(fs, actors):
    task_id, devices = committed_task(fs, actors, 4, max_participants=4)
    fs.tasks.join(actors.devices[4], task_id)
    score_round(fs, task_id, 0, {devices[i]: row for i, row in SPREAD.items()})
    receipt = finalize_raw(fs, actors.stranger, task_id, 0)
    ids = addresses(devices)
    model = expected_round(4, SPREAD, ETHER)
    assessed = fs.tasks.receipt_events("QualityAssessed", receipt)
    assert [dict(e.args) for e in assessed] == [
        {
            "taskId": task_id,
            "round": 0,
            "device": ids[i],
            "quality": model.quality[i],
            "accepted": model.accepted[i],
            "reward": model.rewards[i],
        }
        for i in range(4)
    ]
    (eliminated,) = fs.tasks.receipt_events("ParticipantEliminated", receipt)
    assert dict(eliminated.args) == {
        "taskId": task_id,
        "round": 0,
        "device": ids[3],
        "replacement": actors.devices[4].address,
    }
    (final,) = fs.tasks.receipt_events("RoundFinalized", receipt)
    assert dict(final.args) == {
        "taskId": task_id,
        "round": 0,
        "leader": ids[0],
        "eliminated": ids[3],
        "accepted": ids[:3],
        "rewardPaid": ETHER,
    }
    credited = fs.vault.receipt_events("RewardCredited", receipt)
    assert [(e.args.device, e.args.payer, e.args.amount) for e in credited] == [
        (ids[i], fs.tasks.address, model.rewards[i]) for i in range(3)
    ]
    # The vault is credited last, after every state change of the round.
    settled = [*assessed, eliminated, final]
    assert max(e.logIndex for e in settled) == final.logIndex
    assert final.logIndex < min(e.logIndex for e in credited)


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
    assert sum(got) == reward == fs.tasks.round_info(task_id, 0).reward_paid
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
    task_id, devices, outcome = _finalize_matrix(
        fs, actors, 4, SPREAD, min_quality=threshold
    )
    assert outcome.accepted == tuple(devices[i].address for i in accepted)
    for i, device in enumerate(devices):
        paid = outcome.rewards[device.address]
        assert (paid > 0) == (i in accepted)
        assert fs.vault.balance_of(device.address) == paid
    info = fs.tasks.round_info(task_id, 0)
    if accepted:
        assert info.reward_paid == ETHER and info.stage is RoundStage.FINALIZED
    else:
        assert info.reward_paid == 0 and info.stage is RoundStage.AGGREGATED
        assert fs.tasks.state(task_id).escrow == P.escrow
    assert outcome.eliminated == devices[3].address  # the worst still leaves


@pytest.mark.parametrize(
    "gap, min_quality, accepted",
    [(10_000, 0, [0, 1, 2]), (3000, 0, [0, 1, 2]), (1000, 0, [0, 1, 2]),
     (750, 0, [0, 1, 2]), (749, 0, [0, 1]), (0, 0, [0, 1]), (5000, 8000, [0]),
     (0, 9001, [])],
)
def test_quality_gap_rejects_updates_far_below_the_rounds_median(
    fs, actors, gap, min_quality, accepted
):
    # Qualities 9000, 7500, 6000, 2500: the median is (6000 + 7500) // 2 = 6750, so the
    # threshold is max(min_quality, 6750 - gap); the worst (2500) never gets in.
    task_id, devices, outcome = _finalize_matrix(
        fs, actors, 4, SPREAD, min_quality=min_quality, quality_gap=gap
    )
    assert fs.tasks.params(task_id).quality_gap == gap
    assert outcome.accepted == tuple(devices[i].address for i in accepted)
    model = expected_round(4, SPREAD, ETHER, min_quality, quality_gap=gap)
    assert [i for i, ok in enumerate(model.accepted) if ok] == accepted
    for i, device in enumerate(devices):
        assert outcome.rewards.get(device.address, 0) == model.rewards[i]


def test_participant_that_committed_scores_but_did_not_reveal_gets_nothing(fs, actors):
    rows = {
        0: [0, 8000, 9000, 7000],
        1: [8000, 0, 9000, 7000],
        2: [1, 1, 0, 1],  # committed to, never revealed: these scores do not count
        3: [8000, 8000, 9000, 0],
    }
    task_id, devices, outcome = _finalize_matrix(fs, actors, 4, rows, reveal=[0, 1, 3])
    silent = devices[2].address
    sub = fs.tasks.submission(task_id, 0, silent)
    assert sub.update_hash != NO_HASH and sub.score_commitment != NO_HASH
    assert sub.revealed is False
    assert (sub.quality, sub.accepted, sub.reward) == (0, False, 0)
    assert fs.vault.balance_of(silent) == 0
    # The scores it received are ignored; it is not eligible for elimination either.
    model = expected_round(4, {i: rows[i] for i in (0, 1, 3)}, ETHER)
    assert [outcome.quality[d.address] for d in devices] == model.quality
    assert outcome.eliminated == devices[model.worst].address != silent
    assert sum(outcome.rewards.values()) == ETHER
    assert fs.tasks.round_info(task_id, 0).revealed == 3


def test_participant_that_committed_but_did_not_score_gets_nothing(fs, actors):
    rows = {
        0: [0, 8000, 9000, 7000],
        1: [8000, 0, 9000, 7000],
        3: [8000, 8000, 9000, 0],
    }
    task_id, devices, outcome = _finalize_matrix(fs, actors, 4, rows)
    silent = devices[2].address
    sub = fs.tasks.submission(task_id, 0, silent)
    assert sub.update_hash != NO_HASH and sub.score_commitment == NO_HASH
    assert (sub.quality, sub.revealed, sub.accepted, sub.reward) == (0, False, False, 0)
    model = expected_round(4, rows, ETHER)
    assert [outcome.quality[d.address] for d in devices] == model.quality
    assert outcome.eliminated == devices[model.worst].address != silent
    assert sum(outcome.rewards.values()) == ETHER


def test_device_that_did_not_commit_gets_nothing(fs, actors):
    task_id, devices = open_task(fs, actors, 4, max_participants=4)
    commit_updates(fs, task_id, 0, devices[:3])
    matrix = {
        devices[0]: [0, 8000, 6000, 9000],
        devices[1]: [8000, 0, 7000, 9000],
        devices[2]: [8000, 8000, 0, 9000],
    }
    score_round(fs, task_id, 0, matrix)
    outcome = finalize(fs, actors, task_id, 0)
    absent = devices[3].address
    assert fs.tasks.submission(task_id, 0, absent) == Submission(
        NO_HASH, NO_HASH, 0, 0, False, False, 0
    )
    assert outcome.rewards[absent] == 0 and fs.vault.balance_of(absent) == 0
    assert absent not in outcome.accepted
    # Its update gets no quality even though the others scored it.
    assert outcome.quality[absent] == 0
    info = fs.tasks.round_info(task_id, 0)
    assert (info.committed, info.score_committed, info.revealed) == (3, 3, 3)
    assert sum(outcome.rewards.values()) == ETHER


def test_finalize_with_nobody_committing_pays_nothing_and_skips_aggregation(fs, actors):
    task_id, devices = open_task(fs, actors, 3)
    info = fs.tasks.round_info(task_id, 0)
    fs.chain.advance_past(info.reveal_deadline)
    outcome = fs.tasks.finalize_round(actors.stranger, task_id, 0)
    info = fs.tasks.round_info(task_id, 0)
    assert info.stage is RoundStage.AGGREGATED
    assert (info.accepted, info.reward_paid, info.leader, info.eliminated) == (
        0,
        0,
        ZERO_ADDRESS,
        ZERO_ADDRESS,
    )
    assert outcome.accepted == () and outcome.reward_paid == 0
    assert fs.tasks.state(task_id).escrow == P.escrow
    assert fs.vault.total_owed() == 0
    assert fs.tasks.participants(task_id) == addresses(devices)
    # The requester closes the round without an aggregate.
    fs.tasks.publish_model(actors.requester, task_id, 0, MODEL)
    assert fs.tasks.round_info(task_id, 0).stage is RoundStage.CLOSED


def test_a_single_revealer_has_no_peer_scores_and_is_not_paid(fs, actors):
    task_id, devices = committed_task(fs, actors, 3)
    commit_scores_of(fs, devices[0], task_id, 0, [9000, 9000])
    fs.chain.advance_past(fs.tasks.round_info(task_id, 0).verify_deadline)
    fs.tasks.reveal_scores(devices[0], task_id, 0, [9000, 9000], salt_of(0, devices[0]))
    outcome = finalize(fs, actors, task_id, 0)
    assert outcome.quality[devices[0].address] == 0
    assert outcome.leader == devices[0].address
    assert outcome.eliminated is None and outcome.reward_paid == 0
    assert fs.tasks.round_info(task_id, 0).stage is RoundStage.AGGREGATED


# ================================================================ verifier assignment


ASSIGNMENT_CASES = [
    # (participants, verifiersPerUpdate, expected assignment size)
    (3, 0, 2),
    (3, 1, 1),
    (4, 2, 2),
    (5, 3, 3),
    (6, 1, 1),
    (6, 2, 2),
    (6, 4, 4),
    (6, 5, 5),
    (6, 0, 5),
    (6, 9, 5),
]


@pytest.mark.parametrize("n, k, size", ASSIGNMENT_CASES)
def test_assignment_gives_every_update_exactly_k_distinct_verifiers(
    fs, actors, n, k, size
):
    task_id, _devices = open_task(
        fs, actors, n, min_participants=3, max_participants=6, verifiers_per_update=k
    )
    info = fs.tasks.round_info(task_id, 0)
    assert info.assignment_size == size
    order = fs.tasks.participants(task_id)
    model = Assignment(n, size, info.assignment_offset)
    targets = {a: fs.tasks.assignment(task_id, 0, a) for a in order}
    verifiers = {a: fs.tasks.verifiers(task_id, 0, a) for a in order}
    for i, a in enumerate(order):
        # Each verifier's targets: `size` distinct participants, never itself.
        assert len(targets[a]) == size == len(set(targets[a]))
        assert a not in targets[a] and set(targets[a]) <= set(order)
        # Each update: exactly `size` distinct verifiers, never its own device.
        assert len(verifiers[a]) == size == len(set(verifiers[a]))
        assert a not in verifiers[a]
        # The contract follows the documented circulant rule.
        assert targets[a] == [order[j] for j in model.targets(i)]
        assert verifiers[a] == [order[j] for j in model.verifiers(i)]
        # verifiersOf is the inverse of assignmentOf, position by position.
        for t, v in enumerate(verifiers[a]):
            assert targets[v][t] == a


def test_assignment_views_are_empty_outside_an_open_round_and_for_outsiders(fs, actors):
    task_id, devices = setup_task(fs, actors, 3)
    d0 = devices[0].address
    assert fs.tasks.assignment(task_id, 0, d0) == []
    assert fs.tasks.verifiers(task_id, 0, d0) == []
    open_round(fs, actors, task_id)
    assert len(fs.tasks.assignment(task_id, 0, d0)) == 2
    for outsider in (actors.stranger.address, actors.devices[5].address):
        assert fs.tasks.assignment(task_id, 0, outsider) == []
        assert fs.tasks.verifiers(task_id, 0, outsider) == []
    assert fs.tasks.assignment(task_id, 1, d0) == []  # not opened
    assert fs.tasks.assignment(99, 0, d0) == []
    finalize(fs, actors, task_id, 0)
    assert fs.tasks.assignment(task_id, 0, d0) == []
    assert fs.tasks.verifiers(task_id, 0, d0) == []


def test_the_assignment_changes_with_the_round(fs, actors):
    task_id, devices = setup_task(
        fs, actors, 6, min_participants=3, max_participants=6, verifiers_per_update=2,
        rounds=3,
    )
    offsets, assignments = [], []
    for _ in range(3):
        round_ = open_round(fs, actors, task_id)
        offsets.append(fs.tasks.round_info(task_id, round_).assignment_offset)
        assignments.append(fs.tasks.assignment(task_id, round_, devices[0].address))
        finalize(fs, actors, task_id, round_)
        close_round(fs, actors, task_id, round_, new_model=MODEL)
    assert len(set(offsets)) == 3
    assert all(len(a) == 2 for a in assignments)


@pytest.fixture(scope="class")
def k_verifiers(system, chain, actors, registered):
    """Six participants, two verifiers per update, everyone committed: (task, devices)."""

    def build():
        return committed_task(
            system, actors, 6, min_participants=3, max_participants=6,
            verifiers_per_update=2,
        )

    yield from _class_state(chain, build)


class TestKVerifiers:
    """With k verifiers per update, each participant reveals k scores and each quality
    is the median of the (at most k) scores its update received."""

    def test_reveal_of_k_scores_is_accepted(self, fs, actors, k_verifiers):
        task_id, devices = k_verifiers
        rows = {d: [6000, 8000] for d in devices}
        commit_scores(fs, task_id, 0, rows)
        reveal_scores(fs, task_id, 0, rows)
        assert fs.tasks.round_info(task_id, 0).revealed == 6

    @pytest.mark.parametrize("given", [1, 3, 5])
    def test_reveal_of_other_than_k_scores_reverts_with_ScoreCountMismatch(
        self, fs, actors, given, k_verifiers
    ):
        task_id, devices = k_verifiers
        device, scores = devices[3], [5000] * given
        commit_scores_of(fs, device, task_id, 0, scores)
        fs.chain.advance_past(fs.tasks.round_info(task_id, 0).verify_deadline)
        with reverts_with("TaskRegistryScoreCountMismatch", task_id, 0, 2, given):
            fs.tasks.reveal_scores(device, task_id, 0, scores, salt_of(0, device))

    @pytest.mark.parametrize("silent", [(), (2,), (0, 5), (1, 2, 3)])
    def test_quality_is_the_median_of_the_assigned_verifiers_scores(
        self, fs, actors, silent, k_verifiers
    ):
        task_id, devices = k_verifiers
        order = fs.tasks.participants(task_id)
        assignment = round_assignment(fs, task_id, 0)
        # Participant i scores participant j with 1000 * (j + 1) + 37 * i: every
        # received score is distinct, so the medians tell whose scores counted.
        full = {i: [1000 * (j + 1) + 37 * i for j in range(6)] for i in range(6)}
        by_device = {d: full[order.index(d.address)] for d in devices}
        revealers = [d for d in devices if order.index(d.address) not in silent]
        score_round(fs, task_id, 0, by_device, reveal=revealers)
        outcome = finalize(fs, actors, task_id, 0)
        revealed_rows = {i: full[i] for i in range(6) if i not in silent}
        model = expected_round(6, revealed_rows, ETHER, assignment=assignment)
        assert [outcome.quality[a] for a in order] == model.quality
        assert [outcome.rewards[a] for a in order] == model.rewards
        for j in range(6):
            if j in silent:
                continue
            received = [full[i][j] for i in assignment.verifiers(j) if i not in silent]
            assert len(received) <= 2
            assert outcome.quality[order[j]] == (
                (sum(received) // len(received)) if received else 0
            )


# ================================================================ finalizeRound: elimination


def test_worst_is_replaced_by_the_earliest_waiting_device(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, max_participants=4)
    first_waiting, second_waiting = actors.devices[4:6]
    fs.tasks.join(first_waiting, task_id)
    fs.tasks.join(second_waiting, task_id)
    matrix = {devices[i]: row for i, row in SPREAD.items()}
    _, participants, outcome = play_round(fs, actors, task_id, matrix=matrix)
    assert participants == addresses(devices)
    worst = devices[3].address
    assert outcome.eliminated == worst == fs.tasks.round_info(task_id, 0).eliminated
    assert outcome.rewards[worst] == 0
    assert fs.tasks.participants(task_id) == [
        *addresses(devices[:3]),
        first_waiting.address,
    ]
    assert fs.tasks.waiting(task_id) == [second_waiting.address]
    assert fs.tasks.member_status(task_id, worst) is MemberStatus.ELIMINATED
    assert fs.tasks.member_status(task_id, first_waiting.address) is MemberStatus.ACTIVE
    assert fs.tasks.member_status(task_id, second_waiting.address) is MemberStatus.WAITING


def test_replacement_takes_the_eliminated_devices_slot(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, max_participants=4)
    fs.tasks.join(actors.devices[4], task_id)
    # devices[1] is the worst this time.
    matrix = dict(zip(devices, [
        [0, 1000, 6000, 7000],
        [9000, 0, 6500, 7000],
        [8500, 1500, 0, 7500],
        [9500, 2000, 5000, 0],
    ]))
    _, _, outcome = play_round(fs, actors, task_id, matrix=matrix, close=True)
    assert outcome.eliminated == devices[1].address
    assert fs.tasks.participants(task_id) == [
        devices[0].address,
        actors.devices[4].address,
        devices[2].address,
        devices[3].address,
    ]
    # The replacement takes part in the next round.
    round_ = open_round(fs, actors, task_id)
    fs.tasks.commit_update(actors.devices[4], task_id, round_, h(1), 1)
    with reverts_with("TaskRegistryNotParticipant", task_id, devices[1].address):
        fs.tasks.commit_update(devices[1], task_id, round_, h(2), epsilon_for(1))


def test_worst_leaves_without_replacement_when_above_the_minimum(fs, actors):
    task_id, devices = setup_task(fs, actors, 4, min_participants=3, max_participants=4)
    matrix = dict(zip(devices, [
        [0, 2000, 6000, 7000],
        [9000, 0, 6500, 7000],
        [8500, 1500, 0, 7500],
        [9500, 1000, 5000, 0],
    ]))
    _, _, outcome = play_round(fs, actors, task_id, matrix=matrix)
    assert outcome.eliminated == devices[1].address
    assert sorted(fs.tasks.participants(task_id)) == sorted(
        addresses([devices[0], devices[2], devices[3]])
    )
    assert fs.tasks.member_status(task_id, devices[1].address) is MemberStatus.ELIMINATED


def test_worst_stays_when_elimination_would_drop_below_the_minimum(fs, actors):
    task_id, devices = setup_task(fs, actors, 3, min_participants=3, max_participants=3)
    matrix = dict(zip(devices, [[0, 8000, 3000], [9000, 0, 2000], [8500, 7000, 0]]))
    _, _, outcome = play_round(fs, actors, task_id, matrix=matrix)
    worst = devices[2].address
    assert outcome.eliminated is None
    assert fs.tasks.round_info(task_id, 0).eliminated == ZERO_ADDRESS
    assert fs.tasks.participants(task_id) == addresses(devices)
    assert fs.tasks.member_status(task_id, worst) is MemberStatus.ACTIVE
    # ... but it is still not paid.
    assert outcome.rewards[worst] == 0 and worst not in outcome.accepted
    assert sum(outcome.rewards.values()) == ETHER


class TestRevokedParticipants:
    """A participant whose device is revoked and that did not reveal leaves the task at
    finalisation (even below the minimum); the earliest waiting device takes its slot."""

    def test_revoked_participant_is_removed_and_replaced(self, fs, actors):
        d = actors.devices
        task_id, _devices = setup_task(fs, actors, 4, min_participants=3, max_participants=4)
        fs.tasks.join(d[4], task_id)
        fs.tasks.join(d[5], task_id)
        round_ = open_round(fs, actors, task_id)
        fs.devices.revoke(actors.owner, d[1].address)
        live = [d[0], d[2], d[3]]
        commit_updates(fs, task_id, round_, live)
        matrix = {d[0]: [0, 0, 8000, 6000], d[2]: [9000, 0, 0, 6000], d[3]: [9000, 0, 8000, 0]}
        score_round(fs, task_id, round_, matrix)
        receipt = finalize_raw(fs, actors.stranger, task_id, round_)
        # d3 (quality 6000) is the worst: replaced by d4; the revoked d1 by d5.
        eliminated = fs.tasks.receipt_events("ParticipantEliminated", receipt)
        assert [(e.args.device, e.args.replacement) for e in eliminated] == [
            (d[3].address, d[4].address),
            (d[1].address, d[5].address),
        ]
        (final,) = fs.tasks.receipt_events("RoundFinalized", receipt)
        assert final.args.eliminated == d[3].address
        assert fs.tasks.participants(task_id) == addresses([d[0], d[5], d[2], d[4]])
        assert fs.tasks.waiting(task_id) == []
        assert fs.tasks.member_status(task_id, d[1].address) is MemberStatus.ELIMINATED
        assert fs.tasks.member_status(task_id, d[5].address) is MemberStatus.ACTIVE
        assert fs.tasks.submission(task_id, round_, d[1].address).reward == 0

    def test_revoked_participant_leaves_even_below_the_minimum(self, fs, actors):
        task_id, devices = open_task(fs, actors, 3, min_participants=3, max_participants=3)
        fs.devices.revoke(actors.owner, devices[2].address)
        commit_updates(fs, task_id, 0, devices[:2])
        score_round(fs, task_id, 0, {devices[0]: [0, 8000, 0], devices[1]: [7000, 0, 0]})
        outcome = finalize(fs, actors, task_id, 0)
        # The worst of the two stays (minimum), the revoked device does not.
        assert outcome.eliminated is None
        assert fs.tasks.participants(task_id) == addresses(devices[:2])
        assert fs.tasks.member_status(task_id, devices[2].address) is MemberStatus.ELIMINATED
        close_round(fs, actors, task_id, 0)
        with reverts_with("TaskRegistryNotEnoughParticipants", task_id, 2, 3):
            fs.tasks.open_round(actors.aggregator, task_id, h(700))

    def test_revoked_after_committing_scores_but_before_revealing_is_removed(
        self, fs, actors
    ):
        task_id, devices, rows = score_committed_task(fs, actors, 3, max_participants=4)
        fs.tasks.join(actors.devices[3], task_id)
        fs.devices.revoke(actors.owner, devices[1].address)
        reveal_scores(fs, task_id, 0, {d: rows[d] for d in (devices[0], devices[2])})
        outcome = finalize(fs, actors, task_id, 0)
        assert devices[1].address not in fs.tasks.participants(task_id)
        assert fs.tasks.member_status(task_id, devices[1].address) is MemberStatus.ELIMINATED
        # Both revealers got 7000: the last, devices[2], is the worst. It is handled
        # first and takes the waiting device; the revoked one then leaves its slot empty.
        assert outcome.eliminated == devices[2].address
        assert fs.tasks.participants(task_id) == [
            devices[0].address,
            actors.devices[3].address,
        ]

    def test_revoked_after_revealing_is_ranked_and_paid_and_stays_for_now(
        self, fs, actors
    ):
        task_id, devices, rows = score_committed_task(fs, actors, 3, min_participants=3)
        reveal_scores(fs, task_id, 0, rows)
        revoked = devices[0]
        fs.devices.revoke(actors.owner, revoked.address)
        outcome = finalize(fs, actors, task_id, 0)
        assert revoked.address in outcome.accepted
        assert fs.vault.balance_of(revoked.address) == outcome.rewards[revoked.address] > 0
        assert fs.tasks.member_status(task_id, revoked.address) is MemberStatus.ACTIVE
        # Its owner still collects the reward.
        fs.vault.claim(actors.owner, [revoked.address])
        assert fs.vault.balance_of(revoked.address) == 0


# ================================================================ submitAggregate


class TestSubmitAggregate:
    """The aggregator posts the aggregate of a finalised round."""

    def test_aggregator_submits_the_aggregate_of_a_finalized_round(
        self, fs, actors, round_finalized
    ):
        task_id, _ = round_finalized
        receipt = fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        info = fs.tasks.round_info(task_id, 0)
        assert (info.stage, info.aggregate_hash) == (RoundStage.AGGREGATED, h(5))
        assert fs.tasks.state(task_id).last_progress_at == block_time(fs, receipt)
        (event,) = fs.tasks.receipt_events("AggregateSubmitted", receipt)
        assert dict(event.args) == {"taskId": task_id, "round": 0, "aggregateHash": h(5)}

    @pytest.mark.parametrize("caller", ["stranger", "requester"])
    def test_aggregate_by_non_aggregator_reverts_with_NotAggregator(
        self, fs, actors, caller, round_finalized
    ):
        task_id, _ = round_finalized
        wallet = getattr(actors, caller)
        with reverts_with("TaskRegistryNotAggregator", task_id, wallet.address):
            fs.tasks.submit_aggregate(wallet, task_id, 0, h(5))

    def test_zero_aggregate_reverts_with_ZeroHash(self, fs, actors, round_finalized):
        task_id, _ = round_finalized
        with reverts_with("TaskRegistryZeroHash"):
            fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, NO_HASH)

    def test_aggregate_while_round_is_open_reverts_with_WrongStage(
        self, fs, actors, round_open
    ):
        task_id, _ = round_open
        with reverts_with(
            "TaskRegistryWrongStage", task_id, 0, RoundStage.OPEN, RoundStage.FINALIZED
        ):
            fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))

    def test_aggregate_twice_reverts_with_WrongStage(self, fs, actors, round_finalized):
        task_id, _ = round_finalized
        fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        with reverts_with(
            "TaskRegistryWrongStage",
            task_id,
            0,
            RoundStage.AGGREGATED,
            RoundStage.FINALIZED,
        ):
            fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(6))

    def test_aggregate_before_any_round_reverts_with_WrongRound(self, fs, actors):
        task_id, _ = setup_task(fs, actors, 3)
        with reverts_with("TaskRegistryWrongRound", task_id, 0, 0):
            fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))


# ================================================================ publishModel


class TestPublishModel:
    """The requester closes an aggregated round with the new model, which becomes a
    model-registry version."""

    def test_requester_publishes_the_new_model_and_the_task_goes_on(
        self, fs, actors, round_finalized
    ):
        task_id, _ = round_finalized
        fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        initial = fs.tasks.state(task_id).model_version
        count = fs.models.count()
        receipt = fs.tasks.publish_model(
            actors.requester, task_id, 0, h(6), "ipfs://round-0", h(8)
        )
        info = fs.tasks.round_info(task_id, 0)
        assert (info.stage, info.new_model_hash) == (RoundStage.CLOSED, h(6))
        state = fs.tasks.state(task_id)
        assert (state.status, state.current_model) == (TaskStatus.RUNNING, h(6))
        assert state.last_progress_at == block_time(fs, receipt)
        assert state.escrow == P.escrow - ETHER
        assert state.model_version == count + 1 == fs.models.count()
        assert fs.tasks.refund_of(actors.requester.address) == 0
        version = fs.models.version(state.model_version)
        assert (version.model_hash, version.metrics_hash, version.uri) == (
            h(6),
            h(8),
            "ipfs://round-0",
        )
        assert (version.parent, version.task_id, version.round) == (initial, task_id, 1)
        assert version.publisher == fs.tasks.address
        assert version.created_at == block_time(fs, receipt)
        (event,) = fs.tasks.receipt_events("ModelPublished", receipt)
        assert dict(event.args) == {
            "taskId": task_id,
            "round": 0,
            "modelHash": h(6),
            "versionId": state.model_version,
        }
        (registered,) = fs.models.receipt_events("ModelVersionRegistered", receipt)
        assert dict(registered.args) == {
            "versionId": state.model_version,
            "modelHash": h(6),
            "taskId": task_id,
            "parent": initial,
            "round": 1,
            "publisher": fs.tasks.address,
        }
        assert fs.tasks.receipt_events("TaskCompleted", receipt) == []

    def test_publishing_the_last_rounds_model_completes_the_task(self, fs, actors):
        task_id, _ = finalized_task(fs, actors, 3, rounds=1)
        fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        receipt = fs.tasks.publish_model(actors.requester, task_id, 0, h(6))
        state = fs.tasks.state(task_id)
        assert (state.status, state.escrow, state.current_model) == (
            TaskStatus.COMPLETED,
            0,
            h(6),
        )
        (event,) = fs.tasks.receipt_events("TaskCompleted", receipt)
        assert dict(event.args) == {"taskId": task_id, "refund": 0}
        assert fs.models.version(state.model_version).model_hash == h(6)

    @pytest.mark.parametrize("caller", ["stranger", "aggregator"])
    def test_publish_model_by_non_requester_reverts_with_NotRequester(
        self, fs, actors, caller, round_finalized
    ):
        task_id, _ = round_finalized
        fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        wallet = getattr(actors, caller)
        with reverts_with("TaskRegistryNotRequester", task_id, wallet.address):
            fs.tasks.publish_model(wallet, task_id, 0, h(6))

    def test_publish_zero_model_reverts_with_ZeroHash(
        self, fs, actors, round_finalized
    ):
        task_id, _ = round_finalized
        fs.tasks.submit_aggregate(actors.aggregator, task_id, 0, h(5))
        count = fs.models.count()
        with reverts_with("TaskRegistryZeroHash"):
            fs.tasks.publish_model(actors.requester, task_id, 0, NO_HASH)
        assert fs.models.count() == count

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
            fs.tasks.publish_model(actors.requester, task_id, 0, h(6))


# ================================================================ completion and refunds


def test_unpaid_round_rewards_come_back_to_the_requester_at_completion(fs, actors):
    task_id, devices = setup_task(fs, actors, 3, rounds=2, reward_per_round=ETHER)
    # Round 0: nobody commits, nothing is paid.
    round_ = open_round(fs, actors, task_id)
    finalize(fs, actors, task_id, round_)
    close_round(fs, actors, task_id, round_, new_model=MODEL)
    # Round 1: paid in full.
    _, _, outcome = play_round(fs, actors, task_id, matrix=uniform(devices), close=True)
    assert outcome.reward_paid == ETHER

    assert fs.tasks.state(task_id).status is TaskStatus.COMPLETED
    assert fs.tasks.state(task_id).escrow == 0
    assert fs.tasks.refund_of(actors.requester.address) == ETHER
    assert fs.tasks.total_held() == ETHER == fs.chain.balance(fs.tasks.address)

    before = fs.chain.balance(actors.requester.address)
    receipt = fs.tasks.withdraw_refund(actors.requester)
    assert fs.chain.balance(actors.requester.address) == before + ETHER - gas_cost(
        receipt
    )
    assert fs.tasks.refund_of(actors.requester.address) == 0
    assert fs.tasks.total_held() == 0 == fs.chain.balance(fs.tasks.address)
    (event,) = fs.tasks.receipt_events("RefundWithdrawn", receipt)
    assert dict(event.args) == {"requester": actors.requester.address, "amount": ETHER}


def test_withdraw_refund_with_nothing_owed_reverts_with_NothingToRefund(fs, actors):
    with reverts_with("TaskRegistryNothingToRefund", actors.requester.address):
        fs.tasks.withdraw_refund(actors.requester)


def test_withdraw_refund_twice_reverts_with_NothingToRefund(fs, actors):
    task_id = publish_task(fs, actors)
    fs.tasks.cancel(actors.requester, task_id)
    fs.tasks.withdraw_refund(actors.requester)
    with reverts_with("TaskRegistryNothingToRefund", actors.requester.address):
        fs.tasks.withdraw_refund(actors.requester)


def test_refunds_of_several_tasks_add_up(fs, actors):
    first = publish_task(fs, actors, rounds=1)
    second = publish_task(fs, actors, rounds=3)
    fs.tasks.cancel(actors.requester, first)
    fs.tasks.cancel(actors.requester, second)
    assert fs.tasks.refund_of(actors.requester.address) == 4 * ETHER
    before = fs.chain.balance(actors.requester.address)
    receipt = fs.tasks.withdraw_refund(actors.requester)
    assert fs.chain.balance(actors.requester.address) == before + 4 * ETHER - gas_cost(
        receipt
    )


def _contract_requester_with_refund(fs, actors, reenter_selector=None):
    requester = ContractWallet(fs, actors.deployer, reenter_selector)
    requester.call(
        fs.tasks,
        "publishTask",
        P.as_tuple(),
        actors.aggregator.address,
        [],
        value=P.escrow,
    )
    task_id = fs.tasks.count()
    assert fs.tasks.state(task_id).requester == requester.address
    requester.call(fs.tasks, "cancelTask", task_id)
    assert fs.tasks.refund_of(requester.address) == P.escrow
    return requester, P.escrow


def test_refund_to_a_requester_rejecting_ether_reverts_with_TransferFailed(fs, actors):
    requester, escrow = _contract_requester_with_refund(fs, actors)
    with reverts_with("TaskRegistryTransferFailed", requester.address, escrow):
        requester.call(fs.tasks, "withdrawRefund")
    assert fs.tasks.refund_of(requester.address) == escrow
    assert fs.tasks.total_held() == escrow == fs.chain.balance(fs.tasks.address)


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
    assert fs.tasks.total_held() == 0 == fs.chain.balance(fs.tasks.address)


# ================================================================ cancelTask


def test_requester_cancels_an_idle_task_and_gets_the_escrow_back(fs, actors):
    task_id, _ = setup_task(fs, actors, 3)
    receipt = fs.tasks.cancel(actors.requester, task_id)
    state = fs.tasks.state(task_id)
    assert (state.status, state.escrow) == (TaskStatus.CANCELLED, 0)
    assert fs.tasks.refund_of(actors.requester.address) == P.escrow
    assert fs.tasks.total_held() == P.escrow == fs.chain.balance(fs.tasks.address)
    (event,) = fs.tasks.receipt_events("TaskCancelled", receipt)
    assert dict(event.args) == {
        "taskId": task_id,
        "by": actors.requester.address,
        "refund": P.escrow,
    }
    before = fs.chain.balance(actors.requester.address)
    receipt = fs.tasks.withdraw_refund(actors.requester)
    assert fs.chain.balance(
        actors.requester.address
    ) == before + P.escrow - gas_cost(receipt)
    assert fs.tasks.total_held() == 0 == fs.chain.balance(fs.tasks.address)


def test_requester_cancels_between_rounds_and_gets_the_rest_back(fs, actors):
    task_id, _ = finalized_task(fs, actors, 3, rounds=3)
    close_round(fs, actors, task_id, 0)
    fs.tasks.cancel(actors.requester, task_id)
    assert fs.tasks.refund_of(actors.requester.address) == 2 * ETHER
    assert fs.vault.total_owed() == ETHER


@pytest.mark.parametrize("duration", [1, TRAIN, MAX_PHASE_DURATION])
def test_requester_cancels_an_idle_task_whatever_its_schedule(fs, actors, duration):
    task_id = publish_task(
        fs,
        actors,
        train_duration=duration,
        verify_duration=duration,
        reveal_duration=duration,
        grace_period=duration,
    )
    fs.tasks.cancel(actors.requester, task_id)
    assert fs.tasks.state(task_id).status is TaskStatus.CANCELLED
    assert fs.tasks.refund_of(actors.requester.address) == P.escrow


def test_stall_time_is_the_sum_of_the_phases_and_the_grace_period(fs, actors):
    task_id, _ = open_task(
        fs, actors, 3, train_duration=100, verify_duration=20, reveal_duration=3,
        grace_period=4000,
    )
    assert stalled_after(fs, task_id) == fs.tasks.state(task_id).last_progress_at + 4123
    with reverts_with(
        "TaskRegistryCannotCancel",
        task_id,
        actors.stranger.address,
        fs.tasks.state(task_id).last_progress_at + 4123,
    ):
        fs.tasks.cancel(actors.stranger, task_id)


class TestCancelDuringARound:
    """Cancelling a task whose round is under way."""

    @pytest.mark.parametrize("stage", [RoundStage.OPEN, RoundStage.FINALIZED])
    def test_requester_cannot_cancel_a_round_in_progress_CannotCancel(
        self, fs, actors, stage, round_open, round_finalized
    ):
        task_id, _ = round_finalized if stage is RoundStage.FINALIZED else round_open
        expected = fs.tasks.state(task_id).last_progress_at + STALL
        assert stalled_after(fs, task_id) == expected
        with reverts_with(
            "TaskRegistryCannotCancel", task_id, actors.requester.address, expected
        ):
            fs.tasks.cancel(actors.requester, task_id)

    @pytest.mark.parametrize("caller", ["stranger", "aggregator", "device"])
    def test_others_cannot_cancel_before_the_task_stalls_CannotCancel(
        self, fs, actors, caller, round_open
    ):
        task_id, devices = round_open
        wallet = devices[0] if caller == "device" else getattr(actors, caller)
        expected = stalled_after(fs, task_id)
        fs.chain.advance_time(expected - fs.chain.now() - 10)
        with reverts_with("TaskRegistryCannotCancel", task_id, wallet.address, expected):
            fs.tasks.cancel(wallet, task_id)

    @pytest.mark.parametrize("caller", ["stranger", "requester"])
    def test_anyone_cancels_a_stalled_task_and_the_requester_is_refunded(
        self, fs, actors, caller, round_finalized
    ):
        task_id, devices = round_finalized  # the aggregator never aggregates
        wallet = getattr(actors, caller)
        fs.chain.advance_past(stalled_after(fs, task_id))
        receipt = fs.tasks.cancel(wallet, task_id)
        assert fs.tasks.state(task_id).status is TaskStatus.CANCELLED
        assert fs.tasks.refund_of(actors.requester.address) == ETHER
        (event,) = fs.tasks.receipt_events("TaskCancelled", receipt)
        assert dict(event.args) == {"taskId": task_id, "by": wallet.address, "refund": ETHER}
        assert_solvent(fs, addresses(devices))

    def test_a_round_whose_phases_all_lapsed_stalls_after_the_grace_period(
        self, fs, actors, round_open
    ):
        task_id, _ = round_open
        info = fs.tasks.round_info(task_id, 0)
        fs.chain.advance_past(info.reveal_deadline)
        with reverts_with(
            "TaskRegistryCannotCancel",
            task_id,
            actors.stranger.address,
            info.reveal_deadline + GRACE,
        ):
            fs.tasks.cancel(actors.stranger, task_id)
        fs.chain.advance_past(info.reveal_deadline + GRACE)
        fs.tasks.cancel(actors.stranger, task_id)

    def test_stall_clock_restarts_on_progress(self, fs, actors, all_score_committed):
        task_id, _devices, rows = all_score_committed
        opened = fs.tasks.state(task_id).last_progress_at
        reveal_scores(fs, task_id, 0, rows)
        fs.chain.advance_time(STALL - 100)
        fs.tasks.finalize_round(actors.stranger, task_id, 0)
        progressed = fs.tasks.state(task_id).last_progress_at
        assert progressed >= opened + STALL - 100
        fs.chain.advance_past(opened + STALL)
        with reverts_with(
            "TaskRegistryCannotCancel",
            task_id,
            actors.stranger.address,
            progressed + STALL,
        ):
            fs.tasks.cancel(actors.stranger, task_id)


@pytest.mark.parametrize("joined", [0, 2])
def test_a_task_short_of_participants_never_stalls_CannotCancel(fs, actors, joined):
    # Before the first round, a task only stalls once enough devices wait for the
    # aggregator; until then only the requester may cancel.
    task_id, _ = setup_task(fs, actors, joined, min_participants=3)
    expected = stalled_after(fs, task_id)
    fs.chain.advance_past(expected + 10 * STALL)
    with reverts_with(
        "TaskRegistryCannotCancel", task_id, actors.stranger.address, expected
    ):
        fs.tasks.cancel(actors.stranger, task_id)
    fs.tasks.cancel(actors.requester, task_id)


def test_a_task_with_enough_participants_but_no_round_stalls(fs, actors):
    task_id, _ = setup_task(fs, actors, 3, min_participants=3)
    expected = stalled_after(fs, task_id)
    fs.chain.advance_time(expected - fs.chain.now() - 10)
    with reverts_with(
        "TaskRegistryCannotCancel", task_id, actors.stranger.address, expected
    ):
        fs.tasks.cancel(actors.stranger, task_id)
    fs.chain.advance_past(expected)
    receipt = fs.tasks.cancel(actors.stranger, task_id)
    assert fs.tasks.state(task_id).status is TaskStatus.CANCELLED
    (event,) = fs.tasks.receipt_events("TaskCancelled", receipt)
    assert (event.args.by, event.args.refund) == (actors.stranger.address, P.escrow)


@pytest.fixture(scope="class")
def ended(system, chain, actors, registered):
    """A cancelled (stalled mid-round) and a completed task, built once per class."""
    snap = chain.snapshot()
    fs = system
    cancelled, _ = open_task(fs, actors, 3)
    fs.chain.advance_past(stalled_after(fs, cancelled))
    fs.tasks.cancel(actors.stranger, cancelled)
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
        assert fs.tasks.state(task_id).status is status
        with reverts_with("TaskRegistryTaskNotLive", task_id, status):
            _calls(fs, actors, task_id)[function]()

    def test_views_still_answer(self, fs, actors, ended):
        completed = ended[TaskStatus.COMPLETED]
        assert fs.tasks.round_info(completed, 0).stage is RoundStage.CLOSED
        assert fs.tasks.state(ended[TaskStatus.CANCELLED]).escrow == 0
        assert fs.tasks.refund_of(actors.requester.address) == P.escrow  # cancelled one
        cancelled = ended[TaskStatus.CANCELLED]
        assert fs.tasks.round_info(cancelled, 0).stage is RoundStage.OPEN
        assert fs.tasks.assignment(cancelled, 0, actors.devices[0].address) != []


# ================================================================ views


def test_views_of_unknown_ids_are_empty(fs, actors):
    assert fs.tasks.count() == 0
    assert fs.tasks.state(5).status is TaskStatus.NONE
    assert fs.tasks.round_info(5, 0).stage is RoundStage.NONE
    assert fs.tasks.participants(5) == [] and fs.tasks.waiting(5) == []
    assert fs.tasks.member_status(5, actors.devices[0].address) is MemberStatus.NONE
    assert fs.tasks.epsilon_of(5, actors.devices[0].address) == 0
    assert fs.tasks.is_allowed(5, actors.devices[0].address) is True
    assert fs.tasks.submission(5, 0, actors.devices[0].address) == Submission(
        NO_HASH, NO_HASH, 0, 0, False, False, 0
    )
    assert fs.tasks.total_held() == 0


def test_constants_match_the_protocol_terms(fs):
    view = lambda name: fs.chain.view(getattr(fs.tasks.functions, name)())
    assert view("MAX_PARTICIPANTS") == MAX_PARTICIPANTS == 64
    assert view("MAX_PHASE_DURATION") == MAX_PHASE_DURATION
    assert view("MAX_ALLOW_LIST") == MAX_ALLOW_LIST == 256
    assert view("MAX_VERIFIERS") == MAX_VERIFIERS == 16


def test_submissions_are_kept_per_round(fs, actors):
    task_id, devices = finalized_task(fs, actors, 3)
    close_round(fs, actors, task_id, 0)
    round_ = open_round(fs, actors, task_id)
    fs.tasks.commit_update(devices[0], task_id, round_, h(99), 3_000_000)
    old = fs.tasks.submission(task_id, 0, devices[0].address)
    assert (old.update_hash, old.epsilon, old.revealed) == (
        update_hash(0, devices[0]),
        epsilon_for(0),
        True,
    )
    assert old.score_commitment != NO_HASH and old.reward > 0
    new = fs.tasks.submission(task_id, 1, devices[0].address)
    assert new == Submission(h(99), NO_HASH, 3_000_000, 0, False, False, 0)


# ================================================================ documented weak spots


def test_an_update_whose_only_verifier_stays_silent_gets_quality_zero(fs, actors):
    # With one verifier per update, a participant whose verifier does not reveal has no
    # score: quality 0, unpaid and, as the worst of those that revealed, eliminated
    # (the documented rule; a verifier can use it to push out its target).
    task_id, devices = committed_task(
        fs, actors, 4, min_participants=3, max_participants=4, verifiers_per_update=1
    )
    order = fs.tasks.participants(task_id)
    assignment = round_assignment(fs, task_id, 0)
    (silent,) = assignment.verifiers(0)  # the one verifier of participant 0
    victim = order[0]
    matrix = {d: [9000] * 4 for d in devices}
    score_round(
        fs, task_id, 0, matrix, reveal=[d for d in devices if d.address != order[silent]]
    )
    outcome = finalize(fs, actors, task_id, 0)
    assert outcome.quality[victim] == 0 and outcome.rewards[victim] == 0
    assert outcome.eliminated == victim
    assert outcome.quality[order[silent]] == 0  # the silent verifier is not ranked


def test_a_zero_address_in_the_allow_list_reverts_with_ZeroAddress(fs, actors):
    # Unknown devices have the zero owner: a zero entry would allow any address.
    with reverts_with("TaskRegistryZeroAddress"):
        publish_task(fs, actors, allow_list=[actors.owner.address, ZERO_ADDRESS])


def test_joining_restarts_the_stall_clock_of_a_task_that_fills_up_late(fs, actors):
    task_id, _ = setup_task(fs, actors, 2, min_participants=3)
    fs.chain.advance_past(stalled_after(fs, task_id))
    fs.tasks.join(actors.devices[2], task_id)
    restarted = stalled_after(fs, task_id)
    assert restarted > fs.chain.now()
    with reverts_with("TaskRegistryCannotCancel", task_id, actors.stranger.address,
                      restarted):
        fs.tasks.cancel(actors.stranger, task_id)
    fs.chain.advance_past(restarted)
    fs.tasks.cancel(actors.stranger, task_id)
    assert fs.tasks.state(task_id).status is TaskStatus.CANCELLED


@pytest.mark.slow
def test_a_round_of_64_participants_can_be_finalised_within_the_block_gas_limit(
    fs, actors
):

    n = 64
    devices = [new_wallet() for _ in range(n)]
    for device in devices:
        fs.chain.fund(device.address, ETHER)
        fs.devices.register_device(device, device)
    # The most verifiers a task may ask for (16 per update), each column of scores
    # in descending order: the median's insertion sort does its most work.
    task_id = publish_task(fs, actors, rounds=1, min_participants=2, max_participants=n,
                           verifiers_per_update=16)
    for device in devices:
        fs.tasks.join(device, task_id)
    round_ = open_round(fs, actors, task_id)
    commit_updates(fs, task_id, round_, devices)
    rows = {d: [10_000 - i * 100 - t for t in range(16)] for i, d in enumerate(devices)}
    commit_scores(fs, task_id, round_, rows)
    reveal_scores(fs, task_id, round_, rows)
    outcome = fs.tasks.finalize_round(actors.stranger, task_id, round_)
    assert outcome.gas_used <= fs.chain.w3.eth.get_block("latest")["gasLimit"]
