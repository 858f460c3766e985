"""The language-model shape: every token the next token of one context (V = m)."""

import numpy as np
from _reference import naive_ntp_svm

from sklearn_ntp.implicit_bias import implicit_bias_limit


def test_limit_matches_the_explicit_primal_with_one_context_per_token():
    # All m (m - 1) off-support pairs are separable: U~ is the NTP-SVM of
    # the data, here against cvxpy on the explicit primal over the V x d variable.
    rng = np.random.default_rng(0)
    m, d = 60, 4
    H = rng.normal(size=(m, d))
    limit = implicit_bias_limit(H, np.arange(m))
    assert limit.status == "certified"
    assert limit.is_separable
    expected, problem, _, _ = naive_ntp_svm(H, np.eye(m))
    assert expected is not None, problem.status
    U = limit.max_margin_solution
    # Feasible on every pair, and no longer than the conic solution: the
    # optimum, to the conic solver's own accuracy (a few 1e-5 at this size).
    logits = H @ U.T
    margins = np.diag(logits)[:, None] - logits
    assert np.all(margins[~np.eye(m, dtype=bool)] >= 1 - 1e-8 * np.abs(logits).max())
    assert np.linalg.norm(U) <= np.linalg.norm(expected) * (1 + 1e-9)
    assert np.linalg.norm(U - expected) <= 1e-4 * np.linalg.norm(expected)
