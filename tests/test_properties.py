"""Property tests over random supports, sizes and weights (hypothesis)."""

import numpy as np
from _reference import cross_entropy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_ntp.implicit_bias import aggregate_contexts, data_subspace, log_odds_solution, ntp_svm


@st.composite
def ntp_problems(draw):
    """Overparameterized problems (Lemma 1): d > m Gaussian embeddings."""
    m = draw(st.integers(1, 6))
    V = draw(st.integers(2, 6))
    d = m + draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((m, d))
    P = np.zeros((m, V))
    for j in range(m):
        size = draw(st.integers(1, V))
        support = rng.choice(V, size=size, replace=False)
        P[j, support] = rng.dirichlet(np.ones(size))
        P[j, support] = np.maximum(P[j, support], 1e-3)
        P[j] /= P[j].sum()
    w = rng.uniform(0.1, 3.0, size=m)
    return H, P, w


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inner(A, B):
    return float(np.sum(A * B))


@SETTINGS
@given(ntp_problems())
def test_projection_is_idempotent_and_orthogonal(problem):
    H, P, w = problem
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((2, P.shape[1], H.shape[1]))
    F = data_subspace(H, P, w)
    PA = F.project(A)
    np.testing.assert_allclose(F.project(PA), PA, atol=1e-10)
    assert abs(_inner(PA, B - F.project(B))) < 1e-10 * (1 + np.linalg.norm(A) * np.linalg.norm(B))
    np.testing.assert_allclose(F.project_orthogonal(A) + PA, A, atol=1e-12)
    # Distances from coordinates (used to track iterates) agree with projections.
    W_ref = F.project(B)
    distances = F.distances(np.array([F.coordinates(A), F.coordinates(B)]), W_ref)
    np.testing.assert_allclose(distances, [np.linalg.norm(PA - W_ref), 0.0], atol=1e-9)


@SETTINGS
@given(ntp_problems())
def test_w_star_in_f_and_w_mm_in_f_perp(problem):
    H, P, w = problem
    F = data_subspace(H, P, w)
    W_star = log_odds_solution(H, P, w)
    W_mm = ntp_svm(H, P, w)
    np.testing.assert_allclose(F.project(W_star), W_star, atol=1e-9)
    np.testing.assert_allclose(F.project(W_mm), 0, atol=1e-9)


@SETTINGS
@given(ntp_problems())
def test_loss_is_above_entropy_and_reaches_it_along_w_star_plus_t_w_mm(problem):
    H, P, w = problem
    data = aggregate_contexts(H, P, w)
    pi = data.weights
    W_star, W_mm = log_odds_solution(H, P, w), ntp_svm(H, P, w)
    # Rows of H are distinct and already sorted by the aggregation: reorder P to match.
    order = [int(np.flatnonzero((H == h).all(axis=1))[0]) for h in data.embeddings]
    Hs, Ps = H[order], P[order]
    rng = np.random.default_rng(1)
    assert cross_entropy(rng.standard_normal(W_star.shape), Hs, Ps, pi) >= data.entropy - 1e-12
    excess = [cross_entropy(W_star + t * W_mm, Hs, Ps, pi) - data.entropy for t in (0, 5, 10, 40)]
    assert np.all(np.array(excess) >= -1e-10)
    if (P > 0).all():  # full supports: W* alone attains the bound
        assert excess[0] < 1e-10
    else:
        assert np.all(np.diff(excess) <= 1e-12) and excess[-1] < 1e-12 + 1e-9 * excess[0]
