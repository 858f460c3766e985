"""W*, F and W^mm against independent formulations (Kronecker system, cvxpy, LinearSVC)."""

import warnings

import numpy as np
import pytest
from _reference import (
    cross_entropy,
    kronecker_log_odds_solution,
    kronecker_log_odds_system,
    kronecker_projection,
    naive_ntp_svm,
    random_ntp_problem,
    supports,
)
from sklearn.svm import LinearSVC

from sklearn_ntp.implicit_bias import (
    NotNTPCompatibleError,
    NotNTPSeparableError,
    aggregate_contexts,
    check_ntp_separability,
    data_subspace,
    log_odds_solution,
    ntp_loss,
    ntp_svm,
)


@pytest.fixture(params=[(8, 5, 10, 3), (12, 6, 15, 4), (6, 4, 4, 2)], ids=["d>m", "d>m-2", "d<m"])
def problem(request):
    rng = np.random.default_rng(sum(request.param))
    return random_ntp_problem(rng, *request.param)


def test_log_odds_solution_matches_the_kronecker_least_squares(problem):
    H, P = problem
    expected = kronecker_log_odds_solution(H, P)
    M, ell = kronecker_log_odds_system(H, P)
    exact = np.allclose(M @ expected.ravel(), ell, atol=1e-8)
    W = log_odds_solution(H, P, allow_inexact=True)
    np.testing.assert_allclose(W, expected, atol=1e-8)
    if exact:
        np.testing.assert_allclose(W, log_odds_solution(H, P), atol=1e-15)


def test_log_odds_solution_satisfies_every_pairwise_equation():
    H, P = random_ntp_problem(np.random.default_rng(0), 10, 7, 12, 4)
    W = log_odds_solution(H, P)
    for j, S in enumerate(supports(P)):
        logits = W @ H[j]
        for z in S:
            for zp in S:
                assert logits[z] - logits[zp] == pytest.approx(np.log(P[j, z] / P[j, zp]), abs=1e-8)


def test_projection_matches_the_kronecker_projector(problem):
    H, P = problem
    W = np.random.default_rng(1).standard_normal((P.shape[1], H.shape[1]))
    F = data_subspace(H, P)
    np.testing.assert_allclose(F.project(W), kronecker_projection(H, P, W), atol=1e-10)
    M, _ = kronecker_log_odds_system(H, P)
    assert F.dim == np.linalg.matrix_rank(M)


def test_ntp_svm_matches_the_naive_cvxpy_model(problem):
    H, P = problem
    expected, *_ = naive_ntp_svm(H, P)
    if expected is None:
        with pytest.raises(NotNTPSeparableError):
            ntp_svm(H, P)
        return
    W = ntp_svm(H, P)
    assert np.linalg.norm(W - expected) <= 1e-5 * np.linalg.norm(expected)


def test_ntp_svm_satisfies_kkt_with_the_naive_models_multipliers():
    H, P = random_ntp_problem(np.random.default_rng(3), 10, 6, 12, 3)
    W = ntp_svm(H, P)
    _, _, equalities, inequalities = naive_ntp_svm(H, P)
    V = P.shape[1]
    # Primal feasibility of (6a)-(6b), checked by hand.
    for j, S in enumerate(supports(P)):
        logits = W @ H[j]
        out = np.setdiff1d(np.arange(V), S)
        assert np.ptp(logits[S]) < 1e-9
        assert np.all(logits[S[0]] - logits[out] >= 1 - 1e-9)
    # Stationarity W = sum of multiplier-weighted constraint gradients, and
    # complementary slackness, using the independent model's multipliers.
    stationarity = np.zeros_like(W)
    k = 0
    multipliers = inequalities[0].dual_value
    for j, S in enumerate(supports(P)):
        for v in np.setdiff1d(np.arange(V), S):
            lam = float(multipliers[k])
            assert lam >= -1e-7
            margin = (W[S[0]] - W[v]) @ H[j]
            assert lam * (margin - 1) == pytest.approx(0, abs=1e-6)
            stationarity[S[0]] += lam * H[j] / 2
            stationarity[v] -= lam * H[j] / 2
            k += 1
    # The equality multipliers absorb the rest: it must lie in F.
    residual = W - stationarity
    F = data_subspace(H, P)
    np.testing.assert_allclose(F.project(residual), residual, atol=1e-6)


def test_one_hot_max_margin_is_the_crammer_singer_svm():
    rng = np.random.default_rng(0)
    H = rng.standard_normal((12, 15))
    y = np.arange(12) % 4
    W = ntp_svm(H, y)
    svc = LinearSVC(multi_class="crammer_singer", fit_intercept=False, C=1e6, tol=1e-10,
                    max_iter=200_000).fit(H, y)
    cos = np.sum(W * svc.coef_) / (np.linalg.norm(W) * np.linalg.norm(svc.coef_))
    assert cos > 0.999
    F = data_subspace(H, y)
    assert F.dim == 0
    np.testing.assert_array_equal(log_odds_solution(H, y), 0.0)


def test_lemma_1_overparameterized_data_are_compatible_and_separable():
    rng = np.random.default_rng(7)
    for m, d in [(5, 6), (20, 21), (30, 60)]:
        H, P = random_ntp_problem(rng, m, 8, d, 3)
        report = check_ntp_separability(H, P)
        assert report.overparameterized and report.is_compatible and report.is_separable
        assert report.margin == pytest.approx(1 / np.linalg.norm(report.max_margin_solution))


def _non_separable():
    # d = 1: context 1 wants w0 > w1, context 2 (h = 2, same direction) wants w1 > w0.
    return np.array([[1.0], [2.0]]), np.array([0, 1])


def test_non_separable_data_are_reported_with_a_verified_certificate():
    H, y = _non_separable()
    assert naive_ntp_svm(H, np.eye(2)[y])[0] is None  # cvxpy agrees: infeasible
    with pytest.raises(NotNTPSeparableError) as info:
        ntp_svm(H, y)
    A = info.value.certificate
    off = np.eye(2)[y].T == 0  # (V, m) out-of-support mask
    np.testing.assert_allclose(A @ H, 0, atol=1e-9)
    np.testing.assert_allclose(A.sum(axis=0), 0, atol=1e-9)
    assert np.all(A[off] <= 1e-9) and A[off].sum() < -1e-7
    report = check_ntp_separability(H, y)
    assert not report.is_separable and np.isnan(report.margin)
    assert report.max_margin_solution is None
    assert "NTP-separable" in str(report) and "no" in str(report)


@pytest.mark.parametrize("sizes", [(6, 5, 4, 2), (24, 5, 20, 3), (30, 2, 15, 1), (20, 5, 8, 2)])
def test_separability_agrees_with_cvxpy_on_rank_deficient_embeddings(sizes):
    # d < m: near the separability threshold, where the dual is degenerate.
    rng = np.random.default_rng(11)
    outcomes = set()
    for _ in range(12):
        H, P = random_ntp_problem(rng, *sizes)
        expected, *_ = naive_ntp_svm(H, P)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no inexact fallback either
            report = check_ntp_separability(H, P)
        assert report.is_separable == (expected is not None)
        outcomes.add(report.is_separable)
        if expected is not None:
            W = report.max_margin_solution
            assert np.linalg.norm(W - expected) <= 1e-5 * np.linalg.norm(expected)
    if sizes == (6, 5, 4, 2):
        assert outcomes == {True, False}  # this draw exercises both branches


def test_incompatible_data_raise_unless_inexact_is_allowed():
    # Same direction h and 2h, but different log-odds: (w0 - w1) = 0 and 2 (w0 - w1) = log 4.
    H = np.array([[1.0], [2.0]])
    P = np.array([[0.5, 0.5], [0.8, 0.2]])
    with pytest.raises(NotNTPCompatibleError) as info:
        log_odds_solution(H, P)
    assert info.value.residual > 0.1
    W = log_odds_solution(H, P, allow_inexact=True)
    np.testing.assert_allclose(W, kronecker_log_odds_solution(H, P), atol=1e-12)
    assert not check_ntp_separability(H, P).is_compatible


def test_full_support_contexts_have_no_inequalities():
    H = np.eye(3)
    P = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    W = ntp_svm(H, P)
    expected, *_ = naive_ntp_svm(H, P)
    np.testing.assert_allclose(W, expected, atol=1e-6)
    full = np.array([[0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_array_equal(ntp_svm(np.eye(2), full), 0.0)
    report = check_ntp_separability(np.eye(2), full)
    assert report.is_separable and np.isinf(report.margin)
    assert "full support" in str(report)


def test_single_context_and_unused_tokens():
    P = np.array([[0.25, 0.75, 0.0, 0.0]])
    H = np.array([[1.0, 2.0]])
    W = ntp_svm(H, P)
    expected, *_ = naive_ntp_svm(H, P)
    np.testing.assert_allclose(W, expected, atol=1e-6)
    W_star = log_odds_solution(H, P)
    assert (W_star[1] - W_star[0]) @ H[0] == pytest.approx(np.log(3))
    np.testing.assert_array_equal(W_star[2:], 0.0)  # tokens outside every support


def test_duplicated_contexts_with_different_next_tokens():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 0, 1, 2])
    W = log_odds_solution(X, y)
    assert (W[0] - W[1]) @ X[0] == pytest.approx(np.log(2))
    data = aggregate_contexts(X, y)
    assert ntp_loss(W + 30 * ntp_svm(X, y), X, y) - data.entropy < 1e-10


def test_huge_norm_loss_is_finite_and_matches_scipy():
    H, P = random_ntp_problem(np.random.default_rng(5), 6, 5, 8, 3)
    pi = np.full(6, 1 / 6)
    W = 1e6 * np.random.default_rng(6).standard_normal((5, 8))
    assert ntp_loss(W, H, P) == pytest.approx(cross_entropy(W, H, P, pi), rel=1e-12)


def test_low_rank_embeddings_match_cvxpy():
    # Thirty contexts in three dimensions (rank 3): the degenerate dual path.
    from sklearn.datasets import make_blobs
    from sklearn.preprocessing import StandardScaler
    X, y = make_blobs(n_samples=30, centers=[[0, 0, 0], [1, 1, 1]], cluster_std=0.1,
                      random_state=0)
    X = StandardScaler().fit_transform(X)
    data = aggregate_contexts(X, y)
    expected, *_ = naive_ntp_svm(np.asarray(data.embeddings), data.probabilities.toarray())
    assert expected is not None
    W = ntp_svm(X, y)
    assert np.linalg.norm(W - expected) <= 1e-5 * np.linalg.norm(expected)


def test_nearly_non_separable_data_are_solved_to_high_accuracy():
    # One-hot data at d/m = 1/3 with five tokens: some draws are separable only
    # with a tiny margin (||W^mm|| in the thousands); rounding then grows with
    # W^mm, and the KKT certificate must be judged relative to its scale.
    seed = np.random.SeedSequence(0).generate_state(75)[18]
    rng = np.random.default_rng(seed)
    norms = []
    for _ in range(20):
        X = rng.standard_normal((24, 8))
        y = rng.integers(0, 5, size=24)
        expected, *_ = naive_ntp_svm(X, np.eye(5)[y])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                W = ntp_svm(X, y)
            except NotNTPSeparableError:
                W = None
        assert (W is None) == (expected is None)
        if W is not None:
            norms.append(np.linalg.norm(expected))
            assert np.linalg.norm(W - expected) <= 1e-5 * np.linalg.norm(expected)
    assert max(norms) > 100  # the draw contains a nearly non-separable case
