"""The cross-entropy restricted to the effective supports, and its minimizer ``W~``.

``CE~(W) = sum_j pi_j [ logsumexp_{z in S~_j} (W h_j + b_j)_z``
``- sum_{z in S_j} p_jz (W h_j + b_j)_z ]``

with logit offsets ``b`` (zero unless given; :mod:`~sklearn_ntp._geometry._pair_bounds` uses them).

Its gradient ``sum_j pi_j (q~_j - p_j) h_j^T`` (``q~_j`` the softmax over
``S~_j``, zero elsewhere) lies in ``G``, and so does every Hessian-vector
product: Newton iterates started in ``G`` stay in ``G`` and converge to the
unique minimizer there (Newton-CG with backtracking). Products cost
``O(m V d)``; no (V d)-sized matrix is formed.
"""

import numpy as np

from .._linalg._cg import truncated_cg
from .._linalg._line_search import armijo
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


class RestrictedLoss(NTPLoss):
    """``CE~`` over the effective supports ``mask`` (float64), and its minimizer.

    Parameters
    ----------
    data : NTPData
        Distinct contexts (their supports ``S_j`` must lie inside ``mask``).
    mask : ndarray of bool, shape (n_contexts, n_tokens)
        The effective supports ``S~_j``.
    offsets : tuple of ndarrays (rows, columns, values), default=None
        Logit offsets ``b_jv`` on a few pairs (zero elsewhere).
    """

    def __init__(self, data, mask, offsets=None):
        super().__init__(data, np.float64, restriction=Restriction(mask, offsets))
        self.mask = mask
        self.offsets = offsets
        self.pi = self.weights
        # pi_j ||h_j||^2: the scale of the gradient and of every curvature.
        self._row_weights = self.pi * self.context_norms ** 2
        self.scale = float(np.sqrt(self._row_weights.sum()))

    def _fun(self, x):
        value, grad = self.value_and_grad(x.reshape(self.shape))
        return value, grad.ravel()

    def _hessp(self, x, direction):
        return self.hessian_product(x.reshape(self.shape),
                                    direction.reshape(self.shape)).ravel()

    def minimize(self, W0, max_iter=200, tol=0.0):
        """Newton-CG with backtracking from ``W0`` in ``G``; returns ``(W~, ||grad||_F)``.

        It stops once ``||grad||_F <= tol * scale``, or else at round-off.

        The Hessian is singular on ``G-perp``. The truncated CG of
        :meth:`_newton_direction` stops at flat curvature, so the steps stay
        in ``G``; scipy's ``Newton-CG`` gives up on such Hessians and its
        trust-region variants drift into ``G-perp`` or stall. Near the
        minimizer the loss no longer resolves the decrease, so a step is also
        accepted when it reduces the gradient norm by ``GRADIENT_REDUCTION``
        (without raising the loss beyond ``VALUE_ROUNDOFF_RTOL``), and the
        iteration ends at the first step from a stationary point that does not.
        """
        x = np.asarray(W0, dtype=np.float64).ravel().copy()
        value, grad = self._fun(x)
        norm = float(np.linalg.norm(grad))
        for _ in range(max_iter):
            if norm <= tol * self.scale:
                break
            step = self._descent_direction(x, grad, norm)
            new_value, new_grad, new_norm, accepted = self._line_search(x, step, value, grad,
                                                                        norm)
            if accepted is None:
                break
            # Newton steps go on while they reduce the gradient: down to round-off,
            # which the Farkas bound divides by tiny q~_jv (and along a separable
            # pair, where the gradient shrinks about e-fold per step).
            at_floor = (norm <= ROUNDOFF_FLOOR * STATIONARITY_RTOL * self.scale
                        and new_norm >= GRADIENT_REDUCTION * norm)
            if new_norm < norm or not at_floor:
                x, value, grad, norm = x + accepted, new_value, new_grad, new_norm
            if at_floor:
                break
        return x.reshape(self.shape), norm

    def _descent_direction(self, x, grad, norm):
        """The inexact Newton step, or ``-grad`` where it is no descent direction."""
        # Inexact Newton: a loose CG far from the minimizer, tight near it
        # (superlinear convergence for a fraction of the Hessian products).
        rtol = min(NEWTON_CG_RTOL_MAX, np.sqrt(norm / max(self.scale, np.finfo(float).tiny)))
        step = self._centred(self._newton_direction(x, grad, max(rtol, NEWTON_CG_RTOL_MIN)))
        return step if float(grad @ step) < 0 else -grad

    def _line_search(self, x, step, value, grad, norm):
        """Armijo backtracking along ``step``: ``(value, grad, ||grad||, step or None)``."""
        def evaluate(t):
            new_value, new_grad = self._fun(x + t * step)
            return new_value, new_grad, float(np.linalg.norm(new_grad))

        def resolved_by_gradient(t, evaluation):
            new_value, _, new_norm = evaluation
            return (new_norm < GRADIENT_REDUCTION * norm
                    and new_value <= value + VALUE_ROUNDOFF_RTOL * abs(value))

        t, (new_value, new_grad, new_norm), accepted = armijo(
            evaluate, value, float(grad @ step), max_trials=LINE_SEARCH_TRIALS,
            accept=resolved_by_gradient)
        return new_value, new_grad, new_norm, t * step if accepted else None

    def _centred(self, step):
        """``step`` with its token rows centred: ``G`` lies in that subspace,
        so this only drops round-off."""
        step = step.reshape(self.shape)
        return (step - step.mean(axis=0)).ravel()

    def _newton_direction(self, x, grad, rtol=NEWTON_CG_RTOL_MIN):
        """Truncated CG on ``hess p = -grad``, stopped at (numerically) zero curvature.

        The right-hand side and every Hessian product lie in ``G``, so the
        iterates do; stopping at zero curvature keeps round-off in ``G-perp``
        from being amplified (plain CG on the singular system amplifies it).
        With full effective supports the CG is preconditioned by the tokens'
        curvatures (:meth:`_token_preconditioner`), which keeps ``G``.
        """
        # Round-off in a Hessian product is about eps * max_j ||h_j||^2 relative;
        # curvature below CURVATURE_RTOL * scale^2 is indistinguishable from G-perp.
        return truncated_cg(lambda d: self._hessp(x, d), -grad, rtol=rtol,
                            flat=CURVATURE_RTOL * self.scale ** 2,
                            precondition=self._token_preconditioner(x)).x

    def _token_preconditioner(self, x):
        """``r -> C D^-1 r`` with ``D`` the tokens' diagonal curvatures and ``C`` centring.

        Token frequencies spread the Hessian's spectrum over orders of
        magnitude on real corpora. With full effective supports ``G`` is the
        set of centred matrices with rows in the row space of ``H``, which a
        token-wise scaling followed by centring maps to itself (and ``C D^-1 C``
        is positive definite there). Otherwise None (no preconditioner).
        """
        if self._outside is not None:
            return None
        curvature = self._token_curvatures(x.reshape(self.shape))
        curvature = np.maximum(curvature, CURVATURE_RTOL * curvature.max(initial=0.0))
        curvature[curvature == 0] = 1.0

        def precondition(r):
            R = r.reshape(self.shape)
            R = (R - R.mean(axis=0)) / curvature[:, None]  # C D^-1 C: round-off
            return (R - R.mean(axis=0)).ravel()            # off G kept out

        return precondition

    def _token_curvatures(self, W):
        """``sum_j pi_j ||h_j||^2 q_jv (1 - q_jv)`` for every token ``v``, at ``W``."""
        if self._cache_fits:  # the softmax kept for the Hessian products at W
            q = self._softmax_and_weighted(W)[0]
            return self._row_weights @ (q * (1.0 - q))
        curvature = np.zeros(self.shape[0])
        for rows, q in self.softmax_blocks(W):
            curvature += self._row_weights[rows] @ (q * (1.0 - q))
        return curvature
