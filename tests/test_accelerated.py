"""The accelerated solver against an independent geometry (explicit system, cvxpy)."""

import numpy as np
import pytest
from _reference import (
    cross_entropy,
    kronecker_log_odds_solution,
    kronecker_projection,
    naive_ntp_svm,
)

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp._data._ntp_data import aggregate_contexts
from sklearn_ntp._solvers._accelerated import SupportSplitLoss
from sklearn_ntp.datasets import make_ntp_data


def distinct(seed):
    data = aggregate_contexts(*make_ntp_data(random_state=seed))
    return np.asarray(data.embeddings), data.probabilities.toarray(), np.asarray(data.weights)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accelerated_reaches_the_limit_in_1000_iterations(seed):
    H, P, pi = distinct(seed)
    W_star = kronecker_log_odds_solution(H, P)
    W_mm = naive_ntp_svm(H, P)[0]
    clf = NTPLinearClassifier(solver="accelerated", max_iter=1000,
                              compute_implicit_bias=False).fit(H, P, sample_weight=pi)
    D = clf.coef_ - W_star
    cosine = np.vdot(D, W_mm) / (np.linalg.norm(D) * np.linalg.norm(W_mm))
    assert cosine >= 0.999
    assert np.linalg.norm(kronecker_projection(H, P, clf.coef_) - W_star) <= 1e-3
    # The recorded loss is the cross-entropy of the iterate, computed directly.
    assert clf.loss_curve_[-1] == pytest.approx(cross_entropy(clf.coef_, H, P, pi), abs=1e-12)


def _refuse(*args, **kwargs):
    raise AssertionError("the accelerated solver must not use the exact geometry")


def test_accelerated_never_calls_the_geometry(monkeypatch):
    import sklearn_ntp._geometry._generators as generators
    import sklearn_ntp._geometry._infeasibility as farkas
    import sklearn_ntp._geometry._limit as limit
    import sklearn_ntp._geometry._separable_pairs as pairs
    import sklearn_ntp._geometry._subspace as subspace
    import sklearn_ntp._geometry._svm as svm
    import sklearn_ntp._loss._restricted as restricted
    import sklearn_ntp._solvers._tracking as tracking
    for module, name in [(svm, "ntp_svm"), (limit, "implicit_bias_limit"),
                         (limit, "ntp_svm"), (tracking, "implicit_bias_limit"),
                         (tracking, "DataSubspace"), (subspace, "log_odds_solution"),
                         (subspace, "data_subspace"), (subspace, "DataSubspace"),
                         (limit, "DataSubspace"), (pairs, "separable_pairs"),
                         (limit, "separable_pairs"), (farkas, "separability_certificate"),
                         (restricted, "RestrictedLoss"), (limit, "RestrictedLoss"),
                         (generators, "GramSolver"), (generators, "PairGenerators")]:
        monkeypatch.setattr(module, name, _refuse, raising=False)
    X, Y, w = make_ntp_data(random_state=3, n_contexts=20, n_features=25)
    clf = NTPLinearClassifier(solver="accelerated", max_iter=50,
                              compute_implicit_bias=False).fit(X, Y, sample_weight=w)
    assert np.all(np.isfinite(clf.coef_)) and clf.n_iter_ == 50


def test_split_loss_adds_up_to_the_cross_entropy_and_keeps_tiny_gradients():
    H, P, pi = distinct(0)
    data = aggregate_contexts(H, P, pi)
    loss = SupportSplitLoss(data)
    W = np.random.default_rng(0).standard_normal((P.shape[1], H.shape[1])) / 8
    point = loss(loss.c * W)
    assert point.ce_s + np.exp(point.log_o) == pytest.approx(cross_entropy(W, H, P, pi),
                                                             rel=1e-12)
    # Far out along W^mm the off-support mass is ~1e-200: log O stays exact.
    W_mm = naive_ntp_svm(H, P)[0]
    far = loss(loss.c * (W + 200 * W_mm))
    logits = H @ (W + 200 * W_mm).T
    S = P > 0
    lse_s = np.log(np.sum(np.where(S, np.exp(logits - logits.max(1, keepdims=True)), 0),
                          axis=1)) + logits.max(1)
    log_r = np.log(np.sum(np.where(S, 0, np.exp(logits - lse_s[:, None] + 600)), axis=1)) - 600
    assert far.log_o == pytest.approx(np.log(np.sum(pi * np.exp(log_r + 600))) - 600, rel=1e-9)
    assert np.linalg.norm(far.grad_log_o) > 1e-3


def test_accelerated_refuses_a_penalty():
    X, Y, w = make_ntp_data(random_state=0, n_contexts=10, n_features=12)
    with pytest.raises(ValueError, match="alpha"):
        NTPLinearClassifier(solver="accelerated", alpha=1e-3).fit(X, Y, sample_weight=w)


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_accelerated_is_scale_invariant(scale):
    X, Y, w = make_ntp_data(random_state=1, n_contexts=15, n_features=20)
    params = dict(solver="accelerated", max_iter=100, compute_implicit_bias=False)
    base = NTPLinearClassifier(**params).fit(X, Y, sample_weight=w)
    scaled = NTPLinearClassifier(**params).fit(X * scale, Y, sample_weight=w)
    np.testing.assert_allclose(scaled.coef_ * scale, base.coef_, rtol=1e-6, atol=1e-8)


def test_accelerated_attains_the_minimum_when_every_support_is_full():
    # Full supports and d >= m: the minimum exists and reproduces p exactly.
    rng = np.random.default_rng(2)
    H, P = rng.standard_normal((6, 8)), rng.dirichlet(np.ones(4), size=6)
    clf = NTPLinearClassifier(solver="accelerated", tol=1e-10, max_iter=200,
                              compute_implicit_bias=False).fit(H, P)
    assert clf.converged_ and clf.stop_reason_ == "tol"
    np.testing.assert_allclose(clf.predict_proba(H), P, atol=1e-8)


def test_accelerated_separates_one_hot_data():
    rng = np.random.default_rng(4)
    H, y = rng.standard_normal((8, 12)), np.arange(8) % 3
    clf = NTPLinearClassifier(solver="accelerated", max_iter=100,
                              compute_implicit_bias=False).fit(H, y)
    assert np.all(clf.predict(H) == y) and clf.loss_curve_[-1] < 1e-10
