"""The dense paths of W* and F (Gram or normal matrix) against the explicit Kronecker system."""

import numpy as np
import pytest
import scipy.linalg as la
from _reference import kronecker_log_odds_solution, kronecker_projection, random_ntp_problem
from sklearn import config_context

from sklearn_ntp._linalg._pivoted import PivotedCholesky
from sklearn_ntp.implicit_bias import (
    DataSubspace,
    NotNTPCompatibleError,
    aggregate_contexts,
    log_odds_solution,
)


def repeated_pair_problem(rng, n_repeats, n_tokens, n_features):
    """Random problem plus ``n_repeats`` contexts on one token pair: dependent generators
    once ``n_repeats > n_features``."""
    H, P = random_ntp_problem(rng, 8, n_tokens, n_features, 3)
    extra = np.zeros((n_repeats, n_tokens))
    extra[:, :2] = rng.uniform(0.1, 1.0, size=(n_repeats, 2))
    extra /= extra.sum(axis=1, keepdims=True)
    return np.r_[H, rng.standard_normal((n_repeats, n_features))], np.r_[P, extra]


def consistent_problem(rng, n_contexts, n_tokens, n_features, support_size):
    """Random supports with in-support probabilities ``softmax(W0 h_j)``: compatible."""
    H, P = random_ntp_problem(rng, n_contexts, n_tokens, n_features, support_size)
    logits = H @ rng.standard_normal((n_tokens, n_features)).T
    P = np.where(P > 0, np.exp(logits - logits.max(axis=1, keepdims=True)), 0.0)
    return H, P / P.sum(axis=1, keepdims=True)


PROBLEMS = {
    # Generator space when N = sum_j (S_j - 1) <= k d (k touched tokens), else weight space.
    "generator-space compatible":
        lambda: random_ntp_problem(np.random.default_rng(0), 15, 12, 30, 3),
    "generator-space rank-deficient":
        lambda: repeated_pair_problem(np.random.default_rng(2), 9, 40, 4),
    "weight-space incompatible": lambda: random_ntp_problem(np.random.default_rng(3), 60, 6, 4, 3),
    "weight-space compatible": lambda: consistent_problem(np.random.default_rng(4), 60, 6, 4, 3),
}


@pytest.mark.parametrize("name", PROBLEMS)
def test_dense_paths_match_kronecker_least_squares(name):
    H, P = PROBLEMS[name]()
    data = aggregate_contexts(H, P)
    F = DataSubspace(data, method="dense")
    # The problem is in the regime its name says: the (N, N) Gram matrix of
    # the generators is the smaller system exactly when N <= k d, k the tokens
    # that the in-support pairs touch.
    pairs = data.support_mask[data.support_mask.sum(axis=1) > 1]
    k = int(pairs.any(axis=0).sum())
    assert (F.n_generators <= k * H.shape[1]) == name.startswith("generator-space")
    W_ref = kronecker_log_odds_solution(H, P)
    W, residual = F.log_odds_solution()
    assert np.linalg.norm(W - W_ref) <= 1e-8 * np.linalg.norm(W_ref)
    M_residual = np.max(np.abs(F.coordinates(W_ref) - F.log_odds()))
    assert residual == pytest.approx(M_residual, rel=1e-6, abs=1e-10)
    assert F.is_exact(residual) == name.endswith(" compatible")
    G = np.random.default_rng(1).standard_normal(W.shape)
    assert np.allclose(F.project(G), kronecker_projection(H, P, G), atol=1e-8)
    dist = F.distances(np.array([F.coordinates(G), F.coordinates(W_ref)]), W)
    expected = np.linalg.norm(kronecker_projection(H, P, G) - W_ref)
    assert dist == pytest.approx([expected, 0.0], rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("name", PROBLEMS)
def test_dense_and_krylov_make_the_same_decision(name):
    H, P = PROBLEMS[name]()
    for method in ("dense", "krylov"):
        if name.endswith(" compatible"):
            log_odds_solution(H, P, method=method)
        else:
            with pytest.raises(NotNTPCompatibleError):
                log_odds_solution(H, P, method=method)


def test_dense_dimension_is_the_rank_of_the_kronecker_system():
    H, P = PROBLEMS["generator-space rank-deficient"]()
    from _reference import kronecker_log_odds_system
    M, _ = kronecker_log_odds_system(H, P)
    F = DataSubspace(aggregate_contexts(H, P), method="dense")
    assert F.dim == np.linalg.matrix_rank(M) < F.n_generators


@pytest.mark.parametrize(("n", "r"), [(25, 25), (25, 17), (25, 3), (25, 0), (0, 0)])
def test_pivoted_cholesky_solves_against_the_pseudo_inverse(n, r):
    rng = np.random.default_rng(n + r)
    B = rng.standard_normal((n, r))
    A = B @ B.T
    b = rng.standard_normal(n)
    factor = PivotedCholesky(A.copy(), 1e-10)
    pinv = la.pinvh(A, rtol=1e-10) if n else A
    assert factor.rank == r
    assert np.allclose(factor.pinv_solve(b), pinv @ b, atol=1e-10)
    # Any least-squares solution: the same projection of b onto the range.
    assert np.allclose(A @ factor.basic_solution(b), A @ pinv @ b, atol=1e-10)
    x = rng.standard_normal(r)  # A = B B^T: ||L^+ P^T B x|| = ||x|| (B has full column rank)
    assert np.linalg.norm(factor.lstsq(B @ x)) == pytest.approx(np.linalg.norm(x), abs=1e-10)


def test_weight_space_distances_in_batches_match_kronecker_projection():
    # Five matrices, a working memory of two columns' products: three batches.
    H, P = PROBLEMS["weight-space incompatible"]()
    data = aggregate_contexts(H, P)
    F = DataSubspace(data, method="dense")
    rng = np.random.default_rng(5)
    Gs = rng.standard_normal((5, P.shape[1], H.shape[1]))
    W_ref = F.project(rng.standard_normal(Gs[0].shape))
    columns = 2.5 * 8 * F.n_generators * H.shape[1] / 2 ** 20
    with config_context(working_memory=columns):
        dist = F.distances(np.array([F.coordinates(G) for G in Gs]), W_ref)
    expected = [np.linalg.norm(kronecker_projection(H, P, G) - W_ref) for G in Gs]
    assert dist == pytest.approx(expected, rel=1e-8, abs=1e-8)
