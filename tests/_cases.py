"""Data sets and helpers shared by the tests of the implicit-bias limit."""

import numpy as np

from sklearn_ntp.datasets._synthetic import partially_separable_data


def _random_supports(rng, H, n_tokens, support_size):
    P = np.zeros((H.shape[0], n_tokens))
    for j in range(H.shape[0]):
        s = rng.choice(n_tokens, size=support_size, replace=False)
        p = rng.uniform(0.1, 1.0, size=support_size)
        P[j, s] = p / p.sum()
    return P


def partially_separable(seed=0, m=20, V=8, d=30, S=3):
    """Overparameterized but for one context, twice another with a disjoint support."""
    H, P, _ = partially_separable_data(m, V, d, S, random_state=seed)
    return H, P


def non_separable(seed=0, m=40, V=8, d=6, S=3):
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((m, d))
    return H, _random_supports(rng, H, V, S)


def incompatible_separable():
    """h_3 = h_1 + h_2 with the supports {0, 1}: the log-odds must add up, and do not."""
    H = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    P = np.array([[0.7, 0.3, 0.0], [0.4, 0.6, 0.0], [0.2, 0.8, 0.0]])
    return H, P


CASES = {"partially_separable": partially_separable, "non_separable": non_separable,
         "incompatible_separable": incompatible_separable}


def partially_separable_low_rank(seed=0, m=30, V=6, d=8, S=2):
    """d < m, so T comes from the LP (or the probe), with one pair of collinear
    contexts with disjoint supports."""
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((m, d))
    P = _random_supports(rng, H, V, S)
    return H, P


def forbid_the_lp(monkeypatch):
    """Every LP for T counts as too large, and solving one fails the test."""
    import sklearn_ntp._geometry._limit as module
    import sklearn_ntp._geometry._separable_pairs as pairs

    def no_lp(*args, **kwargs):
        raise AssertionError("the LP for T must not run")

    monkeypatch.setattr(module, "LP_MAX_NONZEROS", 0)
    monkeypatch.setattr(pairs, "linprog", no_lp)
