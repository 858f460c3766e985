"""Solvers for ``min_W CE(W) + (alpha / 2) ||W||_F^2`` over distinct contexts.

Every solver in :data:`SOLVERS` has the signature
``solver(objective, W0, options, tracker) -> SolverResult``: it starts at
``W0``, calls ``tracker.record`` once per iterate ``W_k`` (``k = 0, 1, ...``)
and ``tracker.finish`` at the end. Each solver owns its stopping and
divergence rules and says in ``SolverResult.warning`` what deserves a warning.

* ``gd``: ``W <- W - eta grad``  (paper Section 5);
* ``ngd``: ``W <- W - eta grad / ||grad||_F``  (normalized GD, App. A);
* ``adam``: bias-corrected Adam (Kingma & Ba, 2015);
* ``lbfgs``: ``scipy.optimize.minimize(method="L-BFGS-B")`` (its iterates on
  the host, the loss and gradient in the namespace of ``W0``);
* ``sgd``: stochastic gradients over sampled contexts or (context, token) pairs;
* ``accelerated``: Newton on the in-support loss, normalized steps on the
  off-support loss (:mod:`sklearn_ntp._solvers._accelerated`).
"""

from functools import partial

import numpy as np
from scipy.optimize import minimize

from .._loss._objective import Objective
from .._utils._array_api import (
    frobenius_norm,
    from_host,
    in_host_memory,
    namespace,
    to_host,
)
from ._accelerated import accelerated
from ._api import SolverOptions, SolverResult
from ._sgd import SGDStep

#: An iterate whose objective exceeds this multiple of ``max(1, f(W_0))``
#: counts as an excursion for the solvers whose objective need not decrease
#: (ngd, adam, sgd): normalized GD and Adam move ``W`` by about ``eta`` per
#: step, and a large first step can overshoot before they settle.
DIVERGENCE_FACTOR = 1.5
#: Consecutive excursion iterations after which such a run counts as diverged.
DIVERGENCE_PATIENCE = 50

__all__ = ["SOLVERS", "Objective", "SolverOptions", "SolverResult"]


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
    """Raise if the initial objective is not finite."""
    if not np.isfinite(value):
        raise ValueError(
            "The initial coefficients give a non-finite objective; use a smaller init.")


class DescentRule:
    """Gradient descent's rule: with a stable step the objective never increases.

    An increase beyond rounding (``sqrt(eps)`` relative) or a non-finite
    objective means the step is too large for the curvature.
    """

    #: What a divergence means for this rule (no fold-dependent numbers).
    reason = "the objective increased, which a stable gradient step never does"

    def __init__(self, eps):
        self.slack = float(np.sqrt(eps))
        self.previous = np.inf

    def check(self, value):
        """``"ok"`` or ``"diverged"`` for the next iterate's objective ``value``."""
        if not value <= self.previous + self.slack * max(1.0, abs(self.previous)):
            return "diverged"
        self.previous = value
        return "ok"


class ExcursionRule:
    """Rule for non-monotone methods (ngd, adam, sgd).

    They may overshoot for a while (Adam's first steps on large embeddings
    do); the run counts as diverged when the objective is non-finite, or
    above ``DIVERGENCE_FACTOR * max(1, f(W_0))`` for ``DIVERGENCE_PATIENCE``
    consecutive iterates.
    """

    def __init__(self, eps):
        self.limit, self.excursion = None, 0
        self.reason = ""

    def check(self, value):
        """``"ok"``, ``"excursion"`` or ``"diverged"`` for the next objective ``value``."""
        if self.limit is None:
            self.limit = DIVERGENCE_FACTOR * max(1.0, value)
        if not np.isfinite(value):
            self.reason = "the objective became non-finite"
            return "diverged"
        if value <= self.limit:
            self.excursion = 0
            return "ok"
        self.excursion += 1
        if self.excursion < DIVERGENCE_PATIENCE:
            return "excursion"
        self.reason = (f"the objective stayed above {DIVERGENCE_FACTOR:g} max(1, f(W_0)) "
                       f"for {DIVERGENCE_PATIENCE} iterations")
        return "diverged"


def _max_squared_context_norm(objective):
    """``max_j ||h_j||^2`` of the objective's contexts."""
    return float(np.max(objective.datafit.context_norms)) ** 2


def _divergence_message(objective, options, name, reason):
    """Why a first-order run diverged, naming the step it used and where it came from.

    A given step carries no fold-dependent number in the common case: a grid
    search then shows the warning once per candidate.
    """
    if name == "sgd" and options.batch_size is not None:
        name = f"sgd with batch_size={options.batch_size}"
    tail = "coef_ is the last accepted iterate, after n_iter_ updates."
    if options.auto_step:
        return (f"{name} diverged: {reason}, with the step {options.learning_rate:.3g} "
                "(learning_rate_) that learning_rate='auto' derived from the data; pass a "
                f"smaller learning_rate. {tail}")
    scale = _max_squared_context_norm(objective)
    if objective.scaling is not None:  # a uniform scale: in the units of the given X
        scale = float(np.ldexp(scale, 2 * objective.scaling.base))
    hint = "pass a smaller one, or learning_rate='auto' to derive a stable step from the data"
    if not 1e-8 <= scale <= 1e8:
        hint = (f"the embeddings have squared norms up to {scale:.0e}, far from unit scale: "
                "rescale X (e.g. StandardScaler) or use learning_rate='auto', which adapts "
                "the step to the data")
    given = (options.learning_rate if options.given_learning_rate is None
             else options.given_learning_rate)
    return (f"{name} diverged: {reason}. learning_rate={given:g} is too large for {name} "
            f"on these data; {hint}. {tail}")


def _max_iter_warning(objective, name, n_iter):
    """With ``alpha = 0`` the infimum is only reached asymptotically: no warning."""
    if objective.penalty.alpha == 0.0:
        return ""
    return (f"{name} did not converge in {n_iter} iterations; increase max_iter or tol.")


def descend(make_step, rule, name, objective, W, options, tracker):
    """First-order loop shared by gd, ngd, adam and sgd.

    ``make_step(options, W0)`` returns ``step(W, grad, t) -> W_new``
    (a new array: recorded iterates are never modified in place);
    ``rule(eps)`` (``eps`` the machine epsilon of the iterates) decides
    divergence, and the run then stops at the last iterate the rule accepted.
    """
    step = make_step(options, W)
    xp, _ = namespace(W)
    rule = rule(float(xp.finfo(W.dtype).eps))
    # Iterates in host memory are tested at every step. On a device the tests
    # (a scalar transfer each) run every ``tracker.every`` steps only, so a run
    # stops at the first *tested* iterate that meets ``tol``, and a diverged
    # run returns the last tested iterate the rule accepted.
    period = 1 if in_host_memory(W) else tracker.every
    accepted, result = None, None
    # Overflow is expected when a too-large step diverges; the rule catches it.
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(options.max_iter + 1):
            value, ce, grad = objective(W)
            if k == 0:
                _check_initial(float(value))
            tested = k % period == 0 or k == options.max_iter
            status = rule.check(float(value)) if tested else "untested"
            if status == "diverged":
                tracker.rewind(*accepted)
                result = SolverResult(accepted[1], accepted[0], False, "diverged",
                                      _divergence_message(objective, options, name,
                                                          rule.reason))
                break
            if status == "ok":
                accepted = (k, W, ce)
            tracker.record(k, W, value, ce)
            if tested and objective.converged(ce, grad, options.tol):
                result = SolverResult(W, k, True, "tol")
                break
            if k < options.max_iter:
                W = step(W, grad, k + 1)
    tracker.finish()
    return result or SolverResult(W, options.max_iter, False, "max_iter",
                                  _max_iter_warning(objective, name, options.max_iter))


class _LBFGSRun:
    """Objective wrapper and per-iteration callback for scipy's L-BFGS-B.

    The objective is evaluated in the dtype, namespace and device of the
    initial matrix, while scipy works on a float64 vector on the host: each
    evaluation sends ``W`` to the device and reads back the objective and its
    gradient (one transfer each way, whatever the number of blocks).
    Iterates accepted by the line search are "visited": recorded and tested
    for convergence.
    """

    def __init__(self, objective, W0, options, tracker):
        self.objective, self.options, self.tracker = objective, options, tracker
        self.shape, self.dtype = W0.shape, W0.dtype
        xp, on_host = namespace(W0)
        self._to_device = None if on_host else (
            lambda W: from_host(W, xp, W0.device, W0.dtype))
        self.k, self.converged, self._last = -1, False, None

    def fun(self, x):
        if self._to_device is None:
            W = x.reshape(self.shape).astype(self.dtype)
        else:
            W = self._to_device(x.reshape(self.shape))
        value, ce, grad = self.objective(W)
        self._last = (x.copy(), W, value, ce, grad)
        return float(value), to_host(grad).ravel().astype(np.float64)

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


def _lbfgs_outcome(run, res, objective, options):
    """``(stop_reason, warning)`` of an L-BFGS-B run that did not meet ``tol``."""
    _, _, _, ce, grad = run._last
    where = (f"at ||grad|| = {objective.gradient_norm(grad):.3g}, CE - L* = "
             f"{float(ce) - objective.loss_infimum:.3g} (tol = {options.tol:g})")
    if res.status == 1:
        return "max_iter", (f"lbfgs did not converge in {options.max_iter} iterations "
                            f"({where}); increase max_iter or tol.")
    if res.success:  # scipy's ftol: the relative decrease reached machine precision
        return "stalled", (f"lbfgs stalled {where}: the objective no longer decreases "
                           "at machine precision; tol is below what float64 can resolve.")
    scale = _max_squared_context_norm(objective)
    return "line search failed", (
        f"lbfgs: the line search found no decrease {where}. The objective is flat "
        f"to machine precision or badly scaled (squared context norms up to "
        f"{scale:.3g}); rescale X or loosen tol.")


def lbfgs(objective, W0, options, tracker):
    """L-BFGS-B on the flattened matrix, with the same stopping test as the others.

    scipy's own tests are kept tight (``gtol=0``, ``ftol=64 eps``) so that the
    estimator's criterion decides; a run that scipy stops first (stall at
    machine precision, failed line search) is reported as not converged, with
    its reason.
    """
    run = _LBFGSRun(objective, W0, options, tracker)
    x0 = np.asarray(to_host(W0)).ravel().astype(np.float64)
    _check_initial(run.fun(x0)[0])
    converged = run.visit(x0)
    reason, warning = ("tol", "") if converged else ("max_iter", "")
    if not converged and options.max_iter > 0:
        with np.errstate(over="ignore", invalid="ignore"):
            res = minimize(run.fun, x0, jac=True, method="L-BFGS-B", callback=run.callback,
                           options={"maxiter": options.max_iter, "gtol": 0.0,
                                    "ftol": 64 * np.finfo(float).eps, "maxls": 50})
        converged = run.converged
        reason, warning = ("tol", "") if converged else _lbfgs_outcome(
            run, res, objective, options)
    elif not converged:
        warning = _max_iter_warning(objective, "lbfgs", 0)
    tracker.finish()
    return SolverResult(run.W, run.k, converged, reason, warning)


def sgd(objective, W0, options, tracker):
    """Stochastic gradient descent (:class:`~sklearn_ntp._solvers._sgd.SGDStep`)."""
    return descend(partial(SGDStep, objective.datafit, penalty=objective.penalty),
                   ExcursionRule, "sgd", objective, W0, options, tracker)


#: Solver registry used by :class:`~sklearn_ntp.NTPLinearClassifier`.
SOLVERS = {
    "gd": partial(descend, gd_step, DescentRule, "gd"),
    "ngd": partial(descend, ngd_step, ExcursionRule, "ngd"),
    "adam": partial(descend, AdamStep, ExcursionRule, "adam"),
    "lbfgs": lbfgs,
    "sgd": sgd,
    "accelerated": accelerated,
}
