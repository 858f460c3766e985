"""Truncated CG and Armijo backtracking against direct computations."""

import numpy as np
import pytest

from sklearn_ntp._linalg._cg import truncated_cg
from sklearn_ntp._linalg._line_search import ARMIJO_C1, armijo


def spd(n, seed, condition=1e3):
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    return (Q * np.geomspace(1.0, condition, n)) @ Q.T


@pytest.mark.parametrize("preconditioned", [False, True])
def test_cg_solves_a_positive_definite_system(preconditioned):
    A = spd(30, 0)
    b = np.random.default_rng(1).standard_normal(30)
    diagonal = np.diag(A)
    # Round-off costs conjugacy in float64: a few more products than n.
    x, n_iter, reason = truncated_cg(lambda v: A @ v, b, rtol=1e-12, max_iter=300,
                                     precondition=(lambda r: r / diagonal)
                                     if preconditioned else None)
    assert reason == "converged"
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-8)


def test_cg_warm_start_and_absolute_tolerance():
    A, b = spd(20, 2), np.ones(20)
    exact = np.linalg.solve(A, b)
    atol = 1e-10 * np.linalg.norm(b)
    result = truncated_cg(lambda v: A @ v, b, exact + 1e-3, atol=atol, max_iter=200)
    assert result.reason == "converged" and result.n_iter > 0
    assert np.linalg.norm(A @ result.x - b) <= atol
    # Started at the solution: no product needed.
    assert truncated_cg(lambda v: A @ v, b, exact, atol=atol).n_iter == 0


def test_cg_stops_at_negative_curvature():
    # An indefinite matrix: CG on it would step to a saddle, not a minimizer.
    A = np.diag([3.0, 1.0, -2.0])
    b = np.array([1.0, 1.0, 1.0])
    x, _, reason = truncated_cg(lambda v: A @ v, b, rtol=1e-12)
    assert reason == "flat"
    # Every accepted step went along positive curvature: the quadratic model decreased.
    assert 0.5 * x @ A @ x - b @ x < 0
    # Flat curvature (a singular matrix, b off its range) stops too.
    singular = np.diag([1.0, 0.0])
    x, _, reason = truncated_cg(lambda v: singular @ v, np.array([1.0, 1.0]), rtol=1e-12)
    assert reason == "flat" and np.all(np.isfinite(x))


def test_cg_reports_max_iter():
    A, b = spd(40, 3, condition=1e6), np.ones(40)
    assert truncated_cg(lambda v: A @ v, b, rtol=1e-14, max_iter=3).reason == "max_iter"


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def rosenbrock_gradient(x):
    return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2),
                     200 * (x[1] - x[0] ** 2)])


@pytest.mark.parametrize("x", [np.array([-1.2, 1.0]), np.array([0.5, -0.3])])
def test_armijo_step_satisfies_sufficient_decrease(x):
    d = -rosenbrock_gradient(x)  # a descent direction, far too long at t = 1
    slope = float(rosenbrock_gradient(x) @ d)
    f0 = rosenbrock(x)
    step, value, accepted = armijo(lambda t: rosenbrock(x + t * d), f0, slope)
    assert accepted and 0 < step < 1
    assert value == rosenbrock(x + step * d)
    assert value <= f0 + ARMIJO_C1 * step * slope
    # The step before it (twice as long) did not satisfy it: the largest such step.
    assert rosenbrock(x + 2 * step * d) > f0 + ARMIJO_C1 * 2 * step * slope


def test_armijo_reports_failure_and_accepts_through_the_hook():
    def increasing(t):
        return 1.0 + t

    result = armijo(increasing, 1.0, slope=-1.0, max_trials=5)
    assert not result.accepted and result.step == 2.0 ** -4
    hooked = armijo(increasing, 1.0, slope=-1.0, accept=lambda t, value: t <= 0.25)
    assert hooked.accepted and hooked.step == 0.25
