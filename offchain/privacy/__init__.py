"""Differential privacy for local training: DP-SGD via Opacus and ε accounting."""

from offchain.privacy.dp import (
    DEFAULT_DELTA,
    DPConfig,
    DPDisabledWarning,
    LocalUpdate,
    PrivacyAccountant,
    default_config,
    steps_per_epoch,
    task_epsilon,
    train_local,
)
from offchain.privacy.ledger import AccountantStore

__all__ = [
    "DEFAULT_DELTA",
    "AccountantStore",
    "DPConfig",
    "DPDisabledWarning",
    "LocalUpdate",
    "PrivacyAccountant",
    "default_config",
    "steps_per_epoch",
    "task_epsilon",
    "train_local",
]
