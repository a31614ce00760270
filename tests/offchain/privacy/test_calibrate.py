"""Choosing σ for an ε budget."""

from __future__ import annotations

import pytest

from offchain.errors import PrivacyError
from offchain.privacy import PrivacyAccountant
from offchain.privacy.calibrate import noise_for_epsilon


@pytest.mark.parametrize("epsilon, rate, steps", [(10.0, 1.0, 100), (3.0, 1.0, 400),
                                                  (1.0, 0.05, 1000), (8.0, 0.25, 60)])
def test_noise_spends_the_budget_without_exceeding_it(epsilon, rate, steps):
    sigma = noise_for_epsilon(epsilon, sample_rate=rate, steps=steps)
    accountant = PrivacyAccountant()
    spent = accountant.projected_epsilon(noise_multiplier=sigma, sample_rate=rate, steps=steps)
    below = accountant.projected_epsilon(noise_multiplier=sigma * 0.995, sample_rate=rate,
                                         steps=steps)
    assert spent <= epsilon < below


def test_bad_budgets_are_rejected():
    with pytest.raises(PrivacyError, match="epsilon must be finite and > 0"):
        noise_for_epsilon(0.0, sample_rate=1.0, steps=10)
    with pytest.raises(PrivacyError, match="no noise multiplier up to 10000"):
        noise_for_epsilon(1e-9, sample_rate=1.0, steps=10**6)
