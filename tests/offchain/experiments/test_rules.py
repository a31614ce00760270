"""Round rules: proof of quality and the plaintext baselines, found by name."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from offchain.errors import ConfigError
from offchain.experiments.robust import ROBUST_AGGREGATORS, Krum, TrimmedMean
from offchain.experiments.rules import (
    AGGREGATORS,
    ROUND_RULES,
    PlaintextBaseline,
    ProofOfQuality,
    make_round_rule,
)
from offchain.experiments.scenario import Scenario
from offchain.protocol import poq


def _vecs(*rows: list[float]) -> list[np.ndarray | None]:
    return [np.array(r, dtype=np.float32) for r in rows]


def _never(verifier: int, targets: Sequence[int]) -> list[int]:
    raise AssertionError("a plaintext baseline asked for scores")


def test_every_aggregator_name_builds_its_rule_from_a_scenario() -> None:
    assert AGGREGATORS == ("poq", *ROBUST_AGGREGATORS) == tuple(ROUND_RULES)
    rule = make_round_rule(Scenario(verifiers=3, quality_gap=500, min_quality=7))
    assert rule == ProofOfQuality(verifiers=3, quality_gap=500, min_quality=7)
    baseline = make_round_rule(Scenario(aggregator="trimmed-mean", attack="noise",
                                        attackers=2))
    assert baseline == PlaintextBaseline(TrimmedMean(assumed_attackers=2))
    assert make_round_rule(Scenario(aggregator="krum")) == PlaintextBaseline(Krum())


def test_an_unknown_aggregator_is_rejected_by_name() -> None:
    class Unchecked:
        aggregator = "mean"

    with pytest.raises(ConfigError, match="aggregator must be one of .* got 'mean'"):
        make_round_rule(Unchecked())  # type: ignore[arg-type]


def test_a_baseline_aggregates_every_update_sent_and_eliminates_nobody() -> None:
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    deltas = _vecs([0], [1], [2], [3], [100])
    deltas[1] = None
    outcome = PlaintextBaseline(TrimmedMean(assumed_attackers=1)).settle(
        deltas, score=_never, rng=rng)
    assert outcome.accepted == (0, 2, 3, 4) and outcome.worst is None
    assert outcome.aggregate is not None and outcome.aggregate.tolist() == [2.5]
    assert rng.bit_generator.state == state  # draws nothing
    empty = PlaintextBaseline(Krum()).settle([None, None], score=_never, rng=rng)
    assert empty.accepted == () and empty.aggregate is None


def test_proof_of_quality_settles_as_the_contract_and_averages_the_accepted() -> None:
    deltas = _vecs([1.0], [2.0], [3.0], [-50.0], [4.0])
    deltas[2] = None  # silent: no update, no score row
    asked: list[int] = []

    def score(verifier: int, targets: Sequence[int]) -> list[int]:
        asked.append(verifier)
        return [1_000 if t == 3 else 9_000 for t in targets]

    rule = ProofOfQuality(verifiers=2)
    outcome = rule.settle(deltas, score=score, rng=np.random.default_rng(9))
    offset = int(np.random.default_rng(9).integers(2**32))
    rows = [None if d is None else
            [1_000 if t == 3 else 9_000 for t in poq.targets(i, 5, 2, offset)]
            for i, d in enumerate(deltas)]
    settled = poq.settle(rows, k=2, offset=offset,
                         quality_gap=poq.DEFAULT_QUALITY_GAP)
    assert asked == [0, 1, 3, 4]
    assert outcome.accepted == tuple(settled.accepted_indices)
    assert 3 not in outcome.accepted and outcome.worst == settled.worst
    chosen = [deltas[i] for i in outcome.accepted]
    assert outcome.aggregate is not None
    assert outcome.aggregate.tolist() == [float(np.mean([c[0] for c in chosen]))]
