"""Solvers, penalty and tracker against independent formulas and loops."""

import numpy as np
import pytest
from _reference import cross_entropy, random_ntp_problem
from scipy.optimize import approx_fprime
from scipy.special import softmax

from sklearn_ntp._data._ntp_data import aggregate_contexts
from sklearn_ntp._loss._cross_entropy import NTPLoss
from sklearn_ntp._loss._penalty import L2Penalty
from sklearn_ntp._solvers._descent import SOLVERS, Objective, SolverOptions
from sklearn_ntp._solvers._tracking import HistoryTracker


@pytest.fixture
def problem():
    rng = np.random.default_rng(11)
    H, P = random_ntp_problem(rng, 7, 5, 9, 2)
    pi = rng.dirichlet(np.ones(7))
    return H, P, pi


def make_objective(problem, alpha, dtype=np.float64):
    H, P, pi = problem
    data = aggregate_contexts(H.astype(dtype), P, pi)
    return Objective(NTPLoss(data), L2Penalty(alpha))


def reference_grad(W, H, P, pi, alpha):
    return ((softmax(H @ W.T, axis=1) - P) * pi[:, None]).T @ H + alpha * W


def run(name, objective, W0, **options):
    tracker = HistoryTracker(objective.datafit.entropy, every=1)
    result = SOLVERS[name](objective, W0, SolverOptions(**options), tracker)
    return result, tracker


def test_the_registry_holds_the_six_solvers():
    assert set(SOLVERS) == {"gd", "ngd", "adam", "lbfgs", "sgd", "accelerated"}


def test_l2_penalty_value_and_gradient():
    W = np.random.default_rng(0).standard_normal((3, 4))
    penalty = L2Penalty(0.3)
    assert penalty.value(W) == pytest.approx(0.15 * np.sum(W ** 2))
    np.testing.assert_allclose(
        penalty.grad(W), approx_fprime(W.ravel(), lambda w: 0.15 * w @ w).reshape(3, 4),
        rtol=1e-6)
    assert L2Penalty(0.0).value(W) == 0.0
    np.testing.assert_array_equal(L2Penalty(0.0).grad(W), 0.0)
    with pytest.raises(ValueError, match="alpha"):
        L2Penalty(-1.0)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_objective_value_and_gradient(problem, alpha):
    H, P, pi = problem
    W = np.random.default_rng(1).standard_normal((5, 9))
    value, ce, grad = make_objective(problem, alpha)(W)
    assert ce == pytest.approx(cross_entropy(W, H, P, pi), rel=1e-12)
    assert value == pytest.approx(ce + alpha / 2 * np.sum(W ** 2), rel=1e-12)
    np.testing.assert_allclose(grad, reference_grad(W, H, P, pi, alpha), atol=1e-12)


def numpy_descent(problem, step, n_iter):
    H, P, pi = problem
    W = np.zeros((5, 9))
    for t in range(1, n_iter + 1):
        W = step(W, reference_grad(W, H, P, pi, 0.0), t)
    return W


def ngd_reference(eta):
    return lambda W, g, t: W - eta * g / np.sqrt(np.sum(g * g))


def adam_reference(eta, b1, b2, eps):
    state = {"m": 0.0, "v": 0.0}

    def step(W, g, t):
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g ** 2
        m_hat, v_hat = state["m"] / (1 - b1 ** t), state["v"] / (1 - b2 ** t)
        return W - eta * m_hat / (np.sqrt(v_hat) + eps)

    return step


# Constant-step NGD ends up bouncing around W* on F, which amplifies rounding
# differences between two implementations: compare it over its first 100 steps.
@pytest.mark.parametrize("name, n_iter, options, reference", [
    ("gd", 300, {"learning_rate": 0.7}, lambda W, g, t: W - 0.7 * g),
    ("ngd", 100, {"learning_rate": 0.05}, ngd_reference(0.05)),
    ("adam", 300, {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-7},
     adam_reference(0.02, 0.8, 0.99, 1e-7)),
])
def test_first_order_solvers_match_numpy_loops(problem, name, n_iter, options, reference):
    H, P, pi = problem
    result, tracker = run(name, make_objective(problem, 0.0), np.zeros((5, 9)),
                          max_iter=n_iter, tol=0.0, **options)
    W = numpy_descent(problem, reference, n_iter)
    assert result.n_iter == n_iter and result.stop_reason == "max_iter"
    np.testing.assert_allclose(result.coef, W, atol=1e-10)
    assert tracker.loss_curve.shape == (n_iter + 1,)
    assert tracker.loss_curve[-1] == pytest.approx(cross_entropy(W, H, P, pi), rel=1e-10)


def test_lbfgs_stops_on_the_gradient_norm(problem):
    H, P, pi = problem
    result, tracker = run("lbfgs", make_objective(problem, 0.05), np.zeros((5, 9)),
                          max_iter=500, tol=1e-6)
    assert result.converged and result.stop_reason == "tol" and result.n_iter > 0
    assert np.linalg.norm(reference_grad(result.coef, H, P, pi, 0.05)) <= 1e-6
    assert tracker.loss_curve.shape == (result.n_iter + 1,)
    assert np.all(np.diff(tracker.loss_curve) <= 0)


@pytest.mark.parametrize("name", ["gd", "ngd", "adam", "lbfgs"])
def test_excess_loss_test_without_penalty(problem, name):
    H, P, pi = problem
    objective = make_objective(problem, 0.0)
    result, tracker = run(name, objective, np.zeros((5, 9)), max_iter=20_000, tol=0.05,
                          learning_rate=0.1)
    excess = tracker.loss_curve - objective.datafit.entropy
    assert result.converged and result.stop_reason == "tol"
    assert excess[-1] <= 0.05 < excess[-2]


@pytest.mark.parametrize("name", ["gd", "ngd", "adam", "lbfgs"])
def test_zero_iterations_and_float32_keep_the_initial_matrix(problem, name):
    W0 = np.random.default_rng(2).standard_normal((5, 9)).astype(np.float32)
    objective = make_objective(problem, 0.1, dtype=np.float32)
    result, tracker = run(name, objective, W0, max_iter=0, tol=0.0)
    np.testing.assert_array_equal(result.coef, W0)
    assert result.n_iter == 0 and not result.converged
    assert tracker.history["iteration"].tolist() == [0]
    result, _ = run(name, objective, W0, max_iter=5, tol=0.0)
    assert result.coef.dtype == np.float32


def test_divergence_returns_the_last_acceptable_iterate(problem):
    H, P, pi = problem
    objective = make_objective(problem, 1.0)
    # A step well above 2 / L: the objective grows within a few iterations.
    result, tracker = run("gd", objective, np.zeros((5, 9)), max_iter=1000, tol=0.0,
                          learning_rate=1.4)
    assert result.stop_reason == "diverged" and not result.converged
    assert 0 <= result.n_iter < 1000
    # Independent replay: the returned matrix is W_{n_iter}, and the next
    # step increases the objective (gradient descent's divergence rule).
    W = np.zeros((5, 9))
    for _ in range(result.n_iter):
        W = W - 1.4 * reference_grad(W, H, P, pi, 1.0)
    np.testing.assert_allclose(result.coef, W, rtol=1e-10)
    W_next = W - 1.4 * reference_grad(W, H, P, pi, 1.0)
    def f(W):
        return cross_entropy(W, H, P, pi) + 0.5 * np.sum(W ** 2)
    assert f(W_next) > f(W) * (1 + 1e-6)
    assert tracker.loss_curve.shape == (result.n_iter + 1,)


def test_non_finite_initial_objective_raises(problem):
    with pytest.raises(ValueError, match="non-finite"):
        run("gd", make_objective(problem, 0.0), np.full((5, 9), np.inf), max_iter=3, tol=0)


def test_tracker_snapshots_every_k_and_the_last():
    tracker = HistoryTracker(entropy=0.25, every=3)
    for k in range(8):
        tracker.record(k, np.full((2, 2), float(k)), 10.0 - k, 5.0 - k)
    tracker.finish()
    h = tracker.history
    assert h["iteration"].tolist() == [0, 3, 6, 7]
    np.testing.assert_allclose(h["loss"], [5.0, 2.0, -1.0, -2.0])
    np.testing.assert_allclose(h["norm"], [0.0, 6.0, 12.0, 14.0])
    np.testing.assert_allclose(tracker.loss_curve, 10.0 - np.arange(8))
    empty = HistoryTracker(entropy=0.0)
    assert all(v.shape == (0,) for v in empty.history.values())
