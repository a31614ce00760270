"""The Python mirror of proof of quality (the contract tests compare it with the chain)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offchain.errors import ProtocolError
from offchain.protocol import poq
from offchain.protocol.terms import ETHER, MAX_SCORE


@given(n=st.integers(2, 64), k=st.integers(0, 20), offset=st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_assignment_is_a_circulant_without_self_scores(n, k, offset):
    size = poq.assignment_size(n, k)
    scored_by = {j: [] for j in range(n)}
    for i in range(n):
        targets = poq.targets(i, n, k, offset)
        assert len(targets) == size == len(set(targets))
        assert i not in targets
        for t, j in enumerate(targets):
            assert poq.verifier(j, t, offset, n) == i
            scored_by[j].append(i)
    assert all(len(v) == size for v in scored_by.values())


@pytest.mark.parametrize("values, expected", [
    ([], 0), ([7], 7), ([9, 1], 5), ([3, 1, 2], 2), ([1, 2, 3, 4], 2), ([4, 4, 5, 10_000], 4),
])
def test_median_floors_the_mean_of_the_middle_pair(values, expected):
    assert poq.median_score(values) == expected


def test_settle_takes_medians_ranks_and_applies_the_quality_gap():
    # Everyone scores everyone (k=0, offset 0): row i lists targets i+1, i+2, ... mod n.
    full = {0: [0, 8000, 6000, 3000], 1: [9000, 0, 6500, 2000],
            2: [8500, 7000, 0, 2500], 3: [9500, 7500, 5000, 0]}
    rows = [[full[i][j] for j in poq.targets(i, 4, 0, 0)] for i in range(4)]
    settled = poq.settle(rows, k=0, offset=0)
    assert settled.quality == (9000, 7500, 6000, 2500)
    assert (settled.leader, settled.worst, settled.median) == (0, 3, 6750)
    assert settled.accepted_indices == [0, 1, 2]
    assert poq.settle(rows, k=0, offset=0, quality_gap=749).accepted_indices == [0, 1]
    assert poq.settle(rows, k=0, offset=0, min_quality=8000).accepted_indices == [0]
    rewards = settled.rewards(ETHER)
    assert sum(rewards) == ETHER and rewards[3] == 0
    assert rewards[1] == ETHER * 7500 // 22500


def test_silent_participants_are_not_ranked_and_their_scores_do_not_count():
    rows = [[5000, 6000], None, [7000, 8000]]
    settled = poq.settle(rows, k=0, offset=0)
    assert settled.quality[1] == 0 and not settled.accepted[1]
    assert settled.worst in (0, 2) and settled.leader in (0, 2)


def test_settle_rejects_rows_of_the_wrong_length_or_range():
    with pytest.raises(ProtocolError, match="participant 1 revealed 1 scores, expected 2"):
        poq.settle([[1, 2], [3], [4, 5]], k=0, offset=0)
    bad = MAX_SCORE + 1
    with pytest.raises(ProtocolError, match=f"score {bad} outside 0..{MAX_SCORE}"):
        poq.settle([[1, 2], [3, bad], [4, 5]], k=0, offset=0)
