"""Solvers for ``min_W CE(W) + (alpha / 2) ||W||_F^2`` over distinct contexts.

Every solver in :data:`SOLVERS` has the signature
``solver(objective, W0, options, tracker) -> SolverResult``: it starts at
``W0``, calls ``tracker.record`` once per iterate ``W_k`` (``k = 0, 1, ...``)
and ``tracker.finish`` at the end, and stops when :meth:`Objective.converged`
holds, after ``options.max_iter`` updates, or when the objective diverges.

* ``gd``: ``W <- W - eta grad``  (paper Section 5);
* ``ngd``: ``W <- W - eta grad / ||grad||_F``  (normalized GD, App. A);
* ``adam``: bias-corrected Adam (Kingma & Ba, 2015);
* ``lbfgs``: ``scipy.optimize.minimize(method="L-BFGS-B")``.
"""

from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.optimize import minimize

from ._array_api import frobenius_norm, in_host_memory, namespace

#: An iterate whose objective exceeds this multiple of ``max(1, f(W_0))``
#: counts as diverged. Stable runs never exceed ``f(W_0)`` itself: GD with a
#: suitable step decreases the objective, and normalized GD and Adam move
#: ``W`` by about ``eta`` per step (measured: a maximum of exactly ``f(W_0)``
#: for the paper's settings and steps up to 4x larger, against 5x to 7x
#: ``f(W_0)`` for ``eta = 20``, which is far too large).
DIVERGENCE_FACTOR = 1.5


@dataclass(frozen=True)
class SolverOptions:
    """Hyper-parameters shared by the solvers (each one reads what it needs)."""

    max_iter: int
    tol: float
    learning_rate: float = 0.5
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8


@dataclass(frozen=True)
class SolverResult:
    """Outcome of a solver run.

    Attributes
    ----------
    coef : ndarray of shape (n_tokens, n_features)
        Final iterate (the last finite one if the run diverged).
    n_iter : int
        Number of updates that led to ``coef``.
    converged : bool
        Whether the stopping criterion was met.
    stop_reason : str
        ``"tol"``, ``"max_iter"``, ``"diverged"`` or L-BFGS-B's message.
    """

    coef: np.ndarray
    n_iter: int
    converged: bool
    stop_reason: str


class Objective:
    """Data fit plus penalty, with the convergence test that fits the problem.

    Parameters
    ----------
    datafit : NTPLoss
        The NTP cross-entropy.
    penalty : L2Penalty
        The ridge penalty.
    loss_infimum : float, default=None
        ``L* = inf CE`` when known (see
        :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`); the entropy
        ``H`` of the data otherwise (``L* = H`` on compatible, separable data).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> from sklearn_ntp._loss import NTPLoss
    >>> from sklearn_ntp._penalty import L2Penalty
    >>> from sklearn_ntp._solvers import Objective
    >>> data = aggregate_contexts(np.eye(2), [0, 1])
    >>> objective = Objective(NTPLoss(data), L2Penalty(0.0))
    >>> value, ce, grad = objective(np.zeros((2, 2)))
    >>> round(value, 4), grad
    (0.6931, array([[-0.25,  0.25],
                    [ 0.25, -0.25]]))
    """

    def __init__(self, datafit, penalty, loss_infimum=None):
        self.datafit = datafit
        self.penalty = penalty
        self.loss_infimum = datafit.entropy if loss_infimum is None else loss_infimum

    def __call__(self, W):
        """Return ``(objective, CE, gradient of the objective)`` at ``W``."""
        ce, grad = self.datafit.value_and_grad(W)
        if self.penalty.alpha == 0.0:
            return ce, ce, grad
        grad += self.penalty.grad(W)
        return ce + self.penalty.value(W), ce, grad

    def converged(self, ce, grad, tol):
        """Stopping test at an iterate with cross-entropy ``ce`` and gradient ``grad``.

        Without penalty the infimum ``L*`` is in general not attained, so the
        test is on the excess loss ``CE - L* <= tol``; with ``alpha > 0`` the
        minimizer exists and the test is ``||grad||_F <= tol``.
        """
        if self.penalty.alpha == 0.0:
            return float(ce) - self.loss_infimum <= tol
        return float(frobenius_norm(grad)) <= tol


def gd_step(options, W0):
    """Gradient step ``W - eta grad``."""
    eta = options.learning_rate
    return lambda W, grad, t: W - eta * grad


def ngd_step(options, W0):
    """Normalized gradient step ``W - eta grad / ||grad||_F``."""
    eta = options.learning_rate
    xp, on_host = namespace(W0)
    tiny = xp.finfo(W0.dtype).smallest_normal
    # Off the host the norm stays a 0-d array: no device sync per step.
    floor = max if on_host else (lambda norm, low: xp.clip(norm, min=low))

    def step(W, grad, t):
        return W - (eta / floor(frobenius_norm(grad), tiny)) * grad

    return step


class AdamStep:
    """Adam step with bias-corrected moments; ``t`` is the 1-based step count."""

    def __init__(self, options, W0):
        self.options = options
        self.xp, _ = namespace(W0)
        self.m = self.xp.zeros_like(W0)
        self.v = self.xp.zeros_like(W0)

    def __call__(self, W, grad, t):
        o = self.options
        self.m *= o.beta_1
        self.m += (1 - o.beta_1) * grad
        self.v *= o.beta_2
        self.v += (1 - o.beta_2) * grad * grad
        m_hat = self.m / (1 - o.beta_1 ** t)
        v_hat = self.v / (1 - o.beta_2 ** t)
        return W - o.learning_rate * m_hat / (self.xp.sqrt(v_hat) + o.epsilon)


def _check_initial(value):
    """Divergence threshold for a run whose initial objective is ``value``."""
    if not np.isfinite(value):
        raise ValueError(
            "The initial coefficients give a non-finite objective; use a smaller init."
        )
    return DIVERGENCE_FACTOR * max(1.0, value)


def descend(make_step, objective, W, options, tracker):
    """First-order loop shared by gd, ngd and adam.

    ``make_step(options, W0)`` returns ``step(W, grad, t) -> W_new`` (a new
    array: recorded iterates are never modified in place). A non-finite or
    exploding objective stops the run at the previous iterate.
    """
    step = make_step(options, W)
    # Iterates in host memory are tested at every step. On a device the tests
    # (a scalar transfer each) run every ``tracker.every`` steps only, so a run
    # stops at the first *tested* iterate that meets ``tol``, and a diverged
    # run returns the last tested finite iterate.
    period = 1 if in_host_memory(W) else tracker.every
    previous, result = None, None
    # Overflow is expected when a too-large step diverges; it is caught below.
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(options.max_iter + 1):
            value, ce, grad = objective(W)
            if k == 0:
                limit = _check_initial(float(value))
            tested = k % period == 0 or k == options.max_iter
            if tested and not float(value) <= limit:  # also catches NaN
                tracker.rewind(*previous)
                result = SolverResult(previous[1], previous[0], False, "diverged")
                break
            tracker.record(k, W, value, ce)
            if tested and objective.converged(ce, grad, options.tol):
                result = SolverResult(W, k, True, "tol")
                break
            if tested:
                previous = (k, W, ce)
            if k < options.max_iter:
                W = step(W, grad, k + 1)
    tracker.finish()
    return result or SolverResult(W, options.max_iter, False, "max_iter")


class _LBFGSRun:
    """Objective wrapper and per-iteration callback for scipy's L-BFGS-B.

    The objective is evaluated in the dtype of the initial matrix, while
    scipy works on a float64 vector. Iterates accepted by the line search
    are "visited": recorded and tested for convergence.
    """

    def __init__(self, objective, W0, options, tracker):
        self.objective, self.options, self.tracker = objective, options, tracker
        self.shape, self.dtype = W0.shape, W0.dtype
        self.k, self.converged, self._last = -1, False, None

    def fun(self, x):
        W = x.reshape(self.shape).astype(self.dtype)
        value, ce, grad = self.objective(W)
        self._last = (x.copy(), W, value, ce, grad)
        return value, grad.ravel().astype(np.float64)

    def visit(self, x):
        # The accepted point was normally the last one evaluated.
        if self._last is None or not np.array_equal(self._last[0], x):
            self.fun(x)
        _, self.W, value, ce, grad = self._last
        self.k += 1
        self.tracker.record(self.k, self.W, value, ce)
        self.converged = self.objective.converged(ce, grad, self.options.tol)
        return self.converged

    def callback(self, intermediate_result):
        if self.visit(intermediate_result.x):
            raise StopIteration


def lbfgs(objective, W0, options, tracker):
    """L-BFGS-B on the flattened matrix, with the same stopping test as the others.

    scipy's own tests are kept tight (``gtol=0``, ``ftol=64 eps``) so that the
    estimator's criterion decides, unless the relative decrease of the
    objective stalls at machine precision (then the run counts as converged).
    """
    run = _LBFGSRun(objective, W0, options, tracker)
    x0 = W0.ravel().astype(np.float64)
    _check_initial(run.fun(x0)[0])
    converged = run.visit(x0)
    reason = "tol" if converged else "max_iter"
    if not converged and options.max_iter > 0:
        res = minimize(run.fun, x0, jac=True, method="L-BFGS-B", callback=run.callback,
                       options={"maxiter": options.max_iter, "gtol": 0.0,
                                "ftol": 64 * np.finfo(float).eps, "maxls": 50})
        converged = run.converged or bool(res.success)
        reason = "tol" if run.converged else f"lbfgs: {res.message}"
    tracker.finish()
    return SolverResult(run.W, run.k, converged, reason)


#: Solver registry used by :class:`~sklearn_ntp.NTPLinearClassifier`.
SOLVERS = {
    "gd": partial(descend, gd_step),
    "ngd": partial(descend, ngd_step),
    "adam": partial(descend, AdamStep),
    "lbfgs": lbfgs,
}
