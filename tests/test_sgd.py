"""SGD over contexts and tokens; the solvers' own stopping and divergence rules."""

import warnings

import numpy as np
import pytest
from _reference import cross_entropy, random_ntp_problem
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning

import sklearn_ntp._classifier as classifier
from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp._data._ntp_data import aggregate_contexts
from sklearn_ntp._loss._cross_entropy import NTPLoss
from sklearn_ntp._loss._penalty import L2Penalty
from sklearn_ntp._solvers._api import SolverOptions, SolverResult
from sklearn_ntp._solvers._descent import DIVERGENCE_FACTOR
from sklearn_ntp._solvers._sgd import SGDStep
from sklearn_ntp.datasets import make_ntp_data


@pytest.fixture
def problem():
    rng = np.random.default_rng(5)
    H, P = random_ntp_problem(rng, 12, 6, 15, 3)
    return H, P, rng.dirichlet(np.ones(12))


def fit(problem, **params):
    H, P, pi = problem
    params = {"max_iter": 200, "tol": 0.0, "compute_implicit_bias": False, **params}
    return NTPLinearClassifier(**params).fit(H, P, sample_weight=pi)


@pytest.mark.parametrize("batch_size", [12, 100])
def test_full_batch_context_sgd_is_exactly_gd(problem, batch_size):
    gd = fit(problem, solver="gd", learning_rate=0.7)
    sgd = fit(problem, solver="sgd", learning_rate=0.7, batch_size=batch_size)
    np.testing.assert_array_equal(sgd.coef_, gd.coef_)
    np.testing.assert_array_equal(sgd.loss_curve_, gd.loss_curve_)


@pytest.mark.parametrize("sampling", ["contexts", "tokens"])
def test_sgd_is_repeatable_under_a_seed(problem, sampling):
    params = {"solver": "sgd", "batch_size": 4, "sampling": sampling, "learning_rate": 0.5}
    a = fit(problem, random_state=3, **params)
    b = fit(problem, random_state=3, **params)
    c = fit(problem, random_state=4, **params)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


@pytest.mark.parametrize("sampling", ["contexts", "tokens"])
def test_sampled_gradients_are_unbiased(problem, sampling):
    H, P, pi = problem
    data = aggregate_contexts(H, P, pi)
    W = np.random.default_rng(0).standard_normal((6, 15)) / 4
    options = SolverOptions(max_iter=1, tol=0.0, learning_rate=1.0, batch_size=3,
                            sampling=sampling, random_state=0)
    step = SGDStep(NTPLoss(data), options, W)
    mean = np.mean([W - step(W, None, 1) for _ in range(5000)], axis=0)
    full = ((softmax(H @ W.T, axis=1) - P) * pi[:, None]).T @ H  # the definition
    np.testing.assert_allclose(mean, full, atol=0.06 * np.abs(full).max())


def test_decaying_steps_follow_inverse_sqrt(problem):
    H, P, pi = problem
    gd_like = fit(problem, solver="sgd", learning_rate=0.8, step_schedule="inverse_sqrt",
                  max_iter=3)
    W = np.zeros((6, 15))
    for k in range(1, 4):
        W = W - 0.8 / np.sqrt(k) * ((softmax(H @ W.T, axis=1) - P) * pi[:, None]).T @ H
    np.testing.assert_allclose(gd_like.coef_, W, rtol=1e-12, atol=1e-14)


def fit_scaled(solver, seed, scale):
    """A constant step of 0.1 on embeddings ``scale`` times the paper's, no ConvergenceWarning."""
    X, Y, w = make_ntp_data(random_state=seed)
    clf = NTPLinearClassifier(solver=solver, learning_rate=0.1, max_iter=300, tol=0.0,
                              compute_implicit_bias=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(scale * X, Y, sample_weight=w)
    assert clf.stop_reason_ == "max_iter" and clf.n_iter_ == 300
    data = aggregate_contexts(scale * X, Y, w)
    ce = cross_entropy(clf.coef_, np.asarray(data.embeddings), data.probabilities.toarray(),
                       np.asarray(data.weights))
    assert clf.loss_curve_[-1] == pytest.approx(ce, rel=1e-12)
    return clf.loss_curve_, np.log(Y.shape[1])  # f(W_0) = CE(0) = log V


@pytest.mark.parametrize("scale", [7, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adam_survives_an_initial_overshoot(seed, scale):
    # Adam's update does not depend on the scale of the gradient: on embeddings
    # 7-10 times the paper's, learning_rate=0.1 is 50-70 times the auto step.
    curve, f0 = fit_scaled("adam", seed, scale)
    # The first steps overshoot beyond the excursion limit: the rule is put to work.
    assert curve.max() > DIVERGENCE_FACTOR * f0
    # At this step Adam never settles: after about 100 steps its iterates move
    # chaotically (a relative change of 1e-15 in X grows to 1e-2 by step 200),
    # so the loss at a fixed late step depends on the machine's rounding (from
    # 1.6 to 2.2 at step 300). The descent that precedes this phase does not.
    assert curve.min() < f0 - 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ngd_descends_on_scaled_embeddings(seed):
    # A normalized step moves W by exactly 0.1: no overshoot at this scale, and
    # no chaos within 300 steps (a relative change of 1e-13 in X stays below
    # 1e-12 in coef_), so the last loss is a property of the data.
    curve, f0 = fit_scaled("ngd", seed, 10)
    assert curve[1:].max() < f0 and curve[-1] < f0 - 0.5


def ridge_gradient(W, H, P, pi, alpha):
    """Gradient of sum_j pi_j CE_j(W) + alpha ||W||^2 / 2, from the definition."""
    return ((softmax(H @ W.T, axis=1) - P) * pi[:, None]).T @ H + alpha * W


@pytest.mark.parametrize("tol, max_iter, reasons", [
    (1e-6, 10_000, {"tol"}),
    (1e-10, 5, {"max_iter"}),
    # Below what float64 resolves on this objective (scipy stalls near 1e-8).
    (1e-10, 10_000, {"stalled", "line search failed"}),
])
def test_lbfgs_claims_convergence_exactly_when_the_gradient_meets_tol(tol, max_iter, reasons):
    rng = np.random.default_rng(1)
    H, P = random_ntp_problem(rng, 30, 6, 8, 3)
    pi, alpha = rng.dirichlet(np.ones(30)), 1e-2
    clf = NTPLinearClassifier(solver="lbfgs", alpha=alpha, tol=tol, max_iter=max_iter,
                              compute_implicit_bias=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(H, P, sample_weight=pi)
    gradient_norm = np.linalg.norm(ridge_gradient(clf.coef_, H, P, pi, alpha))
    assert clf.stop_reason_ in reasons
    assert clf.converged_ == (gradient_norm <= tol) == (reasons == {"tol"})
    assert len(record) == (not clf.converged_)
    # The ridge objective is alpha-strongly convex: the distance to its minimizer
    # (scipy's BFGS on the explicit objective) is at most ||gradient|| / alpha.
    shape = clf.coef_.shape

    def objective(x):
        W = x.reshape(shape)
        Z = H @ W.T
        ce = pi @ (logsumexp(Z, axis=1) - np.sum(P * Z, axis=1))
        return ce + alpha / 2 * x @ x, ridge_gradient(W, H, P, pi, alpha).ravel()

    reference = minimize(objective, np.zeros(clf.coef_.size), jac=True, method="BFGS",
                         options={"gtol": 1e-12}).x.reshape(shape)
    bound = (gradient_norm + np.linalg.norm(ridge_gradient(reference, H, P, pi, alpha)))
    assert np.linalg.norm(clf.coef_ - reference) <= bound / alpha


def test_huge_embeddings_get_a_meaningful_reason():
    X, Y, w = make_ntp_data(random_state=0, n_contexts=10, n_features=12)
    # A given step (learning_rate="auto" would scale it to the data).
    clf = NTPLinearClassifier(compute_implicit_bias=False, max_iter=50, learning_rate=0.5)
    with pytest.warns(ConvergenceWarning) as record:
        clf.fit(X * 1e150, Y, sample_weight=w)
    message = str(record[0].message)
    assert "learning_rate=0.5 is too large" in message and "rescale X" in message
    assert clf.stop_reason_ == "diverged" and np.all(np.isfinite(clf.coef_))


def test_the_estimator_warns_exactly_when_the_solver_says(problem, monkeypatch):
    def fake(objective, W0, options, tracker):
        tracker.record(0, W0, 1.0, 1.0)
        tracker.finish()
        return SolverResult(W0, 0, False, "max_iter", message)

    monkeypatch.setitem(classifier.SOLVERS, "gd", fake)
    message = "custom reason"
    with pytest.warns(ConvergenceWarning, match="custom reason"):
        fit(problem, alpha=1.0)
    message = ""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit(problem, alpha=1.0)  # not converged, alpha > 0: the solver decided


def reference_sgd_step(H, pi, batch_size):
    """1 / ((1 - 1/b) L + L_max / b) from the definitions, over the distinct contexts."""
    L = np.linalg.eigvalsh((H * pi[:, None]).T @ H)[-1] / 2
    L_max = np.max(np.sum(H ** 2, axis=1)) / 2
    return 1 / ((1 - 1 / batch_size) * L + L_max / batch_size)


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("sampling", ["contexts", "tokens"])
def test_the_auto_sgd_step_is_stable_for_small_batches(batch_size, sampling):
    """On App. A.2-like data, gd's 1 / L (0.477) made batch_size=1 end at loss 3.3 > 2.3."""
    X, Y, w = make_ntp_data(random_state=0)
    step = reference_sgd_step(X, w / w.sum(), batch_size)
    for seed in range(5):
        clf = NTPLinearClassifier(solver="sgd", batch_size=batch_size, sampling=sampling,
                                  random_state=seed, compute_implicit_bias=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            clf.fit(X, Y, sample_weight=w)
        np.testing.assert_array_equal(clf.feature_scale_, 1.0)  # comparable columns
        assert clf.learning_rate_ == pytest.approx(step, rel=1e-10)
        assert clf.loss_curve_[-1] <= clf.loss_curve_[0]


def test_full_batch_sgd_gets_the_gd_step(problem):
    gd = fit(problem, solver="gd", max_iter=2)
    sgd = fit(problem, solver="sgd", batch_size=12, max_iter=2)
    assert sgd.learning_rate_ == gd.learning_rate_


def test_the_penalty_joins_every_sampled_gradient(problem):
    H, P, pi = problem
    data = aggregate_contexts(H, P, pi)
    W = np.random.default_rng(0).standard_normal((6, 15)) / 4
    options = SolverOptions(max_iter=1, tol=0.0, learning_rate=1.0, batch_size=3,
                            random_state=0)
    step = SGDStep(NTPLoss(data), options, W, penalty=L2Penalty(0.7))
    mean = np.mean([W - step(W, None, 1) for _ in range(5000)], axis=0)
    full = ((softmax(H @ W.T, axis=1) - P) * pi[:, None]).T @ H + 0.7 * W
    np.testing.assert_allclose(mean, full, atol=0.06 * np.abs(full).max())


@pytest.mark.parametrize("learning_rate, expected", [
    (3.0, "learning_rate=3 is too large for sgd with batch_size=1"),
    ("auto", "with the step 300 (learning_rate_) that learning_rate='auto' derived"),
])
def test_the_divergence_message_names_the_step_and_where_it_came_from(
        monkeypatch, learning_rate, expected):
    X, Y, w = make_ntp_data(random_state=0)
    monkeypatch.setattr(classifier, "auto_learning_rate", lambda *args: 300.0)
    clf = NTPLinearClassifier(solver="sgd", batch_size=1, random_state=0,
                              learning_rate=learning_rate, compute_implicit_bias=False)
    with pytest.warns(ConvergenceWarning) as record:
        clf.fit(X, Y, sample_weight=w)
    message = str(record[0].message)
    assert clf.stop_reason_ == "diverged" and expected in message
    assert ("learning_rate='auto' to derive" in message) == (learning_rate != "auto")
