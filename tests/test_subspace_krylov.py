"""The matrix-free (LSQR) path of W* and F against the explicit Kronecker system."""

import numpy as np
import pytest
from _reference import (
    kronecker_log_odds_solution,
    kronecker_projection,
    random_ntp_problem,
)

from sklearn_ntp.implicit_bias import NotNTPCompatibleError, data_subspace, log_odds_solution


@pytest.mark.parametrize("d", [200, 6])  # compatible (d > m) and not (d < m)
def test_krylov_matches_kronecker_least_squares(d):
    H, P = random_ntp_problem(np.random.default_rng(d), 60, 10, d, 3)
    W_ref = kronecker_log_odds_solution(H, P)
    W = log_odds_solution(H, P, method="krylov", allow_inexact=True)
    assert np.linalg.norm(W - W_ref) <= 1e-8 * np.linalg.norm(W_ref)
    F = data_subspace(H, P, method="krylov")
    G = np.random.default_rng(1).standard_normal(W.shape)
    assert np.allclose(F.project(G), kronecker_projection(H, P, G), atol=1e-8)
    dist = F.distances(F.coordinates(G)[None], W)
    assert np.allclose(dist, np.linalg.norm(kronecker_projection(H, P, G) - W_ref), rtol=1e-8)


def test_krylov_and_dense_make_the_same_decision():
    H, P = random_ntp_problem(np.random.default_rng(5), 60, 10, 4, 3)  # 120 equations, V d = 40
    for method in ("dense", "krylov"):
        with pytest.raises(NotNTPCompatibleError):
            log_odds_solution(H, P, method=method)


def test_unknown_subspace_method_is_rejected():
    with pytest.raises(ValueError, match="method"):
        data_subspace(np.eye(2), [0, 1], method="qr")
