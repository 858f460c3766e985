"""fit_intercept: the decoder [W, b] of the contexts augmented by a constant feature.

References: LogisticRegression without intercept on the explicitly augmented
rows [x, 1] (same penalty on b), a cvxpy NTP-SVM on the augmented contexts,
and a max-margin solution worked out by hand.
"""

import numpy as np
import pytest
from _reference import naive_ntp_svm
from scipy.special import softmax
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sklearn_ntp import NTPLinearClassifier, NTPSeparabilityChecker
from sklearn_ntp.implicit_bias import check_ntp_separability

# Contexts h = 1 and h = 2 (d = 1) followed by tokens 0 and 1: not NTP-separable
# without intercept (both logit gaps would need opposite signs at h > 0). With
# [h, 1] and a = w0 - w1, c = b0 - b1 the constraints a + c >= 1, -(2a + c) >= 1
# are both active at the minimum-norm point a = -2, c = 3; the rows of W^mm are
# +-(a, c) / 2 (a symmetric split minimizes the norm): ||W^mm||^2 = 6.5.
X_LINE, Y_LINE = np.array([[1.0], [2.0]]), np.array([0, 1])
W_MM_LINE = np.array([[-1.0, 1.5], [1.0, -1.5]])


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    return StandardScaler().fit_transform(X), y, w


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_ridge_intercept_matches_logistic_regression_on_augmented_rows(iris, solver):
    X, y, w = iris
    alpha = 0.1
    clf = NTPLinearClassifier(solver=solver, alpha=alpha, fit_intercept=True, tol=1e-7,
                              max_iter=20000, compute_implicit_bias=False)
    clf.fit(X, y, sample_weight=w)
    # C sum_i s_i loss_i + ||[W, b]||^2 / 2 with s summing to one and C = 1 / alpha.
    ref = LogisticRegression(C=1 / alpha, fit_intercept=False, tol=1e-12, max_iter=10000)
    ref.fit(np.c_[X, np.ones(len(X))], y, sample_weight=w / w.sum())
    np.testing.assert_allclose(clf.coef_, ref.coef_[:, :-1], atol=1e-5)
    np.testing.assert_allclose(clf.intercept_, ref.coef_[:, -1], atol=1e-5)
    assert clf.coef_.shape == (3, 4) and clf.intercept_.shape == (3,)
    np.testing.assert_allclose(clf.predict_proba(X),
                               softmax(X @ ref.coef_[:, :-1].T + ref.coef_[:, -1], axis=1),
                               atol=1e-5)


def test_intercept_makes_the_line_separable_with_the_hand_computed_direction():
    assert not check_ntp_separability(X_LINE, Y_LINE).is_separable
    report = check_ntp_separability(X_LINE, Y_LINE, fit_intercept=True)
    assert report.is_separable and report.n_features == 2
    np.testing.assert_allclose(report.max_margin_solution, W_MM_LINE, atol=1e-7)
    cvx, *_ = naive_ntp_svm(np.c_[X_LINE, np.ones(2)], np.eye(2))
    np.testing.assert_allclose(report.max_margin_solution, cvx, atol=1e-5)
    checker = NTPSeparabilityChecker(fit_intercept=True).fit(X_LINE, Y_LINE)
    assert checker.is_separable_ and checker.margin_ == pytest.approx(6.5 ** -0.5)


def test_implicit_bias_attributes_describe_the_augmented_decoder():
    clf = NTPLinearClassifier(fit_intercept=True, max_iter=3000).fit(X_LINE, Y_LINE)
    unit = W_MM_LINE / np.linalg.norm(W_MM_LINE)
    np.testing.assert_allclose(clf.margin_direction_, unit, atol=1e-7)
    assert clf.finite_component_.shape == (2, 2) and clf.coef_.shape == (2, 1)
    full = np.c_[clf.coef_, clf.intercept_]
    cosine = np.vdot(full, unit) / np.linalg.norm(full)
    assert cosine == pytest.approx(clf.history_["alignment"][-1]) and cosine > 0.99
    assert np.all(clf.predict(X_LINE) == Y_LINE)


def test_without_intercept_it_is_zero_and_logits_ignore_it(iris):
    X, y, _ = iris
    clf = NTPLinearClassifier(max_iter=20, compute_implicit_bias=False).fit(X, y)
    assert np.array_equal(clf.intercept_, np.zeros(3))
    np.testing.assert_allclose(clf.predict_log_proba(X),
                               np.log(softmax(X @ clf.coef_.T, axis=1)), atol=1e-12)


def test_init_and_warm_start_carry_the_intercept(iris):
    X, y, _ = iris
    params = {"fit_intercept": True, "compute_implicit_bias": False, "max_iter": 50}
    first = NTPLinearClassifier(**params).fit(X, y)
    # Given init of shape (n_tokens, n_features): the intercepts start at zero.
    same = NTPLinearClassifier(init=np.zeros((3, 4)), **params).fit(X, y)
    np.testing.assert_array_equal(same.intercept_, first.intercept_)
    two_steps = NTPLinearClassifier(warm_start=True, **params).fit(X, y).fit(X, y)
    once = NTPLinearClassifier(**{**params, "max_iter": 100}).fit(X, y)
    np.testing.assert_allclose(two_steps.intercept_, once.intercept_, atol=1e-12)
    with pytest.raises(ValueError, match="intercept"):
        NTPLinearClassifier(init=np.zeros((3, 2)), **params).fit(X, y)
