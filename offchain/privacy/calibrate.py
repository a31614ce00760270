"""The noise a training schedule needs to stay within an ε budget."""

from __future__ import annotations

import math

from offchain.errors import PrivacyError
from offchain.privacy.dp import DEFAULT_DELTA, PrivacyAccountant

__all__ = ["noise_for_epsilon"]


def noise_for_epsilon(
    epsilon: float,
    *,
    sample_rate: float,
    steps: int,
    delta: float = DEFAULT_DELTA,
    tolerance: float = 1e-3,
) -> float:
    """The smallest noise multiplier σ (to ``tolerance`` relative) whose ``steps``
    Poisson-sampled Gaussian steps at ``sample_rate`` cost at most ``epsilon`` at
    ``delta`` by the accountant fedshare reports with (RDP). The result is rounded
    up, so spending it never exceeds the budget.

    Raises PrivacyError for a non-positive budget or invalid schedule, or when no σ
    up to 10,000 fits the budget.
    """
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise PrivacyError(f"epsilon must be finite and > 0, got {epsilon!r}")
    accountant = PrivacyAccountant(delta=delta)

    def cost(sigma: float) -> float:
        return accountant.projected_epsilon(noise_multiplier=sigma,
                                            sample_rate=sample_rate, steps=steps)

    low, high = 0.05, 10_000.0
    if cost(high) > epsilon:
        raise PrivacyError(
            f"no noise multiplier up to {high:g} keeps {steps} steps at sample rate "
            f"{sample_rate:g} within ε = {epsilon:g} at δ = {delta:g}"
        )
    if cost(low) <= epsilon:
        return low
    while high / low > 1 + tolerance:
        mid = math.sqrt(low * high)
        if cost(mid) <= epsilon:
            high = mid
        else:
            low = mid
    return high
