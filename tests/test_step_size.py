"""learning_rate="auto": the smoothness constant against dense numpy computations.

References: the weighted second-moment matrix of the raw rows (no aggregation)
and its numpy eigenvalue; the Hessian of the cross-entropy by central finite
differences of a plain-numpy gradient.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp._solvers import _step_size


def raw_problem(seed=0, n=60, d=5, V=4):
    """Rows with repeats and scales far from one, labels and weights."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n // 2, d)) * rng.uniform(0.1, 30, size=d)
    X = np.vstack([X, X[: n // 2]])  # every context twice
    return X, rng.integers(V, size=n), rng.uniform(0.5, 2.0, size=n)


def reference_L(X, w, alpha=0.0):
    """lambda_max(sum_i w_i x_i x_i^T / sum w) / 2 + alpha over the raw rows."""
    second_moment = (X * (w / w.sum())[:, None]).T @ X
    return np.linalg.eigvalsh(second_moment)[-1] / 2 + alpha


def reference_scale(X, w, alpha=0.0):
    """Column scales sqrt(mean_w x^2 + 2 alpha): those within a factor 2 of the median
    keep 1, the others get the power of two nearest their ratio to it."""
    log_scale = np.log2(np.sqrt((w / w.sum()) @ X ** 2 + 2 * alpha))
    offset = log_scale - np.median(log_scale)
    return 2.0 ** np.where(np.abs(offset) > 1, np.rint(offset), 0)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_auto_steps_follow_the_smoothness_constant_of_the_rescaled_columns(fit_intercept,
                                                                           alpha):
    X, y, w = raw_problem()
    A = np.c_[X, np.ones(len(X))] if fit_intercept else X
    scale = reference_scale(A, w, alpha)
    assert np.any(scale != 1)  # columns from 0.1 to 30: some are rescaled
    # The ridge penalty of W = W' / scale is alpha / scale^2 per column of W'.
    L = reference_L(A / scale, w, alpha / np.min(scale) ** 2)
    expected = {"gd": 1 / L, "ngd": 0.1 / np.sqrt(L), "adam": 0.02 / np.sqrt(L)}
    for solver, step in expected.items():
        clf = NTPLinearClassifier(solver=solver, alpha=alpha, fit_intercept=fit_intercept,
                                  max_iter=2, compute_implicit_bias=False)
        clf.fit(X, y, sample_weight=w)
        np.testing.assert_array_equal(clf.feature_scale_, scale)
        assert clf.learning_rate_ == pytest.approx(step, rel=1e-10)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_auto_gd_is_gradient_descent_on_the_rescaled_columns(fit_intercept):
    """The fitted model is plain GD on X / feature_scale_ at 1 / L, mapped back."""
    X, y, w = raw_problem(seed=5)
    clf = NTPLinearClassifier(fit_intercept=fit_intercept, max_iter=40, tol=0.0,
                              compute_implicit_bias=False).fit(X, y, sample_weight=w)
    A = np.c_[X, np.ones(len(X))] if fit_intercept else X
    scale = reference_scale(A, w)
    B, Y, pi = A / scale, np.eye(4)[y], w / w.sum()
    W = np.zeros((4, A.shape[1]))
    for _ in range(40):
        W -= numpy_gradient(W, B, Y, pi) / reference_L(B, w)
    fitted = np.c_[clf.coef_, clf.intercept_] if fit_intercept else clf.coef_
    np.testing.assert_allclose(fitted, W / scale, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("learning_rate", [1e-3, 1e-5])
def test_a_given_step_is_plain_gd_on_the_given_columns(learning_rate):
    X, y, w = raw_problem(seed=6)
    clf = NTPLinearClassifier(learning_rate=learning_rate, max_iter=20, tol=0.0,
                              compute_implicit_bias=False).fit(X, y, sample_weight=w)
    W = np.zeros((4, X.shape[1]))
    for _ in range(20):
        W -= learning_rate * numpy_gradient(W, X, np.eye(4)[y], w / w.sum())
    np.testing.assert_array_equal(clf.feature_scale_, 1.0)
    assert clf.learning_rate_ == learning_rate
    np.testing.assert_allclose(clf.coef_, W, rtol=1e-10, atol=1e-14)


def numpy_gradient(W, X, Y, pi):
    return ((softmax(X @ W.T, axis=1) - Y) * pi[:, None]).T @ X


def test_L_bounds_the_hessian_of_the_cross_entropy():
    rng = np.random.default_rng(1)
    X, Y, pi = rng.normal(size=(8, 3)), rng.dirichlet(np.ones(4), size=8), rng.dirichlet(
        np.ones(8))
    L = _step_size.smoothness_constant(X, pi)
    eps, shape = 1e-6, (4, 3)
    for scale in (0.0, 0.3, 3.0):
        W = scale * rng.normal(size=shape)
        columns = []
        for k in range(W.size):
            E = np.zeros(W.size)
            E[k] = eps
            E = E.reshape(shape)
            columns.append(((numpy_gradient(W + E, X, Y, pi)
                             - numpy_gradient(W - E, X, Y, pi)) / (2 * eps)).ravel())
        hessian = np.array(columns)
        top = np.linalg.eigvalsh((hessian + hessian.T) / 2)[-1]
        assert top <= L * (1 + 1e-6)
        if scale == 0.0:  # uniform softmax: the bound is within a factor V / 2 of it
            assert top >= L / 2


def test_lanczos_path_agrees_with_the_exact_eigenvalue(monkeypatch):
    rng = np.random.default_rng(2)
    H, pi = rng.normal(size=(40, 30)), rng.dirichlet(np.ones(40))
    exact = _step_size.smoothness_constant(H, pi)
    monkeypatch.setattr(_step_size, "EXACT_MAX_ORDER", 0)
    assert _step_size.smoothness_constant(H, pi) == pytest.approx(exact, rel=1e-8)
    assert exact == pytest.approx(reference_L(H, pi), rel=1e-12)


def test_gd_at_the_auto_step_decreases_the_objective_on_badly_scaled_data():
    X, y, w = raw_problem(seed=3)
    clf = NTPLinearClassifier(max_iter=300, fit_intercept=True,
                              compute_implicit_bias=False).fit(X, y, sample_weight=w)
    assert clf.stop_reason_ != "diverged"
    # Never up, but for the rounding of the objective (the run reaches the minimizer).
    rounding = 4 * np.finfo(float).eps * clf.loss_curve_[:-1]
    assert np.all(np.diff(clf.loss_curve_) <= rounding)
    # Twice the bound is where the descent guarantee ends; far beyond, GD diverges.
    L = reference_L(np.c_[X, np.ones(len(X))], w)
    wild = NTPLinearClassifier(learning_rate=1e3 / L, max_iter=300,
                               fit_intercept=True, compute_implicit_bias=False)
    with pytest.warns(UserWarning, match="diverged"):
        wild.fit(X, y, sample_weight=w)


def test_sparse_X_gives_the_same_step():
    X, y, w = raw_problem(seed=4)
    X[np.abs(X) < 5] = 0.0
    dense = NTPLinearClassifier(max_iter=1, compute_implicit_bias=False).fit(X, y, w)
    sparse = NTPLinearClassifier(max_iter=1, compute_implicit_bias=False).fit(
        sp.csr_matrix(X), y, w)
    assert sparse.learning_rate_ == pytest.approx(dense.learning_rate_, rel=1e-12)


def test_numbers_are_used_as_given_and_lbfgs_has_no_step():
    X, y, _ = raw_problem()
    params = {"max_iter": 1, "compute_implicit_bias": False}
    assert NTPLinearClassifier(learning_rate=1e-5, **params).fit(X, y).learning_rate_ == 1e-5
    lbfgs = NTPLinearClassifier(solver="lbfgs", alpha=1.0, compute_implicit_bias=False)
    assert lbfgs.fit(X, y).learning_rate_ is None
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        NTPLinearClassifier(learning_rate="fast").fit(X, y)


def test_all_zero_embeddings_get_a_finite_step():
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    clf = NTPLinearClassifier(max_iter=3, compute_implicit_bias=False).fit(X, y)
    assert clf.learning_rate_ == 1.0 and np.all(clf.coef_ == 0)
