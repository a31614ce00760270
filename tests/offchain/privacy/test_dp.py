"""DP-SGD local training, its configuration and the privacy accountant."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
import torch

from offchain.errors import (
    LearningError,
    PrivacyBudgetExceeded,
    PrivacyError,
    UpdateRejected,
)
from offchain.learning.data import (
    ArrayDataset,
    FederatedSplit,
    load_autompg,
    load_mnist,
    split_iid,
)
from offchain.learning.evaluate import accuracy, mean_absolute_error
from offchain.learning.fedavg import apply_update, average
from offchain.learning.model import ModelSpec, initial_vector, num_parameters
from offchain.privacy import (
    DPConfig,
    DPDisabledWarning,
    LocalUpdate,
    PrivacyAccountant,
    default_config,
    steps_per_epoch,
    task_epsilon,
    train_local,
)

SPEC = ModelSpec()
# A quick private setting (4 steps of batch ~160 a round, ε ≈ 4.2 after one round).
FAST = DPConfig(
    noise_multiplier=1.5, max_grad_norm=1.0, batch_size=160, local_epochs=2, lr=2.0,
    update_bound=1.0,
)


@pytest.fixture(scope="module")
def split() -> FederatedSplit:
    return split_iid(load_mnist(), 10, seed=0)


@pytest.fixture(scope="module")
def train(split: FederatedSplit) -> ArrayDataset:
    return split.devices[0].train


@pytest.fixture(scope="module")
def start() -> np.ndarray:
    return initial_vector(SPEC, seed=0)


# --- configuration ---------------------------------------------------------------


def test_default_config_is_private_and_valid() -> None:
    config = default_config()
    assert config == DPConfig()
    assert config.private and config.noise_multiplier > 0
    assert config.delta == 1e-5


def test_config_is_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        DPConfig(1.0)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DPConfig().lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("noise_multiplier", -0.1, "noise_multiplier must be finite and >= 0"),
        ("noise_multiplier", math.nan, "noise_multiplier must be finite"),
        ("max_grad_norm", 0.0, "max_grad_norm must be finite and > 0"),
        ("batch_size", 0, "batch_size must be a positive int"),
        ("batch_size", 32.0, "batch_size must be a positive int"),
        ("local_epochs", 0, "local_epochs must be a positive int"),
        ("lr", math.inf, "lr must be finite"),
        ("delta", 1.0, r"delta must be in \(0, 1\)"),
        ("delta", 0.0, "delta must be finite and > 0"),
        ("update_bound", -1.0, "update_bound must be finite and > 0"),
        ("momentum", 1.0, r"momentum must be in \[0, 1\)"),
        ("lr", "fast", "lr must be a number"),
    ],
)
def test_config_validation(field: str, value: object, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        DPConfig(**{field: value})


def test_zero_noise_warns_loudly() -> None:
    with pytest.warns(DPDisabledWarning, match="DIFFERENTIAL PRIVACY IS OFF"):
        config = DPConfig(noise_multiplier=0.0)
    assert not config.private


# --- accountant ------------------------------------------------------------------


def test_accountant_starts_at_zero_and_grows() -> None:
    accountant = PrivacyAccountant()
    assert accountant.epsilon == 0.0 and accountant.steps == 0
    eps = [
        accountant.projected_epsilon(noise_multiplier=1.0, sample_rate=0.2, steps=n)
        for n in (1, 10, 100)
    ]
    assert 0 < eps[0] < eps[1] < eps[2] < math.inf


def test_accountant_rejects_bad_arguments() -> None:
    with pytest.raises(PrivacyError, match="delta must be"):
        PrivacyAccountant(delta=2.0)
    with pytest.raises(PrivacyError, match="budget must be finite and > 0"):
        PrivacyAccountant(budget=0.0)
    with pytest.raises(PrivacyError, match=r"sample_rate must be in \(0, 1\]"):
        PrivacyAccountant().projected_epsilon(
            noise_multiplier=1, sample_rate=1.5, steps=1
        )


def test_check_budget_raises_with_the_numbers() -> None:
    accountant = PrivacyAccountant(budget=3.0)
    ok = accountant.check_budget(noise_multiplier=2.0, sample_rate=0.1, steps=10)
    assert 0 < ok <= 3.0
    with pytest.raises(PrivacyBudgetExceeded) as info:
        accountant.check_budget(noise_multiplier=1.0, sample_rate=0.5, steps=100)
    message = str(info.value)
    assert "100 more steps" in message and "budget of 3" in message
    assert "from 0.0000 to" in message
    assert isinstance(info.value, PrivacyError)
    # unlimited accountant never refuses
    PrivacyAccountant().check_budget(noise_multiplier=0.5, sample_rate=1.0, steps=10**4)


def test_task_epsilon_matches_training(train: ArrayDataset, start: np.ndarray) -> None:
    accountant = PrivacyAccountant.for_config(FAST)
    for round_ in range(2):
        update = train_local(SPEC, start, train, FAST, accountant, seed=round_)
    expected = task_epsilon(FAST, samples=len(train), rounds=2)
    assert update.epsilon == pytest.approx(expected)
    assert steps_per_epoch(320, 64) == 5 and steps_per_epoch(321, 64) == 6


def test_default_config_fits_the_demo_budget() -> None:
    # 10 devices x 320 training samples, 5 rounds: ε stays under 8 at δ = 1e-5.
    eps = task_epsilon(default_config(), samples=320, rounds=5)
    assert 5.0 < eps < 8.0


def test_from_dict_rejects_malformed_state() -> None:
    good = PrivacyAccountant().to_dict()
    with pytest.raises(PrivacyError, match="must be a mapping"):
        PrivacyAccountant.from_dict([])  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="mechanism 'prv'"):
        PrivacyAccountant.from_dict({**good, "mechanism": "prv"})
    with pytest.raises(PrivacyError, match="version 9"):
        PrivacyAccountant.from_dict({**good, "version": 9})
    with pytest.raises(PrivacyError, match="lacks 'history'"):
        PrivacyAccountant.from_dict({k: v for k, v in good.items() if k != "history"})
    with pytest.raises(PrivacyError, match="entry 0 is malformed"):
        PrivacyAccountant.from_dict({**good, "history": [[1.0, 0.5]]})
    with pytest.raises(PrivacyError, match="steps must be a non-negative int"):
        PrivacyAccountant.from_dict({**good, "history": [[1.0, 0.5, 2.5]]})


# --- training --------------------------------------------------------------------


def test_train_local_reports_growing_finite_epsilon(
    train: ArrayDataset, start: np.ndarray
) -> None:
    accountant = PrivacyAccountant()
    first = train_local(SPEC, start, train, FAST, accountant, seed=1)
    per_epoch = steps_per_epoch(len(train), FAST.batch_size)
    assert isinstance(first, LocalUpdate)
    assert first.steps == FAST.local_epochs * per_epoch == accountant.steps
    assert first.samples == len(train) == 320
    assert 0 < first.epsilon < math.inf
    assert first.epsilon == pytest.approx(accountant.epsilon)
    assert math.isfinite(first.train_loss)
    # Opacus itself stepped this accountant, at the Poisson rate 1 / steps per epoch.
    assert accountant.history == ((1.5, 1 / per_epoch, first.steps),)

    second = train_local(
        SPEC, apply_update(start, first.delta), train, FAST, accountant, seed=2
    )
    assert second.epsilon > first.epsilon
    assert accountant.steps == 2 * first.steps
    more = dataclasses.replace(FAST, local_epochs=4)
    fresh = PrivacyAccountant()
    longer = train_local(SPEC, start, train, more, fresh, seed=1)
    assert longer.steps == 2 * first.steps
    assert longer.epsilon > first.epsilon


def test_accountant_state_survives_a_restart(
    train: ArrayDataset, start: np.ndarray
) -> None:
    accountant = PrivacyAccountant(budget=50.0)
    train_local(SPEC, start, train, FAST, accountant, seed=3)
    state = json.loads(json.dumps(accountant.to_dict()))
    restored = PrivacyAccountant.from_dict(state)
    assert restored.epsilon == accountant.epsilon
    assert restored.history == accountant.history
    assert restored.budget == 50.0 and restored.delta == accountant.delta
    # Both keep accumulating identically.
    a = train_local(SPEC, start, train, FAST, accountant, seed=4)
    b = train_local(SPEC, start, train, FAST, restored, seed=4)
    assert a.epsilon == b.epsilon
    assert np.array_equal(a.delta, b.delta)


def test_training_is_deterministic_in_the_seed(
    train: ArrayDataset, start: np.ndarray
) -> None:
    torch.manual_seed(99)
    expected_next = torch.rand(2)
    torch.manual_seed(99)
    a = train_local(SPEC, start, train, FAST, PrivacyAccountant(), seed=5)
    assert torch.equal(torch.rand(2), expected_next)  # global RNG untouched
    b = train_local(SPEC, start, train, FAST, PrivacyAccountant(), seed=5)
    c = train_local(SPEC, start, train, FAST, PrivacyAccountant(), seed=6)
    assert np.array_equal(a.delta, b.delta) and a.train_loss == b.train_loss
    assert not np.array_equal(a.delta, c.delta)


def test_training_improves_accuracy(split: FederatedSplit, start: np.ndarray) -> None:
    before = accuracy(SPEC, start, split.test)
    update = train_local(SPEC, start, split.devices[0].train, FAST, PrivacyAccountant(),
                         seed=0)
    after = accuracy(SPEC, apply_update(start, update.delta), split.test)
    assert before < 0.2
    assert after > before + 0.2, (before, after)


def test_delta_respects_update_bound(train: ArrayDataset, start: np.ndarray) -> None:
    tight = dataclasses.replace(FAST, update_bound=0.005)
    update = train_local(SPEC, start, train, tight, PrivacyAccountant(), seed=7)
    assert update.delta.dtype == np.float32
    assert update.delta.shape == (num_parameters(SPEC),)
    assert float(np.abs(update.delta).max()) <= np.float32(0.005)
    assert 0 < update.clipped_fraction <= 1
    loose = train_local(SPEC, start, train, FAST, PrivacyAccountant(), seed=7)
    assert loose.clipped_fraction == 0.0
    assert float(np.abs(loose.delta).max()) <= FAST.update_bound


def test_budget_exceeded_refuses_before_training(
    train: ArrayDataset, start: np.ndarray
) -> None:
    accountant = PrivacyAccountant(budget=1.0)
    with pytest.raises(PrivacyBudgetExceeded, match="over the budget of 1"):
        train_local(SPEC, start, train, FAST, accountant, seed=0)
    assert accountant.steps == 0 and accountant.epsilon == 0.0


def test_budget_stops_a_later_round(train: ArrayDataset, start: np.ndarray) -> None:
    one_round = PrivacyAccountant()
    eps = train_local(SPEC, start, train, FAST, one_round, seed=0).epsilon
    accountant = PrivacyAccountant(budget=eps * 1.2)
    train_local(SPEC, start, train, FAST, accountant, seed=0)
    with pytest.raises(PrivacyBudgetExceeded):
        train_local(SPEC, start, train, FAST, accountant, seed=1)
    assert accountant.epsilon == pytest.approx(eps)


def test_train_local_rejects_mismatches(train: ArrayDataset, start: np.ndarray) -> None:
    with pytest.raises(PrivacyError, match="config delta 1e-05 differs"):
        train_local(SPEC, start, train, FAST, PrivacyAccountant(delta=1e-6), seed=0)
    with pytest.raises(UpdateRejected, match="model vector has 3 values"):
        train_local(SPEC, np.zeros(3), train, FAST, PrivacyAccountant(), seed=0)
    narrow = ArrayDataset(x=np.zeros((4, 5)), y=np.zeros(4, dtype=int))
    with pytest.raises(LearningError, match="data has 5 features"):
        train_local(SPEC, start, narrow, FAST, PrivacyAccountant(), seed=0)
    with pytest.raises(LearningError, match="seed must be"):
        train_local(SPEC, start, train, FAST, PrivacyAccountant(), seed=-1)


def test_empty_poisson_batches_are_handled(
    train: ArrayDataset, start: np.ndarray
) -> None:
    tiny = ArrayDataset(x=train.x[:6], y=train.y[:6])
    config = dataclasses.replace(FAST, batch_size=1, local_epochs=3)
    update = train_local(SPEC, start, tiny, config, PrivacyAccountant(), seed=0)
    assert update.steps == 18
    assert np.all(np.isfinite(update.delta))


def test_zero_noise_trains_but_epsilon_is_infinite(
    train: ArrayDataset, start: np.ndarray
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DPDisabledWarning)
        config = dataclasses.replace(FAST, noise_multiplier=0.0)
    accountant = PrivacyAccountant(budget=1000.0)
    with pytest.raises(PrivacyBudgetExceeded, match="to inf"):
        train_local(SPEC, start, train, config, accountant, seed=0)
    update = train_local(SPEC, start, train, config, PrivacyAccountant(), seed=0)
    assert update.epsilon == math.inf


# --- regression (L1 loss) ------------------------------------------------------------

LINREG = ModelSpec(name="linreg", input_dim=9, pool=1)
# Full local batches (25 Auto-MPG cars per device), 10 steps a round.
REG_FAST = DPConfig(
    noise_multiplier=1.0, max_grad_norm=1.0, batch_size=25, local_epochs=10, lr=2.0,
    update_bound=10.0,
)


@pytest.fixture(scope="module")
def cars() -> FederatedSplit:
    return split_iid(load_autompg(), 10, seed=0)


def test_regression_training_reduces_mae(cars: FederatedSplit) -> None:
    start = initial_vector(LINREG, seed=0)
    before = mean_absolute_error(LINREG, start, cars.test)
    vec = start
    accountants = [PrivacyAccountant() for _ in cars.devices[:3]]
    for round_ in range(2):
        updates = [
            train_local(LINREG, vec, device.train, REG_FAST, acc, seed=10 * round_ + k)
            for k, (device, acc) in enumerate(
                zip(cars.devices[:3], accountants, strict=True)
            )
        ]
        vec = apply_update(vec, average([u.delta for u in updates]))
    after = mean_absolute_error(LINREG, vec, cars.test)
    first = updates[0]
    assert first.delta.shape == (10,) and first.steps == 10
    assert math.isfinite(first.train_loss) and first.train_loss > 0
    assert 0 < first.epsilon < math.inf
    assert before > 15.0  # the untrained model predicts ~0 mpg
    assert after < 8.0, (before, after)


def test_regression_training_clips_per_sample_gradients(cars: FederatedSplit) -> None:
    # Without noise every step moves the weights by lr * (mean of per-sample
    # gradients clipped to max_grad_norm), so ||delta|| <= lr * C * steps.
    # Unclipped, the L1 gradients ±(x, 1) have norm > 1 and would move ~10x more.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DPDisabledWarning)
        config = dataclasses.replace(REG_FAST, noise_multiplier=0.0, max_grad_norm=0.1)
    start = initial_vector(LINREG, seed=0)
    train = cars.devices[0].train
    update = train_local(LINREG, start, train, config, PrivacyAccountant(), seed=0)
    norm = float(np.linalg.norm(update.delta))
    assert 0.5 * 2.0 * 0.1 * 10 < norm <= 2.0 * 0.1 * 10 + 1e-4
    assert update.train_loss == pytest.approx(
        float(np.abs(train.y - start[-1] - train.x @ start[:-1]).mean()), rel=0.2
    )


def test_train_local_rejects_kind_mismatches(
    cars: FederatedSplit, train: ArrayDataset, start: np.ndarray
) -> None:
    labels = ArrayDataset(x=np.zeros((4, 9)), y=np.zeros(4, dtype=int))
    message = r"linreg\(in=9\) is a regression model but the data holds integer"
    with pytest.raises(LearningError, match=message):
        train_local(LINREG, initial_vector(LINREG, seed=0), labels, REG_FAST,
                    PrivacyAccountant(), seed=0)
    targets = ArrayDataset(x=train.x[:4], y=np.ones(4))
    message = "is a classifier but the data holds real-valued regression targets"
    with pytest.raises(LearningError, match=message):
        train_local(SPEC, start, targets, FAST, PrivacyAccountant(), seed=0)
