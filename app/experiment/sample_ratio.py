"""The sample-ratio check: are the arms' sizes what the configured share makes them? Valid however often read.

It counts units (the unit is what the hash assigns: a person, or the recommendation), not
recommendations: a person's number of recommendations may rightly differ between arms, while the number
of units in each arm is fixed by the share alone.

The guardrail reads it every 5 s for the experiment's whole life, so a fixed-level test (a chi-square at
p < 0.001, as Fabijan et al., KDD 2019, and GrowthBook use it) would raise false alarms far more often than
its level says: read after every unit, it stopped 2 to 4% of correct experiments by 20,000 units. This is the
sequential multinomial test of Lindon and Malek ("Anytime-Valid Inference for Multinomial Count Data",
NeurIPS 2022): the Bayes factor of a Dirichlet mixture of the multinomials against the share,

    BF_n = B(a + n) / B(a) / prod_i theta_i^n_i,  a = PRIOR_CONCENTRATION * theta,  B the multivariate beta,

for counts n = (control, candidate) and theta = (1 - share, share). Under a correct assignment it is a
nonnegative martingale of mean 1, so by Ville's inequality it ever reaches 1/alpha with probability at most
alpha, over all reads at once: p = min(1, 1 / BF_n) is an anytime-valid p-value, exactly, not
asymptotically. A mismatch is flagged at p < SRM_ALPHA. The closed form above is what the `savvi` package's
`Multinomial` computes one batch at a time (tests/experiment/test_analysis.py checks one against the other):
the service does not import savvi, which brings cvxpy and matplotlib with it for the intervals it solves.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln, xlogy

SRM_ALPHA = 0.001
# The prior's weight, in units: savvi's default. Lindon and Malek's test flags a 55/45 split of a 50/50
# share in about 1,600 units (median; 95% of runs by 3,200).
PRIOR_CONCENTRATION = 100.0


def log_beta(values: NDArray) -> NDArray:
    """ln B(v) = sum ln Gamma(v_i) - ln Gamma(sum v_i), over the first axis."""
    return gammaln(values).sum(axis=0) - gammaln(values.sum(axis=0))


def sample_ratio_p(control_units: ArrayLike, candidate_units: ArrayLike, share: float) -> NDArray:
    """The anytime-valid p-value of the arms' unit counts against `share` for the candidate (1 with no units)."""
    counts = np.stack(np.broadcast_arrays(np.asarray(control_units, float), np.asarray(candidate_units, float)))
    theta = np.array([1 - share, share]).reshape((2,) + (1,) * (counts.ndim - 1))
    prior = np.broadcast_to(PRIOR_CONCENTRATION * theta, counts.shape)
    log_bayes_factor = log_beta(prior + counts) - log_beta(prior) - xlogy(counts, theta).sum(axis=0)
    return np.minimum(1.0, np.exp(-log_bayes_factor))


def mismatched(p: ArrayLike) -> NDArray:
    """Whether a p-value of sample_ratio_p flags a mismatch."""
    return np.asarray(p) < SRM_ALPHA
