"""The accountant store keeps ε spent across restarts, writes atomically, and refuses
files that are corrupt or belong to another task, device, δ or budget, by name."""

from __future__ import annotations

import json
import math
import os
import re

import pytest

from offchain.errors import PrivacyError
from offchain.privacy import AccountantStore, PrivacyAccountant

DEVICE = "0x" + "aB" * 20
OTHER = "0x" + "12" * 20
TASK = 7
DELTA = 1e-5
BUDGET = 10.0


def _spent(budget: float | None = BUDGET) -> PrivacyAccountant:
    """An accountant that has recorded two training rounds."""
    accountant = PrivacyAccountant(delta=DELTA, budget=budget)
    accountant.opacus_accountant.history = [(6.5, 1.0, 20), (6.5, 0.5, 40)]
    return accountant


def _names(path):
    return sorted(p.name for p in path.rglob("*"))


def _rewrite(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _refused(path) -> str:
    """A `match` pattern: the error names the file."""
    return re.escape(str(path))


def test_save_then_load_round_trips_the_accountant(tmp_path):
    store = AccountantStore(tmp_path / "privacy")
    original = _spent()
    path = store.save(TASK, DEVICE, original)
    assert path == tmp_path / "privacy" / f"task-{TASK}" / f"{DEVICE.lower()}.json"
    assert store.exists(TASK, DEVICE)
    loaded = store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET)
    assert loaded is not None
    assert loaded.history == original.history
    assert loaded.steps == original.steps == 60
    assert (loaded.delta, loaded.budget) == (DELTA, BUDGET)
    assert loaded.epsilon == original.epsilon > 0
    # The file is readable by people: it says whose it is and the ε spent.
    document = json.loads(path.read_text())
    assert document["task_id"] == TASK
    assert document["device"] == DEVICE
    assert document["epsilon"] == pytest.approx(original.epsilon)


def test_the_address_is_matched_case_insensitively(tmp_path):
    store = AccountantStore(tmp_path)
    store.save(TASK, DEVICE, _spent())
    loaded = store.load(TASK, DEVICE.lower(), delta=DELTA, budget=BUDGET)
    assert loaded is not None and loaded.steps == 60


def test_a_later_save_replaces_the_earlier_state(tmp_path):
    store = AccountantStore(tmp_path)
    first = PrivacyAccountant(delta=DELTA, budget=BUDGET)
    first.opacus_accountant.history = [(6.5, 1.0, 20)]
    store.save(TASK, DEVICE, first)
    store.save(TASK, DEVICE, _spent())
    assert store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET).steps == 60


def test_states_are_kept_apart_per_task_and_device(tmp_path):
    store = AccountantStore(tmp_path)
    store.save(TASK, DEVICE, _spent())
    assert store.load(TASK, OTHER, delta=DELTA, budget=BUDGET) is None
    assert store.load(TASK + 1, DEVICE, delta=DELTA, budget=BUDGET) is None
    assert not store.exists(TASK + 1, DEVICE)


def test_nothing_stored_loads_as_none_and_load_or_create_writes_nothing(tmp_path):
    store = AccountantStore(tmp_path / "privacy")
    assert store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET) is None
    fresh = store.load_or_create(TASK, DEVICE, delta=DELTA, budget=BUDGET)
    assert (fresh.steps, fresh.epsilon, fresh.delta, fresh.budget) == (0, 0.0, DELTA,
                                                                       BUDGET)
    assert not (tmp_path / "privacy").exists()


def test_load_or_create_returns_the_stored_state(tmp_path):
    store = AccountantStore(tmp_path)
    store.save(TASK, DEVICE, _spent())
    assert store.load_or_create(TASK, DEVICE, delta=DELTA, budget=BUDGET).steps == 60


def test_an_unlimited_budget_round_trips(tmp_path):
    store = AccountantStore(tmp_path)
    store.save(TASK, DEVICE, _spent(budget=None))
    assert store.load(TASK, DEVICE, delta=DELTA, budget=None).budget is None
    with pytest.raises(PrivacyError, match="budget"):
        store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET)


def test_an_infinite_epsilon_is_stored_as_its_history(tmp_path):
    store = AccountantStore(tmp_path)
    accountant = PrivacyAccountant(delta=DELTA)
    accountant.opacus_accountant.history = [(0.0, 1.0, 5)]
    path = store.save(TASK, DEVICE, accountant)
    assert json.loads(path.read_text())["epsilon"] is None
    assert math.isinf(store.load(TASK, DEVICE, delta=DELTA, budget=None).epsilon)


def test_saving_leaves_no_temporary_files(tmp_path):
    store = AccountantStore(tmp_path)
    for _ in range(3):
        store.save(TASK, DEVICE, _spent())
    store.save(TASK, OTHER, _spent())
    assert _names(tmp_path) == sorted(
        [f"task-{TASK}", f"{DEVICE.lower()}.json", f"{OTHER.lower()}.json"])


def test_a_failed_save_keeps_the_old_state_and_no_temporary_file(tmp_path,
                                                                  monkeypatch):
    store = AccountantStore(tmp_path)
    path = store.save(TASK, DEVICE, PrivacyAccountant(delta=DELTA, budget=BUDGET))
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PrivacyError, match=_refused(path)):
        store.save(TASK, DEVICE, _spent())
    assert path.read_bytes() == before
    assert _names(tmp_path) == sorted([f"task-{TASK}", f"{DEVICE.lower()}.json"])


def test_a_crash_left_temporary_file_is_ignored(tmp_path):
    store = AccountantStore(tmp_path)
    path = store.save(TASK, DEVICE, _spent())
    (path.parent / f".{path.name}.abc123.tmp").write_text("{ torn")
    assert store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET).steps == 60


def test_corrupt_json_is_refused_by_name(tmp_path):
    store = AccountantStore(tmp_path)
    path = store.save(TASK, DEVICE, _spent())
    path.write_text('{"format": "fedshare-accountant", "vers')
    with pytest.raises(PrivacyError, match=_refused(path) + ".*not valid JSON"):
        store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET)


def test_a_file_that_is_not_an_object_is_refused_by_name(tmp_path):
    store = AccountantStore(tmp_path)
    path = store.save(TASK, DEVICE, _spent())
    path.write_text("[1, 2, 3]")
    with pytest.raises(PrivacyError, match=_refused(path) + ".*expected an object"):
        store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET)


@pytest.mark.parametrize("change, problem", [
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d.update(format="something-else"), "format"),
    (lambda d: d["accountant"].update(version=99), "malformed.*version 99"),
    (lambda d: d["accountant"].update(history=[[6.5, 1.0]]), "malformed.*entry 0"),
    (lambda d: d["accountant"].update(history=[[6.5, 1.5, 3]]), "malformed.*sample_rate"),
    (lambda d: d["accountant"].pop("delta"), "malformed.*lacks 'delta'"),
    (lambda d: d.pop("accountant"), "malformed.*mapping"),
    (lambda d: d.update(task_id=TASK + 1), f"belongs to task {TASK + 1}"),
    (lambda d: d.update(device=OTHER), "belongs to device"),
], ids=["file-version", "format", "state-version", "short-run", "bad-rate",
        "no-delta", "no-state", "other-task", "other-device"])
def test_a_malformed_or_foreign_file_is_refused_by_name(tmp_path, change, problem):
    store = AccountantStore(tmp_path)
    path = store.save(TASK, DEVICE, _spent())
    _rewrite(path, change)
    with pytest.raises(PrivacyError, match=_refused(path) + ".*" + problem):
        store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET)


def test_another_delta_is_refused_by_name(tmp_path):
    store = AccountantStore(tmp_path)
    path = store.save(TASK, DEVICE, _spent())
    with pytest.raises(PrivacyError, match=_refused(path) + ".*δ=1e-05.*δ=1e-06"):
        store.load(TASK, DEVICE, delta=1e-6, budget=BUDGET)


def test_another_budget_is_refused_by_name(tmp_path):
    store = AccountantStore(tmp_path)
    path = store.save(TASK, DEVICE, _spent())
    with pytest.raises(PrivacyError, match=_refused(path) + ".*budget 10.0.*is 8.0"):
        store.load(TASK, DEVICE, delta=DELTA, budget=8.0)
    with pytest.raises(PrivacyError, match=_refused(path) + ".*budget"):
        store.load_or_create(TASK, DEVICE, delta=DELTA, budget=None)


def test_a_file_copied_to_another_device_is_refused(tmp_path):
    store = AccountantStore(tmp_path)
    path = store.save(TASK, DEVICE, _spent())
    stolen = store.path_for(TASK, OTHER)
    stolen.write_bytes(path.read_bytes())
    with pytest.raises(PrivacyError, match=_refused(stolen) + ".*belongs to device"):
        store.load(TASK, OTHER, delta=DELTA, budget=BUDGET)


def test_an_unreadable_file_is_refused_by_name(tmp_path):
    store = AccountantStore(tmp_path)
    path = store.path_for(TASK, DEVICE)
    path.mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(PrivacyError, match=_refused(path)):
        store.load(TASK, DEVICE, delta=DELTA, budget=BUDGET)


@pytest.mark.parametrize("task_id, device", [
    (-1, DEVICE), (True, DEVICE), ("7", DEVICE), (TASK, "0x1234"),
    (TASK, "../../etc/passwd"), (TASK, "ab" * 20), (TASK, None),
])
def test_invalid_keys_are_refused(tmp_path, task_id, device):
    store = AccountantStore(tmp_path)
    with pytest.raises(PrivacyError, match="task id|device must be"):
        store.path_for(task_id, device)
    with pytest.raises(PrivacyError):
        store.save(task_id, device, _spent())
    assert list(tmp_path.iterdir()) == []
