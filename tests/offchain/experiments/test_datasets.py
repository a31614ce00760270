"""Data sets of the experiments, found by name with their model and training."""

from __future__ import annotations

import pytest

from offchain.errors import ConfigError
from offchain.experiments.datasets import (
    DATASET_TYPES,
    DATASETS,
    AutoMpg,
    MnistDigits,
    make_dataset,
)
from offchain.experiments.scenario import Scenario


def test_each_data_set_is_a_class_found_by_its_name() -> None:
    assert DATASETS == ("mnist", "autompg")
    assert dict(DATASET_TYPES) == {"mnist": MnistDigits, "autompg": AutoMpg}
    with pytest.raises(ConfigError, match="dataset must be one of .* got 'cifar'"):
        make_dataset("cifar")


def test_a_scenario_takes_model_and_training_from_its_data_set() -> None:
    regression = Scenario(dataset="autompg", epsilon=None)
    assert regression.spec() == AutoMpg().model()
    assert regression.spec().name == "linreg"
    training = regression.training(25)
    assert (training.batch_size, training.local_epochs, training.update_bound) == (
        320, 20, 10.0)
    assert Scenario(model="mlp:32").spec().hidden == 32
    data = AutoMpg().load()
    assert len(data) == 392
