"""The cross-entropy restricted to the effective supports, and its minimizer ``W~``.

``CE~(W) = sum_j pi_j [ logsumexp_{z in S~_j} (W h_j + b_j)_z``
``- sum_{z in S_j} p_jz (W h_j + b_j)_z ]``

with logit offsets ``b`` (zero unless given; :mod:`~sklearn_ntp._geometry._pair_bounds` uses them).

Its gradient ``sum_j pi_j (q~_j - p_j) h_j^T`` (``q~_j`` the softmax over
``S~_j``, zero elsewhere) lies in ``G``, and so does every Hessian-vector
product: Newton iterates started in ``G`` stay in ``G`` and converge to the
unique minimizer there (Newton-CG with backtracking). Products cost
``O(m V d)``; no (V d)-sized matrix is formed.

The Newton iteration can run on a device (:class:`RestrictedLoss`,
:func:`~sklearn_ntp._utils._array_api.newton_device`); what the geometry
reads back (``W~``, its gradient norm, the softmax) is float64 on the host.
"""

from contextlib import nullcontext

import numpy as np
from sklearn import config_context
from sklearn.utils._array_api import _is_numpy_namespace

from .._linalg._cg import truncated_cg
from .._linalg._line_search import armijo
from .._utils._array_api import current_newton_device, from_host, namespace, norm, to_host
from ._contract import Restriction
from ._cross_entropy import NTPLoss

#: Curvature, relative to ``sum_j pi_j ||h_j||^2``, below which a CG direction
#: counts as flat (in ``G-perp``) and ends the Newton solve.
CURVATURE_RTOL = 1e-10
#: Stationarity accepted for ``W~``: ``||grad CE~||_F`` relative to
#: ``sqrt(sum_j pi_j ||h_j||^2)``, the gradient's scale.
STATIONARITY_RTOL = 1e-8
#: Loosest relative residual of the inexact Newton CG (far from the minimizer):
#: a tenth already gives most of the decrease of an exact Newton step.
NEWTON_CG_RTOL_MAX = 0.1
#: Tightest relative residual of the Newton CG: near round-off of the curvature
#: (``CURVATURE_RTOL``), beyond which CG only amplifies noise.
NEWTON_CG_RTOL_MIN = 1e-10
#: Steps the line search tries (down to ``2^-39``, below the relative
#: resolution of any step in float64) before the iteration gives up.
LINE_SEARCH_TRIALS = 40
#: A step that does not decrease the loss is still accepted when it multiplies
#: the gradient norm by at most this factor: near the minimizer the loss no
#: longer resolves the decrease, the gradient still does.
GRADIENT_REDUCTION = 0.5
#: Increase of the loss, relative to its value, that such a step may bring:
#: a few ulps of rounding in the value.
VALUE_ROUNDOFF_RTOL = 1e-13
#: Gradient norm, relative to ``STATIONARITY_RTOL * scale``, at which a step that
#: does not reach ``GRADIENT_REDUCTION`` ends the iteration: round-off floor.
ROUNDOFF_FLOOR = 1e-3
#: Low-precision (float32) Hessian products serve the Newton directions while
#: ``||grad||_F`` exceeds this multiple of ``sqrt(eps)`` of their dtype times
#: ``scale``; closer to ``W~`` their round-off would bound the convergence, and
#: float64 products take over.
LOW_PRECISION_SWITCH = 1.0
#: Flat curvature of low-precision products, in units of their ``eps``
#: (times ``scale^2``): below it a curvature is their round-off.
LOW_PRECISION_FLAT = 100.0


class RestrictedLoss(NTPLoss):
    """``CE~`` over the effective supports ``mask`` (float64), and its minimizer.

    Every public method (value, gradient, softmax and its blocks, Hessian
    products) works on float64 NumPy arrays on the host. :meth:`minimize` can
    run its Newton iteration elsewhere (``newton``, or the context
    :func:`~sklearn_ntp._utils._array_api.newton_device`):

    * the iterate, the gradient, the line search and the conjugate gradients
      live in the device's namespace, in float64 (the device needs it: CUDA
      and CPUs have it); the arrays cross to the device once per solve, and
      each CG iteration reads three scalars back;
    * the Hessian products run there in ``device.dtype``. With float32 they
      serve the Newton directions while ``||grad||_F`` exceeds
      ``sqrt(eps_float32) * scale`` (:data:`LOW_PRECISION_SWITCH`), or until
      a float32 direction fails the line search. Their round-off leaves
      components in ``G-perp``, where the loss is flat and no Newton step
      removes them: one float64 CG solve (:meth:`_back_in_range`) projects
      the iterate back onto ``G``, and float64 products finish, so that
      ``W~`` is the float64 minimizer in ``G``;
    * the result comes back to the host in float64 and its gradient norm,
      which the certificates of the limit read, is computed again there by
      the float64 NumPy loss: the certificate never rests on device
      arithmetic.

    Parameters
    ----------
    data : NTPData
        Distinct contexts (their supports ``S_j`` must lie inside ``mask``).
    mask : ndarray of bool, shape (n_contexts, n_tokens)
        The effective supports ``S~_j``.
    offsets : tuple of ndarrays (rows, columns, values), default=None
        Logit offsets ``b_jv`` on a few pairs (zero elsewhere).
    newton : NewtonDevice, default=None
        Where :meth:`minimize` iterates (namespace, device, product dtype);
        None: the one set by ``newton_device``, else NumPy on the host.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> from sklearn_ntp._loss._restricted import RestrictedLoss
    >>> data = aggregate_contexts(np.eye(2), np.array([[0.5, 0.5], [0.25, 0.75]]))
    >>> loss = RestrictedLoss(data, np.ones((2, 2), dtype=bool))
    >>> W, grad_norm = loss.minimize(np.zeros((2, 2)), tol=1e-10)
    >>> bool(np.allclose(loss.softmax(W), data.probabilities.toarray(), atol=1e-9))
    True
    """

    def __init__(self, data, mask, offsets=None, *, newton=None):
        super().__init__(data, np.float64, restriction=Restriction(mask, offsets))
        self.mask = mask
        self.offsets = offsets
        self.pi = self.weights
        # pi_j ||h_j||^2: the scale of the gradient and of every curvature.
        self._row_weights = self.pi * self.context_norms ** 2
        self.scale = float(np.sqrt(self._row_weights.sum()))
        self._evaluator, self._products = self._newton_losses(
            current_newton_device() if newton is None else newton)

    def _newton_losses(self, newton):
        """The float64 loss the Newton iteration evaluates, and its Hessian-product
        losses ``(float64, low precision or None)``, where ``newton`` says."""
        if newton is None:
            return self, (self, None)
        xp, where, dtype = newton
        if dtype is not None and dtype not in (xp.float32, xp.float64):
            raise ValueError(f"The dtype of the Newton products must be float32 or "
                             f"float64 of {xp.__name__}, got dtype={dtype}.")
        on_host = _is_numpy_namespace(xp)

        def loss(precision):
            if on_host and precision == np.float64:
                return self
            return NTPLoss(self.data, precision, None if on_host else xp, where,
                           restriction=self.restriction)

        evaluator = loss(np.float64)
        low = loss(np.float32) if dtype is not None and dtype == xp.float32 else None
        return evaluator, (evaluator, low)

    def _fun(self, x):
        """``(CE~, grad CE~)`` at the flat iterate ``x`` (in the evaluator's namespace)."""
        xp, _ = namespace(x)
        value, grad = self._evaluator.value_and_grad(xp.reshape(x, self.shape))
        return float(value), xp.reshape(grad, (-1,))

    def minimize(self, W0, max_iter=200, tol=0.0):
        """Newton-CG with backtracking from ``W0`` in ``G``; returns ``(W~, ||grad||_F)``.

        It stops once ``||grad||_F <= tol * scale``, or else at round-off.
        ``W~`` is a float64 NumPy array, ``||grad||_F`` computed on the host.

        The Hessian is singular on ``G-perp``. The truncated CG of
        :meth:`_newton_direction` stops at flat curvature, so the steps stay
        in ``G``; scipy's ``Newton-CG`` gives up on such Hessians and its
        trust-region variants drift into ``G-perp`` or stall. Near the
        minimizer the loss no longer resolves the decrease, so a step is also
        accepted when it reduces the gradient norm by ``GRADIENT_REDUCTION``
        (without raising the loss beyond ``VALUE_ROUNDOFF_RTOL``), and the
        iteration ends at the first step from a stationary point that does not.
        """
        # The device's arrays are recognized by scikit-learn's Array API dispatch.
        with (nullcontext() if self._evaluator._on_host
              else config_context(array_api_dispatch=True)):
            return self._minimize(W0, max_iter, tol)

    def _minimize(self, W0, max_iter, tol):
        x0 = self._newton_vector(W0)
        x, (value, grad) = x0, self._fun(x0)
        grad_norm = norm(grad)
        low, moved, failed = self._products[1] is not None, False, False
        switch = max(tol, LOW_PRECISION_SWITCH * np.sqrt(np.finfo(np.float32).eps)) * self.scale
        for _ in range(max_iter):
            if low and (grad_norm <= switch or failed):
                low = False  # float64 products take over, from x in G again
                if moved:
                    x, value, grad, grad_norm = self._back_in_range(x0, x)
            if grad_norm <= tol * self.scale:
                break
            step = self._descent_direction(x, grad, grad_norm, low)
            new_value, new_grad, new_norm, accepted = self._line_search(x, step, value, grad,
                                                                        grad_norm)
            if accepted is None:
                failed = low  # a float32 direction: float64 products take over
                if failed:
                    continue
                break
            moved = moved or low
            # Newton steps go on while they reduce the gradient: down to round-off,
            # which the Farkas bound divides by tiny q~_jv (and along a separable
            # pair, where the gradient shrinks about e-fold per step).
            at_floor = (grad_norm <= ROUNDOFF_FLOOR * STATIONARITY_RTOL * self.scale
                        and new_norm >= GRADIENT_REDUCTION * grad_norm)
            if new_norm < grad_norm or not at_floor:
                x, value, grad, grad_norm = x + accepted, new_value, new_grad, new_norm
            if at_floor:
                break
        if low and moved:  # max_iter within the float32 steps
            x, value, grad, grad_norm = self._back_in_range(x0, x)
        W = np.asarray(to_host(x), dtype=np.float64).reshape(self.shape)
        if self._evaluator is not self:  # the certificate's gradient norm: float64, host
            grad_norm = float(np.linalg.norm(self.gradient(W)))
        return W, grad_norm

    def _back_in_range(self, x0, x):
        """``x0 + P(x - x0)`` and its ``(value, gradient, ||gradient||)``, ``P`` the
        projection onto the range of the float64 Hessian at ``x`` (``G``):
        truncated CG on ``A z = A (x - x0)`` from zero.

        The steps from float32 products carry their round-off into ``G-perp``,
        where the loss is flat and Newton steps cannot remove it; this one
        solve (the cost of a Newton direction) does, so that ``W~`` stays the
        minimizer in ``G`` to float64 accuracy. ``x0`` lies in ``G``.
        """
        loss, xp = self._products[0], self._evaluator._xp
        W = xp.reshape(x, self.shape)

        def hessian(d):
            return xp.reshape(loss.hessian_product(W, xp.reshape(d, self.shape)), (-1,))

        z = truncated_cg(hessian, hessian(x - x0), rtol=NEWTON_CG_RTOL_MIN,
                         flat=CURVATURE_RTOL * self.scale ** 2,
                         precondition=self._token_preconditioner(loss, W)).x
        x = x0 + z
        value, grad = self._fun(x)
        return x, value, grad, norm(grad)

    def _newton_vector(self, W0):
        """``W0`` flattened, float64, in the evaluator's namespace (a new array)."""
        x = np.asarray(to_host(W0), dtype=np.float64).ravel().copy()
        evaluator = self._evaluator
        if evaluator._on_host:
            return x
        return from_host(x, evaluator._xp, evaluator._namespace[1])

    def _descent_direction(self, x, grad, grad_norm, low=False):
        """The inexact Newton step, or ``-grad`` where it is no descent direction."""
        # Inexact Newton: a loose CG far from the minimizer, tight near it
        # (superlinear convergence for a fraction of the Hessian products).
        rtol = min(NEWTON_CG_RTOL_MAX,
                   np.sqrt(grad_norm / max(self.scale, np.finfo(float).tiny)))
        step = self._centred(self._newton_direction(x, grad, max(rtol, NEWTON_CG_RTOL_MIN),
                                                    low))
        return step if float(grad @ step) < 0 else -grad

    def _line_search(self, x, step, value, grad, grad_norm):
        """Armijo backtracking along ``step``: ``(value, grad, ||grad||, step or None)``."""
        def evaluate(t):
            new_value, new_grad = self._fun(x + t * step)
            return new_value, new_grad, norm(new_grad)

        def resolved_by_gradient(t, evaluation):
            new_value, _, new_norm = evaluation
            return (new_norm < GRADIENT_REDUCTION * grad_norm
                    and new_value <= value + VALUE_ROUNDOFF_RTOL * abs(value))

        t, (new_value, new_grad, new_norm), accepted = armijo(
            evaluate, value, float(grad @ step), max_trials=LINE_SEARCH_TRIALS,
            accept=resolved_by_gradient)
        return new_value, new_grad, new_norm, t * step if accepted else None

    def _centred(self, step):
        """``step`` with its token rows centred: ``G`` lies in that subspace,
        so this only drops round-off."""
        xp, _ = namespace(step)
        step = xp.reshape(step, self.shape)
        return xp.reshape(step - xp.mean(step, axis=0), (-1,))

    def _newton_direction(self, x, grad, rtol=NEWTON_CG_RTOL_MIN, low=False):
        """Truncated CG on ``hess p = -grad``, stopped at (numerically) zero curvature.

        The right-hand side and every Hessian product lie in ``G``, so the
        iterates do; stopping at zero curvature keeps round-off in ``G-perp``
        from being amplified (plain CG on the singular system amplifies it).
        With full effective supports the CG is preconditioned by the tokens'
        curvatures (:meth:`_token_preconditioner`), which keeps ``G``.
        With ``low``, the products and the CG run in low precision.
        """
        loss = self._products[1] if low else self._products[0]
        xp, shape = loss._xp, self.shape
        dtype = loss.H.dtype
        W, rhs = (a if a.dtype == dtype else xp.astype(a, dtype) for a in (x, -grad))
        W = xp.reshape(W, shape)
        # Round-off in a Hessian product is about eps * max_j ||h_j||^2 relative;
        # curvature below CURVATURE_RTOL * scale^2 is indistinguishable from G-perp.
        flat = CURVATURE_RTOL if not low else LOW_PRECISION_FLAT * float(xp.finfo(dtype).eps)
        direction = truncated_cg(
            lambda d: xp.reshape(loss.hessian_product(W, xp.reshape(d, shape)), (-1,)), rhs,
            rtol=rtol, flat=flat * self.scale ** 2,
            precondition=self._token_preconditioner(loss, W)).x
        return direction if direction.dtype == x.dtype else xp.astype(direction, x.dtype)

    def _token_preconditioner(self, loss, W):
        """``r -> C D^-1 r`` with ``D`` the tokens' diagonal curvatures and ``C`` centring.

        Token frequencies spread the Hessian's spectrum over orders of
        magnitude on real corpora. With full effective supports ``G`` is the
        set of centred matrices with rows in the row space of ``H``, which a
        token-wise scaling followed by centring maps to itself (and ``C D^-1 C``
        is positive definite there). Otherwise None (no preconditioner).
        ``D`` sums over the blocks of contexts of ``loss`` at ``W`` (its namespace).
        """
        if loss._outside is not None:
            return None
        xp = loss._xp
        row_weights = (self._row_weights if loss._on_host else
                       from_host(self._row_weights, xp, loss._namespace[1], loss.H.dtype))
        curvature = 0.0
        for rows, q in loss._curvature_blocks(W):
            curvature = curvature + row_weights[rows, ...] @ (q * (1.0 - q))
        curvature = xp.clip(curvature, min=CURVATURE_RTOL * float(xp.max(curvature)))
        curvature[curvature == 0] = 1.0

        def precondition(r):
            R = xp.reshape(r, self.shape)
            R = (R - xp.mean(R, axis=0)) / curvature[:, None]  # C D^-1 C: round-off
            return xp.reshape(R - xp.mean(R, axis=0), (-1,))    # off G kept out

        return precondition
