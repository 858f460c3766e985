"""Split Newton-margin solver: the implicit-bias limit in hundreds of iterations.

The NTP cross-entropy splits exactly into an in-support part and an
off-support part. With ``LSE_S(l) = log sum_{z in S_j} exp(l_z)`` and the
off-support ratio ``r_j = sum_{v not in S_j} exp(l_v - LSE_S(l))``,

``CE(W) = CE_S(W) + O(W)``, ``CE_S = sum_j pi_j (LSE_S(W h_j) - p_j^T W h_j)``,
``O = sum_j pi_j log1p(r_j)``.

``CE_S`` only sees in-support logit differences, so it depends on ``P_F(W)``
alone, its gradient and Hessian live in ``F``, and its minimizer over ``F`` is
``W*`` (value ``H``) on compatible data. ``O`` carries the divergent part; it
is computed in the log domain, so ``grad log O`` keeps its full relative
precision however small ``O`` is (the plain gradient loses it below ``1e-16``).

Each iteration takes

``W <- W - t A^+ (grad CE_S + O A^+ A g) - eta (g - A^+ A g)``, ``g = grad log O``,

where ``A`` is the Hessian of ``CE_S`` (applied by Hessian-vector products,
inverted by conjugate gradients): a damped Newton step on the finite part
(for ``CE_S + O`` over ``F``), and a step of constant size on ``log O`` (minus
a smoothed margin) from which ``A^+ A g = P_F(g)`` removes the part that
would push ``P_F(W)`` off ``W*``.
The margin step is gradient descent on ``log O``, i.e. a step ``eta / O``
on ``O``: its size grows as the excess loss falls, so ``||W||`` grows linearly
in the iteration count instead of logarithmically.

The iteration runs in the namespace and on the device of ``W0``, in float64
(the device needs it): loss, Hessian products and conjugate gradients there,
reading back a few scalars per CG iteration. Unlike the block-wise loss, a
point of the split keeps its whole (n_contexts, n_tokens) logits.
"""

from dataclasses import replace

import numpy as np

from .._linalg._cg import truncated_cg
from .._linalg._line_search import armijo
from .._loss._contract import Restriction
from .._loss._cross_entropy import NTPLoss
from .._utils._array_api import from_host, namespace, norm, vdot
from ._api import SolverResult

#: Conjugate-gradient stop: residual below this fraction of the system's scale
#: (1e-8 leaves ||P_F(W_k) - W*|| near 1e-7 on App. A.2, at 70% of the cost of 1e-10).
CG_RTOL = 1e-8
#: Conjugate-gradient iterations per solve (warm starts keep most solves short).
CG_MAX_ITER = 200
#: Curvature, relative to ``||d||^2``, below which a CG direction counts as
#: flat (off ``F``, where the Hessian of ``CE_S`` is singular): round-off of a
#: Hessian product of unit-scale contexts is a few ``eps``.
CG_FLAT_RTOL = 1e-14
#: Largest logit change of a damped Newton step, in nats.
NEWTON_LOGIT_STEP = 1.0
#: Newton decrement below which the Newton step is taken undamped (the
#: quadratic-convergence region of a self-concordant-like loss).
UNDAMPED_DECREMENT = 0.25
#: Each margin line search starts at this multiple of the last accepted step
#: (capped by ``margin_step``): the step can recover after a shrink.
MARGIN_STEP_GROWTH = 2.0
#: Smallest margin step, relative to ``margin_step``, the backtracking tries:
#: below it ``log O`` is flat to rounding along the direction.
MIN_MARGIN_STEP = 1e-8
#: ``log r_j`` is capped here before ``exp``: ``exp(700)`` is finite in
#: float64, and ``log1p(r) / r`` is then exactly representable.
LOG_RATIO_CAP = 700.0
#: Below this off-support ratio ``log1p(r) / r = 1`` to rounding.
SMALL_RATIO = 1e-8


class SupportSplitLoss:
    """In-support cross-entropy ``CE_S`` and off-support loss ``log O`` of ``W``.

    ``CE_S`` is the cross-entropy restricted to the supports
    (:class:`~sklearn_ntp._loss._cross_entropy.NTPLoss` with the support mask);
    this class adds the off-support part.

    Parameters
    ----------
    data : NTPData
        Distinct contexts.
    xp : Array API namespace, default=None
        Namespace of the iterates (NumPy by default).
    device : device, default=None
        Their device in ``xp``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts, ntp_loss
    >>> from sklearn_ntp._solvers._accelerated import SupportSplitLoss
    >>> data = aggregate_contexts(np.eye(2), np.array([[0.5, 0.5, 0.0], [0, 0, 1]]))
    >>> W = np.array([[1.0, 0.0], [0.0, 0.0], [-2.0, 3.0]])
    >>> loss = SupportSplitLoss(data)
    >>> part = loss(loss.c * W)  # the loss sees contexts h_j / c, so c W
    >>> bool(np.isclose(part.ce_s + np.exp(part.log_o), ntp_loss(W, data)))
    True
    """

    def __init__(self, data, xp=None, device=None):
        # The loss works on unit-scale contexts ``h_j / c`` (and on ``c W``, the
        # same logits), ``c = max_j ||h_j||``: no product overflows at any scale.
        largest = float(np.max(data.context_norms))
        self.c = largest if largest > 0 else 1.0
        unit = replace(data, embeddings=np.asarray(data.embeddings, dtype=np.float64) / self.c)
        self.in_support = NTPLoss(unit, np.float64, xp, device,
                                  restriction=Restriction(data.support_mask))
        self.xp = self.in_support._xp
        on_host = self.in_support._on_host
        to_xp = (lambda a: a) if on_host else (lambda a: from_host(a, xp, device))
        self.support = to_xp(data.support_mask)
        self.log_pi = to_xp(np.log(np.asarray(data.weights, dtype=np.float64)))

    def __call__(self, W):
        """Return a :class:`SplitPoint` with both parts and their gradients at ``W``."""
        return SplitPoint(self, W)

    def hessian_product(self, W, V):
        """``A V``: Hessian of ``CE_S`` at ``W`` times ``V``."""
        return self.in_support.hessian_product(W, V)


class SplitPoint:
    """Both parts of the loss at one ``W`` (``CE = CE_S + exp(log_o)``) and their gradients.

    One pass over the blocks of contexts gives both: ``CE_S`` and its gradient
    add up across blocks, and so does ``grad log O`` once each block's
    weights are scaled by their largest (the normalizer ``O`` is known only
    after the last block). Everything runs in the namespace of ``W``.
    """

    def __init__(self, loss, W):
        xp, in_support = loss.xp, loss.in_support
        self.W, self.ce_s = W, 0.0
        grad_s, log_r, off_grad = None, [], _ScaledSum(xp)
        for point in in_support.point_blocks(W):
            rows, q_s = point.rows, point.probabilities
            self.ce_s = self.ce_s + point.value
            grad_s = in_support._add(grad_s, in_support.logits_adjoint(
                q_s, in_support.weights[rows, ...], rows))
            off = xp.where(loss.support[rows, ...], -np.inf,
                           point.logits - point.log_normalizer[:, None])
            with np.errstate(divide="ignore"):
                block_log_r = _logsumexp(xp, off, axis=1)
            log_r.append(block_log_r)
            has_off = xp.isfinite(block_log_r)
            if bool(xp.any(has_off)):
                # d log O / d logits_j = pi_j r_j / ((1 + r_j) O) (off-support
                # softmax - q_s): the weights but for the factor 1 / O.
                log_weight = xp.where(has_off, loss.log_pi[rows, ...]
                                      + _log_ratio_terms(xp, block_log_r)[1], -np.inf)
                off_softmax = xp.exp(off - xp.where(has_off, block_log_r, 0.0)[:, None])
                largest = float(xp.max(log_weight))
                off_grad.add(largest, in_support.logits_adjoint(
                    off_softmax - q_s, xp.exp(log_weight - largest), rows))
        self.ce_s = float(self.ce_s)
        self.grad_s = in_support._accumulated(grad_s) - in_support.target_term
        self.log_o, self.grad_log_o = self._off_support(loss, xp.concat(log_r), off_grad)

    def _off_support(self, loss, log_r, off_grad):
        """``log O`` and ``grad log O``, both in the log domain."""
        xp = loss.xp
        has_off = xp.isfinite(log_r)
        if not bool(xp.any(has_off)):  # every support full: no divergent part
            return -np.inf, xp.zeros_like(self.W)
        log_term = xp.where(has_off, _log_ratio_terms(xp, log_r)[0], -np.inf)
        log_o = float(_logsumexp(xp, loss.log_pi + log_term, axis=0))
        return log_o, off_grad.total(log_o)


def _log_ratio_terms(xp, log_r):
    """``(log log1p(r), log(r / (1 + r)))`` of the off-support ratios, exact at any ``r``."""
    r = xp.exp(xp.clip(log_r, max=LOG_RATIO_CAP))
    # log log1p(r) = log r + log(log1p(r) / r), exact to rounding at any r.
    log_term = log_r + xp.log(xp.where(r > SMALL_RATIO,
                                       xp.log1p(r) / xp.where(r > 0, r, 1.0), 1.0))
    return log_term, log_r - xp.log1p(r)


class _ScaledSum:
    """``sum_b exp(c_b) G_b`` kept as ``exp(c) G`` so that no term over- or underflows."""

    def __init__(self, xp):
        self.xp, self.log_scale, self.sum = xp, -np.inf, None

    def add(self, log_scale, term):
        if self.sum is None:
            self.log_scale, self.sum = log_scale, term
            return
        top = max(self.log_scale, log_scale)
        self.sum = (self.sum * float(np.exp(self.log_scale - top))
                    + term * float(np.exp(log_scale - top)))
        self.log_scale = top

    def total(self, log_divisor):
        """The sum divided by ``exp(log_divisor)``."""
        return self.sum * float(np.exp(self.log_scale - log_divisor))


def _logsumexp(xp, A, axis):
    """``log sum exp`` of ``A`` along ``axis`` (``-inf`` where every entry is)."""
    top = xp.max(A, axis=axis, keepdims=True)
    top = xp.where(xp.isfinite(top), top, 0.0)
    return xp.log(xp.sum(xp.exp(A - top), axis=axis)) + xp.squeeze(top, axis=axis)


def conjugate_gradient(apply, rhs, x, scale):
    """Solve ``apply(x) = rhs`` (positive semidefinite) from ``x``, to ``CG_RTOL * scale``.

    Stops early on a direction of no curvature (below ``CG_FLAT_RTOL``): the
    system is singular off ``F``, and a right-hand side in ``F`` never needs one.
    """
    return truncated_cg(apply, rhs, x, atol=CG_RTOL * scale, flat=CG_FLAT_RTOL,
                        max_iter=CG_MAX_ITER).x


class SplitNewtonMargin:
    """One run of the accelerated solver (state: the last ``P_F(grad log O)``)."""

    def __init__(self, loss, margin_step):
        self.loss = loss
        self.max_eta = self.eta = margin_step  # contexts have norm <= 1

    def step(self, point, projected):
        """Return ``(W_new, P_F(g), margin direction -(g - P_F(g)))`` from ``point``."""
        loss, g = self.loss, point.grad_log_o

        def A(V):
            return loss.hessian_product(point.W, V)

        A_g = A(g)
        scale = norm(A_g) + norm(point.grad_s)
        if scale == 0.0:  # one-hot data: CE_S is constant, F = {0}
            return point.W - self.eta * g, projected, -g
        projected = conjugate_gradient(A, A_g, projected, scale)
        if not norm(projected) <= norm(g):  # a projection cannot grow
            projected = self.loss.xp.zeros_like(g)
        # Newton on CE_S + O over F: P_F(grad O) = O P_F(g) is negligible on
        # separable data, and balances CE_S where O does not vanish.
        grad_f = point.grad_s + float(np.exp(point.log_o)) * projected
        newton = conjugate_gradient(A, grad_f, self.loss.xp.zeros_like(g), scale)
        t = self._damping(grad_f, newton)
        margin = projected - g
        W = point.W - t * newton
        return W + self._margin_step(W, margin) * margin, projected, margin

    def _margin_step(self, W, margin):
        """Largest step ``<= margin_step`` with an Armijo decrease (``ARMIJO_C1``) of ``log O``.

        On separable data ``log O`` falls linearly and ``margin_step`` is
        accepted; where ``O`` stays bounded (pairs that no direction
        separates) the step shrinks to the curvature of ``log O``.
        """
        log_o = self.loss(W).log_o
        if not np.isfinite(log_o):
            return self.eta
        start = min(MARGIN_STEP_GROWTH * self.eta, self.max_eta)
        # Halvings from ``start`` down to ``MIN_MARGIN_STEP * margin_step``.
        trials = max(1, int(np.ceil(np.log2(start / (MIN_MARGIN_STEP * self.max_eta)))))
        self.eta = armijo(lambda t: self.loss(W + t * margin).log_o, log_o,
                          -vdot(margin, margin), step=start, max_trials=trials).step
        return self.eta

    def _damping(self, grad, newton):
        """Damped Newton (``1 / (1 + decrement)`` above ``UNDAMPED_DECREMENT``), logits
        moved at most ``NEWTON_LOGIT_STEP``."""
        decrement = float(np.sqrt(max(vdot(grad, newton), 0.0)))
        t = 1.0 if decrement <= UNDAMPED_DECREMENT else 1.0 / (1.0 + decrement)
        size = norm(newton)
        return min(t, NEWTON_LOGIT_STEP / size) if size > 0 else t


def _direction_residual(total, margin):
    """``1 - cos`` between the accumulated margin steps and the current one."""
    product = norm(total) * norm(margin)
    return 1.0 - vdot(total, margin) / product if product > 0 else np.inf


def accelerated(objective, W0, options, tracker):
    """Split Newton-margin iterations (see the module docstring).

    Stops when both the finite part and the direction have converged: the
    gradient norm of ``CE_S`` and the direction residual
    ``1 - cos(sum of margin steps, current margin step)`` are ``<= tol``.
    The direction residual tracks ``1 - cos(W_k - W*, W^mm)`` closely
    (measured within 20% on App. A.2), without using either limit.
    """
    if objective.penalty.alpha != 0.0:
        raise ValueError("solver='accelerated' minimizes the unregularized NTP loss; "
                         f"got alpha={objective.penalty.alpha}. Use solver='lbfgs' "
                         "for alpha > 0.")
    xp, on_host = namespace(W0)
    loss = SupportSplitLoss(objective.datafit.data, None if on_host else xp,
                            None if on_host else W0.device)
    run = SplitNewtonMargin(loss, options.margin_step)

    def unscaled(W, k):  # iterate in the caller's units (W_0 exactly as given)
        return W0 if k == 0 else xp.astype(W / loss.c, W0.dtype)

    W = xp.astype(W0, xp.float64) * loss.c
    projected, total = xp.zeros_like(W), xp.zeros_like(W)
    for k in range(options.max_iter + 1):
        point = loss(W)
        # Recorded: the cross-entropy as every solver computes it (same rounding).
        ce = objective.datafit.value(unscaled(W, k))
        tracker.record(k, unscaled(W, k), ce, ce)
        if k == options.max_iter:
            break
        W, projected, margin = run.step(point, projected)
        residual = _direction_residual(total, margin) if np.isfinite(point.log_o) else 0.0
        total += margin
        if k > 0 and residual <= options.tol and norm(point.grad_s) <= options.tol:
            tracker.finish()
            return SolverResult(unscaled(point.W, k), k, True, "tol")
        if not bool(xp.all(xp.isfinite(W))):
            tracker.finish()
            return SolverResult(unscaled(point.W, k), k, False, "diverged",
                                "The accelerated iterations produced a non-finite matrix; "
                                "coef_ is the last finite iterate.")
    tracker.finish()
    return SolverResult(unscaled(W, options.max_iter), options.max_iter, False, "max_iter")
