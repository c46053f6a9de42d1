"""Exact binomial intervals for the error rates the evaluations report.

Rates here are counts over small sets (a few liveness clips) or huge ones (millions of
impostor pairs); both need the exact interval, summed in log space so that n in the millions
neither overflows nor underflows.
"""

from __future__ import annotations

import math

import numpy as np


def _log_binomial_cdf(k: int, n: int, p: float) -> float:
    """log P(X <= k) for X ~ Binomial(n, p), summed in log space (exact)."""
    if k < 0:
        return -math.inf
    if k >= n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return -math.inf
    i = np.arange(k, dtype=np.float64)
    steps = np.log((n - i) / (i + 1)) + math.log(p) - math.log1p(-p)
    logs = np.concatenate([[n * math.log1p(-p)], n * math.log1p(-p) + np.cumsum(steps)])
    top = logs.max()
    return float(top + math.log(np.exp(logs - top).sum()))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial proportion k / n."""
    if n == 0:
        return (0.0, 1.0)
    alpha = (1 - confidence) / 2

    def solve(target, k_cdf, low, high):
        # p such that P(X <= k_cdf | p) = target; the CDF falls as p grows
        for _ in range(200):
            mid = math.sqrt(low * high) if low > 0 else high / 2
            if _log_binomial_cdf(k_cdf, n, mid) > math.log(target):
                low = mid
            else:
                high = mid
            if high - low <= 1e-6 * high:
                break
        return (low + high) / 2

    lower = 0.0 if k == 0 else solve(1 - alpha, k - 1, 0.0, 1.0)
    upper = 1.0 if k == n else solve(alpha, k, 0.0, 1.0)
    return lower, upper


def upper_bound(errors: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of an error rate (NaN for no trials)."""
    if n == 0:
        return math.nan
    return clopper_pearson(errors, n, 1 - 2 * (1 - confidence))[1]
