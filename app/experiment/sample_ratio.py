"""The sample-ratio check: are the arms' sizes what the configured share makes them?

It counts units (the unit is what the hash assigns: a person, or the recommendation), not
recommendations: a person's number of recommendations may rightly differ between arms, while the number
of units in each arm is fixed by the share alone. A chi-square goodness-of-fit test against the share
(Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD 2019) is
flagged at p < SRM_ALPHA, and only once each arm has MINIMUM_UNITS units, as GrowthBook does. Under
repeated looks the chance of a false alarm grows with the number of looks; tests/experiment/ measures it
for reads after every 50 units up to 5,000.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chisquare

SRM_ALPHA = 0.001
MINIMUM_UNITS = 8


def sample_ratio_p(control_units: ArrayLike, candidate_units: ArrayLike, share: float) -> NDArray:
    """The p-value of the arms' unit counts against `share` for the candidate; nan until each has 8."""
    observed = np.stack(np.broadcast_arrays(np.asarray(control_units, float), np.asarray(candidate_units, float)))
    total = observed.sum(axis=0)
    expected = np.stack([total * (1 - share), total * share])
    enough = observed.min(axis=0) >= MINIMUM_UNITS
    with np.errstate(divide="ignore", invalid="ignore"):
        p = chisquare(observed, expected, axis=0).pvalue
    return np.where(enough, p, np.nan)


def mismatched(p: ArrayLike) -> NDArray:
    """Whether a p-value of sample_ratio_p flags a mismatch (never while it is nan)."""
    return np.asarray(p) < SRM_ALPHA
