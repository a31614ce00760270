"""Non-IID partitions: label skew drawn from a Dirichlet distribution.

``split_dirichlet`` gives every device the same number of samples (so each one's
DP accounting is the same), but draws its label mix from ``Dir(α)``: α = 100 is
close to IID, α = 0.5 gives each device a few dominant classes, α = 0.1 mostly
one or two. The requester's test set stays IID. Regression targets are skewed
the same way over ten quantile bins.
"""

from __future__ import annotations

import numpy as np

from offchain.errors import LearningError
from offchain.learning.data import (
    ArrayDataset,
    DeviceData,
    FederatedSplit,
    label_groups,
    share_sizes,
)

__all__ = ["split_dirichlet", "label_skew"]


def _deal(rng: np.random.Generator, pools: list[list[int]], mixes: np.ndarray,
          share: int) -> list[list[int]]:
    """Deal ``share`` samples to every device, one at a time in random turns: each draw
    picks a group from the device's mix among the groups that still hold samples, so
    running out of a group costs every device alike, not only the last ones."""
    hands: list[list[int]] = [[] for _ in range(len(mixes))]
    left = np.array([len(p) for p in pools], dtype=np.float64)
    for _ in range(share):
        for d in rng.permutation(len(mixes)):
            weights = mixes[d] * (left > 0)
            if weights.sum() <= 0:
                weights = (left > 0).astype(np.float64)
            g = int(rng.choice(len(pools), p=weights / weights.sum()))
            hands[d].append(pools[g].pop())
            left[g] -= 1
    return hands


def split_dirichlet(
    data: ArrayDataset,
    n_devices: int,
    alpha: float,
    *,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> FederatedSplit:
    """Split ``data`` into an IID test set and ``n_devices`` label-skewed shares.

    Sizes are those of :func:`~offchain.learning.data.split_iid`: ``round(test_fraction
    * n)`` test samples, ``(n - n_test) // n_devices`` per device of which
    ``round(validation_fraction * share)`` validate (drawn from the device's own skewed
    share: a verifier scores on the data it has). Each device's group mix is drawn from
    ``Dir(alpha)``; samples are dealt one at a time in random turns, so a group that
    runs out shifts every device's mix a little rather than the last devices' a lot.
    Depends only on ``seed``.
    Raises LearningError for a non-positive ``alpha``, bad fractions or device
    counts, or shares below MIN_TRAIN_PER_DEVICE / MIN_VALIDATION_PER_DEVICE.
    """
    if not float(alpha) > 0 or not np.isfinite(float(alpha)):
        raise LearningError(f"alpha must be finite and > 0, got {alpha!r}")
    n_test, share, n_val = share_sizes(len(data), n_devices, test_fraction,
                                       validation_fraction)
    n = len(data)
    rng = np.random.default_rng(seed)
    groups = label_groups(data.y)
    labels = np.unique(groups)
    # The IID test set: the same fraction of every group.
    test: list[int] = []
    pools: list[list[int]] = []
    for g in labels:
        members = rng.permutation(np.flatnonzero(groups == g))
        take = int(round(len(members) * n_test / n))
        test.extend(members[:take].tolist())
        pools.append(members[take:].tolist())
    mixes = rng.dirichlet(np.full(len(pools), float(alpha)), size=n_devices)
    devices = []
    for hand in _deal(rng, pools, mixes, share):
        chosen = rng.permutation(np.array(hand, dtype=np.int64))
        devices.append(DeviceData(train=data.subset(chosen[n_val:]),
                                  validation=data.subset(chosen[:n_val])))
    test.extend(i for pool in pools for i in pool)
    return FederatedSplit(test=data.subset(rng.permutation(np.array(test, dtype=np.int64))),
                          devices=tuple(devices))


def label_skew(split: FederatedSplit) -> float:
    """Mean total-variation distance between each device's group mix (train and
    validation together) and the test set's: 0 for IID, near 1 when every device
    holds one group. Raises nothing for a split with at least one device."""
    test_y = split.test.y
    test_groups = label_groups(test_y)
    labels = np.unique(test_groups)
    reference = np.array([(test_groups == g).mean() for g in labels])
    distances = []
    for device in split.devices:
        own = label_groups(np.concatenate([device.train.y, device.validation.y]), test_y)
        mix = np.array([(own == g).mean() for g in labels])
        distances.append(0.5 * np.abs(mix - reference).sum())
    return float(np.mean(distances))
