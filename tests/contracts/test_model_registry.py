"""ModelRegistry: an append-only list of model versions. The task registry (VERSIONER_ROLE)
registers each task's initial model and every model a round publishes, chained by
parent; anyone may register service models (task 0); a version never changes."""

from __future__ import annotations

import pytest

from offchain.protocol.terms import NO_HASH, ZERO_ADDRESS
from offchain.protocol.types import ModelVersion, TaskStatus
from tests.conftest import task_params
from tests.contracts.helpers import (
    MODEL,
    VERSIONER_ROLE,
    block_time,
    close_round,
    h,
    play_round,
    publish_task,
    reverts_with,
    setup_task,
)

pytestmark = pytest.mark.usefixtures("registered")

DEFAULT_ADMIN_ROLE = b"\0" * 32
EMPTY = ModelVersion(NO_HASH, NO_HASH, 0, 0, 0, 0, ZERO_ADDRESS, "")


def register(
    fs, caller, model_hash, uri="", parent=0, task_id=0, round_=0, metrics=NO_HASH
):
    return fs.chain.transact(
        caller,
        fs.models.functions.registerVersion(
            model_hash, uri, parent, task_id, round_, metrics
        ),
    )


def has_role(fs, role, account) -> bool:
    return bool(fs.chain.view(fs.models.functions.hasRole(role, account)))


# ---------------------------------------------------------------- roles


def test_deployer_is_admin_and_the_task_registry_is_the_versioner(fs, actors):
    assert has_role(fs, DEFAULT_ADMIN_ROLE, actors.deployer.address)
    assert has_role(fs, VERSIONER_ROLE, fs.tasks.address)
    assert not has_role(fs, VERSIONER_ROLE, actors.deployer.address)
    assert bytes(fs.chain.view(fs.models.functions.VERSIONER_ROLE())) == VERSIONER_ROLE


def test_granting_the_versioner_role_requires_the_admin(fs, actors):
    with reverts_with(
        "AccessControlUnauthorizedAccount", actors.stranger.address, DEFAULT_ADMIN_ROLE
    ):
        fs.chain.transact(
            actors.stranger,
            fs.models.functions.grantRole(VERSIONER_ROLE, actors.stranger.address),
        )


# ---------------------------------------------------------------- registerVersion


def test_anyone_registers_a_service_model(fs, actors):
    receipt = register(fs, actors.stranger, h(1), "ipfs://svc", 0, 0, 7, h(2))
    assert fs.models.count() == 1
    assert fs.models.version(1) == ModelVersion(
        h(1), h(2), 0, 0, 7, block_time(fs, receipt), actors.stranger.address, "ipfs://svc"
    )
    (event,) = fs.models.receipt_events("ModelVersionRegistered", receipt)
    assert dict(event.args) == {
        "versionId": 1,
        "modelHash": h(1),
        "taskId": 0,
        "parent": 0,
        "round": 7,
        "publisher": actors.stranger.address,
    }


def test_version_ids_count_from_one_and_parents_may_be_any_existing_version(fs, actors):
    register(fs, actors.stranger, h(1))
    register(fs, actors.owner, h(2), parent=1)
    register(fs, actors.stranger, h(3), parent=2)
    register(fs, actors.stranger, h(4), parent=1)  # a branch
    assert fs.models.count() == 4
    assert [fs.models.version(i).parent for i in (1, 2, 3, 4)] == [0, 1, 2, 1]
    # The same hash may be registered again, as a new version.
    register(fs, actors.stranger, h(1), parent=4)
    assert fs.models.version(5).model_hash == fs.models.version(1).model_hash


def test_the_returned_version_id_is_the_new_count(fs, actors):
    register(fs, actors.stranger, h(1))
    call = fs.models.functions.registerVersion(h(2), "", 1, 0, 0, NO_HASH)
    assert call.call({"from": actors.stranger.address}) == 2


def test_registering_a_zero_hash_reverts_with_ZeroHash(fs, actors):
    with reverts_with("ModelRegistryZeroHash"):
        register(fs, actors.stranger, NO_HASH)
    assert fs.models.count() == 0


@pytest.mark.parametrize("existing, parent", [(0, 1), (2, 3), (2, 2**256 - 1)])
def test_unknown_parent_reverts_with_UnknownParent(fs, actors, existing, parent):
    for i in range(existing):
        register(fs, actors.stranger, h(i + 1))
    with reverts_with("ModelRegistryUnknownParent", parent, existing):
        register(fs, actors.stranger, h(9), parent=parent)


@pytest.mark.parametrize("caller", ["stranger", "deployer", "requester"])
def test_task_version_without_the_role_reverts_with_TaskVersionNotAllowed(
    fs, actors, caller
):
    wallet = getattr(actors, caller)
    with reverts_with("ModelRegistryTaskVersionNotAllowed", wallet.address, 1):
        register(fs, wallet, h(1), task_id=1)
    # Not even for the task it requested: task versions come from the task registry only.
    task_id = publish_task(fs, actors)
    with reverts_with("ModelRegistryTaskVersionNotAllowed", wallet.address, task_id):
        register(fs, wallet, h(1), parent=1, task_id=task_id, round_=1)


def test_a_granted_versioner_registers_task_versions(fs, actors):
    fs.chain.transact(
        actors.deployer,
        fs.models.functions.grantRole(VERSIONER_ROLE, actors.stranger.address),
    )
    register(fs, actors.stranger, h(1), task_id=42, round_=3)
    version = fs.models.version(1)
    assert (version.task_id, version.round, version.publisher) == (
        42,
        3,
        actors.stranger.address,
    )


def test_checks_run_zero_hash_then_parent_then_role(fs, actors):
    with reverts_with("ModelRegistryZeroHash"):
        register(fs, actors.stranger, NO_HASH, parent=5, task_id=1)
    with reverts_with("ModelRegistryUnknownParent", 5, 0):
        register(fs, actors.stranger, h(1), parent=5, task_id=1)


@pytest.mark.parametrize("version_id", [0, 1, 2, 2**256 - 1])
def test_unknown_versions_read_as_zeros(fs, actors, version_id):
    assert fs.models.version(version_id) == EMPTY
    if version_id == 1:
        register(fs, actors.stranger, h(1))
        assert fs.models.version(1) != EMPTY
        assert fs.models.version(2) == EMPTY


def test_the_registry_has_no_function_that_changes_a_version(fs):
    mutating = {
        item["name"]
        for item in fs.models.contract.abi
        if item["type"] == "function"
        and item["stateMutability"] not in ("view", "pure")
    }
    assert mutating == {"registerVersion", "grantRole", "revokeRole", "renounceRole"}


# ---------------------------------------------------------------- task versions


def test_model_versions_of_a_two_round_task_form_a_chain(fs, actors):
    task_id, devices = setup_task(fs, actors, 3, rounds=2)
    initial = fs.tasks.state(task_id).model_version
    matrix = {d: [8000] * 3 for d in devices}
    round0, _, _ = play_round(fs, actors, task_id, matrix=matrix)
    close_round(fs, actors, task_id, round0, new_model=h(10))
    after0 = fs.tasks.state(task_id).model_version
    play_round(fs, actors, task_id, matrix={d: [8000] * 3 for d in devices[:3]})
    fs.tasks.submit_aggregate(actors.aggregator, task_id, 1, h(11))
    receipt = fs.tasks.publish_model(
        actors.requester, task_id, 1, h(12), "ipfs://final", h(13)
    )
    state = fs.tasks.state(task_id)
    assert state.status is TaskStatus.COMPLETED
    final = state.model_version
    assert (initial, after0, final) == (1, 2, 3) == (1, 2, fs.models.count())

    chain_ = [fs.models.version(v) for v in (initial, after0, final)]
    assert [v.model_hash for v in chain_] == [MODEL, h(10), h(12)]
    assert [v.parent for v in chain_] == [0, initial, after0]
    assert [v.round for v in chain_] == [0, 1, 2]
    assert [v.task_id for v in chain_] == [task_id] * 3
    assert [v.publisher for v in chain_] == [fs.tasks.address] * 3
    assert (chain_[1].uri, chain_[1].metrics_hash) == ("", NO_HASH)
    assert (chain_[2].uri, chain_[2].metrics_hash) == ("ipfs://final", h(13))
    assert chain_[2].created_at == block_time(fs, receipt)
    (event,) = fs.tasks.receipt_events("ModelPublished", receipt)
    assert dict(event.args) == {
        "taskId": task_id,
        "round": 1,
        "modelHash": h(12),
        "versionId": final,
    }


def test_each_task_keeps_its_own_chain_when_tasks_interleave(fs, actors):
    first, devices = setup_task(fs, actors, 3, rounds=2)
    second = publish_task(fs, actors, rounds=2, model_hash=h(20))
    for device in devices:
        fs.tasks.join(device, second)
    register(fs, actors.stranger, h(30))  # a service model in between
    for task_id, model in ((first, h(41)), (second, h(42))):
        round_, _, _ = play_round(fs, actors, task_id)
        close_round(fs, actors, task_id, round_, new_model=model)
    # Versions: 1 first's initial, 2 second's initial, 3 service, 4 first r1, 5 second r1.
    assert [fs.tasks.state(t).model_version for t in (first, second)] == [4, 5]
    assert (fs.models.version(4).parent, fs.models.version(5).parent) == (1, 2)
    assert [fs.models.version(v).task_id for v in (4, 5)] == [first, second]
    assert fs.models.version(3).task_id == 0


def test_registered_versions_never_change(fs, actors):
    task_id, devices = setup_task(fs, actors, 3, rounds=3)
    register(fs, actors.stranger, h(1), "ipfs://svc", 0, 0, 0, h(2))
    snapshot = {v: fs.models.version(v) for v in range(1, fs.models.count() + 1)}
    for r in range(2):
        matrix = {d: [7000] * 3 for d in devices}
        round_, _, _ = play_round(fs, actors, task_id, matrix=matrix)
        close_round(fs, actors, task_id, round_, new_model=h(50 + r))
        register(fs, actors.owner, h(60 + r), parent=1)
        for v, version in snapshot.items():
            assert fs.models.version(v) == version
        snapshot = {v: fs.models.version(v) for v in range(1, fs.models.count() + 1)}
    fs.tasks.cancel(actors.requester, task_id)
    assert all(fs.models.version(v) == version for v, version in snapshot.items())
    assert fs.models.count() == len(snapshot) == 6


def test_a_failed_publication_registers_no_version(fs, actors):
    params = task_params()
    with reverts_with("TaskRegistryWrongEscrow", params.escrow, 0):
        fs.chain.transact(
            actors.requester,
            fs.tasks.functions.publishTask(
                params.as_tuple(), actors.aggregator.address, []
            ),
        )
    assert fs.models.count() == 0
