"""'Certified' means correct: the limit against independent references, in any coordinates.

Every instance is also solved by the explicit formulations of ``_reference``
(an LP over vec(W) for ``T``, BFGS over an explicit basis of ``G`` for ``W~``
and ``L*``, a cvxpy QP for ``U~``), on a well-conditioned version of the same
data where there is one (an offset subtracted back exactly, an invertible
feature map undone). Whatever the library's status says is certified must
agree with them, and ``loss_infimum_bounds`` must always contain ``L*``.
"""

import warnings

import cvxpy as cp
import numpy as np
import pytest
from _cases import incompatible_separable, non_separable, partially_separable
from _reference import (
    explicit_finite_part,
    explicit_max_margin,
    explicit_separable_pairs,
    kronecker_log_odds_solution,
)
from scipy.special import softmax
from sklearn.datasets import load_breast_cancer

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp._geometry._basis import context_basis
from sklearn_ntp.implicit_bias import (
    aggregate_contexts,
    check_ntp_separability,
    implicit_bias_limit,
    log_odds_solution,
    ntp_svm,
)


def _dense(H, y, pi=None):
    """``(H, P, pi)`` of distinct contexts in the library's order (labels or rows)."""
    data = aggregate_contexts(H, y, pi)
    return np.asarray(data.embeddings), data.probabilities.toarray(), np.asarray(data.weights)


def _reference(H, P, pi, feature_map=None, max_margin=True):
    """``(T, L*, restricted softmax of W~, U~)`` from the explicit formulations,
    on well-conditioned contexts ``H``; ``U~`` for the contexts ``H A`` when a
    ``feature_map`` ``A`` is given (its metric is theirs)."""
    T = explicit_separable_pairs(H, P)
    mask = (P > 0) | ~T
    W, value, _ = explicit_finite_part(H, P, pi, mask)
    q = softmax(np.where(mask, H @ W.T, -np.inf), axis=1)
    U = (explicit_max_margin(H, P, mask, T, feature_map) if T.any() and max_margin
         else None)
    return T, value, q, U


def _restricted_softmax(limit):
    Z = limit.data.embeddings @ limit.finite_component.T
    return softmax(np.where(limit.effective_support, Z, -np.inf), axis=1)


def check_against(limit, reference):
    """What the status certifies is correct; the bounds on L* always hold."""
    T, value, q, U = reference
    status, certificate = limit.status, limit.certificate
    lower, upper = limit.loss_infimum_bounds
    slack = 1e-9 * max(1.0, value)
    assert lower - slack <= value <= upper + slack, (limit.loss_infimum_bounds, value, status)
    if "separable pairs T" not in status:
        np.testing.assert_array_equal(limit.separable_pairs, T)
    if "separable pairs T" in status or "finite component" in status:
        return
    assert limit.loss_infimum == pytest.approx(value, abs=certificate["loss_infimum_error"]
                                               + slack)
    if "W~ in the features' coordinates" not in status:
        np.testing.assert_allclose(_restricted_softmax(limit), q, atol=1e-6)
    if U is not None and "U~" not in status and not certificate["max_margin_refusal"]:
        np.testing.assert_allclose(limit.max_margin_solution, U,
                                   atol=1e-5 * np.abs(U).max())


# ------------------------------------------------------------------- instances
def tiny_margins(eps=2e-8):
    """Three contexts on one line up to eps (rotated): two one-hot contexts that
    only the eps differences separate, and one with both tokens."""
    c, s = np.cos(0.7), np.sin(0.7)
    R = np.array([[c, -s], [s, c]])
    H = np.array([[1.0, 0.0], [1.0, eps], [1.0, eps / 2]]) @ R.T
    return H, np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])


def intercept_data(seed, offset, soft=False):
    """An intercept column and 1-3 clustered features, weights in [0.2, 1]; the
    first feature shifted by ``offset`` (exactly undone for the reference:
    the shifted rows are ``h_j^T A`` for the shear :func:`shear`)."""
    rng = np.random.default_rng(seed)
    m, k, V = 40, int(rng.integers(1, 4)), 3
    y = rng.integers(0, V, m)
    X = rng.normal(size=(V, k))[y] * 1.5 + rng.normal(size=(m, k))
    X = np.c_[np.ones(m), X]
    w = rng.uniform(0.2, 1.0, m)
    if soft:
        y = rng.dirichlet(np.full(V, 0.3), m)
        y[y < 0.1] = 0.0
        y /= y.sum(axis=1, keepdims=True)
    shifted = X.copy()
    shifted[:, 1] += offset
    return X, shifted, y, w


def shear(n_features, offset):
    """``A`` with ``h^T A``: the first feature plus ``offset`` times the intercept."""
    A = np.eye(n_features)
    A[0, 1] = offset
    return A


def collinear_weighted(seed=0):
    """Two pairs of collinear contexts with disjoint supports, weights over 8 decades."""
    rng = np.random.default_rng(seed)
    m, d, V = 12, 10, 6
    H = rng.normal(size=(m, d))
    H[1], H[3] = 2 * H[0], 3 * H[2]
    y = rng.integers(0, V, m)
    y[:4] = [0, 1, 2, 3]
    return H, y, 10 ** rng.uniform(-8, 0, m)


def sweep_instance(kind, seed):
    """``(H, y, pi)`` of the seeded sweep."""
    rng = np.random.default_rng(seed)
    if kind == "overparameterized":
        H = rng.normal(size=(8, 12))
        return H, _soft(rng, 8, 5, 2), None
    if kind == "partially_separable":
        return (*partially_separable(seed), None)
    if kind == "non_separable":
        return (*non_separable(seed, m=30, V=5, d=4, S=2), None)
    if kind == "incompatible":
        return (*incompatible_separable(), None)
    if kind == "weights":
        H, P = non_separable(seed, m=24, V=5, d=4, S=2)
        return H, P, 10 ** rng.uniform(-8, 0, len(H))
    if kind == "sparse_nonnegative":
        H = rng.poisson(0.4, size=(25, 10)).astype(float)
        H = H[H.any(axis=1)]
        return H, _soft(rng, len(H), 6, 2), rng.uniform(0.1, 1.0, len(H))
    raise ValueError(kind)


def _soft(rng, m, V, S):
    P = np.zeros((m, V))
    for j in range(m):
        support = rng.choice(V, size=S, replace=False)
        P[j, support] = rng.dirichlet(np.ones(S))
    return P


SWEEP = ["overparameterized", "partially_separable", "non_separable", "incompatible",
         "weights", "sparse_nonnegative"]


# ----------------------------------------------------------------------- tests
def test_tiny_margins_are_found_in_orthonormal_coordinates():
    """Margins of 1e-8 in the features are O(1) in orthonormal coordinates of
    the contexts: T is every off-support pair and L* = H = log(2) / 3."""
    H, P = tiny_margins()
    for method in ("auto", "lp"):
        limit = implicit_bias_limit(H, P, method=method)
        np.testing.assert_array_equal(limit.separable_pairs, ~(P > 0)[np.lexsort(H.T[::-1])])
        assert limit.loss_infimum == pytest.approx(np.log(2) / 3, rel=1e-9)
        assert "separable pairs T" not in limit.status
        assert "finite component" not in limit.status


@pytest.mark.parametrize("seed", [62, 73, 82])
@pytest.mark.parametrize("offset", [0.0, 2e2, 1e3, 6e3])
@pytest.mark.parametrize("soft", [False, True])
def test_a_feature_offset_next_to_an_intercept_changes_nothing(seed, offset, soft):
    """T, L* and W~'s in-support probabilities are those of the back-shifted
    data, all certified; U~ (the shifted features' own metric) agrees with the
    reference QP of that metric where the reference itself solves (offsets up
    to 1e3), and is certified there."""
    X, shifted, y, w = intercept_data(seed, offset, soft)
    reference = _reference(*_dense(X, y, w), feature_map=shear(X.shape[1], offset),
                           max_margin=offset <= 1e3)
    limit = implicit_bias_limit(shifted, y, w)
    check_against(limit, reference)
    np.testing.assert_array_equal(limit.separable_pairs, reference[0])
    if offset <= 1e3:
        assert limit.certified, limit.status
    else:
        assert limit.status == "certified" or "badly conditioned" in limit.status, limit.status


def test_a_huge_offset_is_refused_or_correct():
    """With an offset of 1e9 the features' own coordinates lose W~ and U~ to
    round-off, and the status says so; T and L* are still those of the
    back-shifted data, certified in orthonormal coordinates."""
    X, shifted, y, w = intercept_data(62, 1e9)
    reference = _reference(*_dense(X, y, w), max_margin=False)
    limit = implicit_bias_limit(shifted, y, w)
    check_against(limit, reference)
    np.testing.assert_array_equal(limit.separable_pairs, reference[0])
    assert limit.loss_infimum == pytest.approx(reference[1], rel=1e-9)
    assert "separable pairs T" not in limit.status
    assert "finite component W~ (" not in limit.status


def test_small_curvature_is_part_of_the_error_bound():
    H, y, pi = collinear_weighted()
    limit = implicit_bias_limit(H, y, pi)
    check_against(limit, _reference(*_dense(H, y, pi)))
    # The bound divides the gradient by the curvature on G: it is reported,
    # and the stationarity alone is not taken for it.
    certificate = limit.certificate
    assert certificate["finite_component_error"] >= certificate["stationarity"]


@pytest.mark.parametrize("kind", SWEEP)
@pytest.mark.parametrize("seed", [0, 1])
def test_seeded_sweep_against_the_references(kind, seed):
    H, y, pi = sweep_instance(kind, seed)
    limit = implicit_bias_limit(H, y, pi)
    check_against(limit, _reference(*_dense(H, y, pi)))
    assert limit.certified, limit.status


def _feature_map(rng, d, condition):
    Q1, _ = np.linalg.qr(rng.normal(size=(d, d)))
    Q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return Q1 @ np.diag(np.logspace(0, -np.log10(condition), d)) @ Q2


@pytest.mark.parametrize("condition", [1.0, 1e4, 1e8])
@pytest.mark.parametrize("kind", ["partially_separable", "non_separable", "weights",
                                  "overparameterized"])
def test_invariant_under_invertible_feature_maps(kind, condition):
    """T exactly, L* within the bounds (to 1e-9 up to condition 1e4) and W~'s
    in-support probabilities to 1e-6 under
    feature maps with condition numbers up to 1e8, beyond that only within
    what ``feature_map_error`` states (the round-off of the features' own
    coordinates, machine-dependent), and the same status."""
    H, y, pi = sweep_instance(kind, 0)
    base = implicit_bias_limit(H, y, pi)
    A = _feature_map(np.random.default_rng(1), H.shape[1], condition)
    mapped = implicit_bias_limit(H @ A, y, pi)
    # The contexts' order follows the features: compare row by input row.
    rows, mapped_rows = base.data.context_index, mapped.data.context_index
    np.testing.assert_array_equal(mapped.separable_pairs[mapped_rows],
                                  base.separable_pairs[rows])
    # L* of the back-mapped contexts lies within the mapped limit's bounds,
    # which allow for the span error of its basis (about eps over the
    # smallest sine: 1e-7 relative at condition 1e8, round-off below).
    lower, upper = mapped.loss_infimum_bounds
    slack = 1e-12 * max(1.0, base.loss_infimum)
    assert lower - slack <= base.loss_infimum <= upper + slack
    assert mapped.loss_infimum == pytest.approx(base.loss_infimum,
                                                rel=1e-9 if condition < 1e8 else 1e-6)
    # Logit differences moved by at most delta move every probability by at
    # most a factor exp(+-2 delta).
    logits = np.abs(mapped.data.embeddings @ mapped.finite_component.T).max()
    delta = mapped.certificate["feature_map_error"] * max(1.0, logits)
    np.testing.assert_allclose(_restricted_softmax(mapped)[mapped_rows],
                               _restricted_softmax(base)[rows],
                               atol=1e-6 + np.expm1(2 * delta), rtol=0)
    for key in ("finite component", "separable pairs"):
        assert (key in base.status) == (key in mapped.status)


@pytest.mark.parametrize("condition", [1.0, 1e4, 1e8])
def test_span_error_bounds_the_angle_to_the_exact_column_space(condition):
    """The basis's span error against the column space of the stored ``H``
    computed in 50-digit arithmetic: a bound on the angle, and not a vacuous one."""
    mpmath = pytest.importorskip("mpmath")
    H, _, _ = sweep_instance("weights", 0)
    H = H @ _feature_map(np.random.default_rng(1), H.shape[1], condition)
    basis = context_basis(H)
    with mpmath.workdps(50):
        Q, _ = mpmath.qr(mpmath.matrix(H.tolist()))
        exact = np.array(Q[:, :basis.rank].tolist(), dtype=np.float64)
    sine = np.linalg.norm(exact - basis.Q @ (basis.Q.T @ exact), 2)
    assert sine <= basis.span_error <= 1e4 * max(sine, np.finfo(float).eps)


@pytest.mark.parametrize("offset", [1e3, 1e4, 1e5])
def test_decoders_map_back_to_offset_features_of_independent_contexts(offset):
    """``d > m``: ``W`` with ``W H^T = M`` through the Gram matrix of features
    with an offset next to an intercept (condition number squared) is refined
    to the round-off of its logits (without refinement: 2e-7 at 1e4)."""
    rng = np.random.default_rng(0)
    H = np.c_[np.ones(8), rng.normal(size=(8, 11))]
    H[:, 1] += offset
    basis = context_basis(H)
    assert basis.status.value == "independent contexts"
    M = rng.normal(size=(5, 8))
    W = basis.to_features(M)
    assert np.abs(W @ H.T - M).max() <= 1e-9
    # W lies in the row space of H (the minimum-norm solution).
    np.testing.assert_allclose(W, np.linalg.lstsq(H, M.T, rcond=None)[0].T,
                               atol=1e-6 * np.abs(W).max())


def test_breast_cancer_with_an_intercept_is_certified():
    """Raw features up to ~4,000 next to an intercept: the limit is certified,
    and U~ is the minimum-norm solution of these features' metric, as a QP
    over column-scaled variables (Clarabel) finds it independently."""
    X, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = check_ntp_separability(X, y, fit_intercept=True)
    limit = report.limit
    assert limit.certified and limit.is_separable, limit.status
    H = np.asarray(limit.data.embeddings)
    scales = np.sqrt(np.mean(H ** 2, axis=0))
    sign = np.where(limit.data.probabilities.toarray()[:, 0] > 0, 1.0, -1.0)
    W = cp.Variable((2, H.shape[1]))
    problem = cp.Problem(cp.Minimize(cp.sum_squares(W @ np.diag(1.0 / scales))),
                         [cp.multiply(sign, (H / scales) @ (W[0] - W[1])) >= 1])
    problem.solve(solver=cp.CLARABEL)
    U = W.value / scales
    np.testing.assert_allclose(limit.max_margin_solution, U, atol=1e-4 * np.abs(U).max())
    assert report.margin == pytest.approx(1.0 / np.linalg.norm(U), rel=1e-6)


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e4])
def test_log_odds_solution_with_an_offset_feature(offset):
    """W* of contexts with an intercept and a shifted feature: the minimum-norm
    solution of the explicit Kronecker system (SVD least squares, in the same
    coordinates), with every in-support logit difference equal to its log-odds."""
    rng = np.random.default_rng(4)
    m, d, V = 8, 12, 5
    H = np.c_[np.ones(m), rng.normal(size=(m, d - 1))]
    H[:, 1] += offset
    P = _soft(rng, m, V, 3)
    W = log_odds_solution(H, P)
    np.testing.assert_allclose(W, kronecker_log_odds_solution(H, P),
                               atol=1e-8 * np.abs(W).max())
    logits = H @ W.T
    for j in range(m):
        support = np.flatnonzero(P[j])
        np.testing.assert_allclose(logits[j, support] - logits[j, support[0]],
                                   np.log(P[j, support] / P[j, support[0]]), atol=1e-8)


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_ntp_svm_of_an_offset_feature_is_the_reference_qp(offset):
    """The NTP-SVM of the shifted features (their own metric) against the
    reference QP of that metric, solved over the unshifted contexts."""
    X, shifted, y, _ = intercept_data(2, offset)  # a separable draw
    H, P, _ = _dense(X, y)
    T = ~(P > 0)
    U = explicit_max_margin(H, P, P > 0, T, shear(X.shape[1], offset))
    np.testing.assert_allclose(ntp_svm(shifted, y), U, atol=1e-6 * np.abs(U).max())


def test_default_fit_on_raw_breast_cancer_is_quiet_and_consistent():
    """No solver's warning reaches the user, and what the estimator reports
    agrees with its limit: separable, with a certified max-margin direction."""
    X, y = load_breast_cancer(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = NTPLinearClassifier(fit_intercept=True).fit(X, y)
    assert clf.margin_direction_ is not None
    assert np.linalg.norm(np.c_[clf.margin_direction_]) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", SWEEP)
def test_status_never_contradicts_the_separable_pairs(kind):
    H, y, pi = sweep_instance(kind, 0)
    limit = implicit_bias_limit(H, y, pi)
    if "separable pairs T" not in limit.status:
        assert "cannot be decided" not in limit.status
        assert limit.is_separable == bool(np.array_equal(limit.separable_pairs,
                                                         ~limit.data.support_mask))
