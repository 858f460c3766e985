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

#: Curvature, relative to ``sum_j pi_j ||h_j||^2``, below which a CG direction
#: counts as flat (in ``G-perp``) and ends the Newton solve.
CURVATURE_RTOL = 1e-10
#: Stationarity accepted for ``W~``: ``||grad CE~||_F`` relative to
#: ``sqrt(sum_j pi_j ||h_j||^2)``, the gradient's scale.
STATIONARITY_RTOL = 1e-8


class RestrictedLoss:
    """``CE~`` over the effective supports ``mask``, with gradient and Hessian products.

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
        self.H = np.asarray(data.embeddings, dtype=np.float64)
        self.pi = np.asarray(data.weights, dtype=np.float64)
        P = data.probabilities.tocoo()
        # p_jz on the supports only: sparse, and no (m, V) copy.
        self._support = (P.row, P.col, P.data)
        self._target = (P.multiply(self.pi[:, None]).T @ self.H)  # sum_j pi_j p_j h_j^T
        self.mask = mask
        self._full = bool(mask.all())
        self.offsets = offsets
        self.shape = (data.n_tokens, data.n_features)
        # pi_j ||h_j||^2: the scale of the gradient and of every curvature.
        self._row_weights = self.pi * np.sum(self.H ** 2, axis=1)
        self.scale = float(np.sqrt(self._row_weights.sum()))
        self._point = self._q = self._weighted_q = None

    def _logits(self, W):
        """``W h_j + b_j`` on ``S~_j``, ``-inf`` elsewhere."""
        Z = self.H @ W.T
        if self.offsets is not None:
            rows, columns, values = self.offsets
            Z[rows, columns] += values
        return Z if self._full else np.where(self.mask, Z, -np.inf)

    def _evaluate(self, W):
        """``(CE~(W), q~)`` from one pass over the logits."""
        Z = self._logits(W)
        zmax = Z.max(axis=1, keepdims=True)
        rows, columns, p = self._support
        in_support = np.bincount(rows, p * Z[rows, columns], minlength=len(Z))
        Z -= zmax
        np.exp(Z, out=Z)
        total = Z.sum(axis=1, keepdims=True)
        Z /= total
        value = float(self.pi @ (zmax[:, 0] + np.log(total[:, 0]) - in_support))
        return value, Z

    def softmax(self, W):
        """``q~_j``: softmax of the logits of ``W`` over ``S~_j`` (zero elsewhere)."""
        return self._evaluate(W)[1]

    def value(self, W):
        """``CE~(W)``."""
        return self._evaluate(W)[0]

    def gradient(self, W):
        """``sum_j pi_j (q~_j - p_j) h_j^T``."""
        return (self.softmax(W) * self.pi[:, None]).T @ self.H - self._target

    def _fun(self, x):
        value, q = self._evaluate(x.reshape(self.shape))
        # pi_j q~_j, kept for the Hessian products at this point.
        self._point, self._q, self._weighted_q = x.copy(), q, q * self.pi[:, None]
        return value, (self._weighted_q.T @ self.H - self._target).ravel()

    def _softmax_at(self, x):
        """``q~`` at the flattened ``x``, from the last evaluation when it was there."""
        if self._point is None or not np.array_equal(x, self._point):
            self._fun(x)
        return self._q

    def _hessp(self, x, direction):
        q = self._softmax_at(x)
        # In place: the (m, V) passes, not the two products, dominate the cost.
        dZ = self.H @ direction.reshape(self.shape).T
        dZ -= np.einsum("jv,jv->j", q, dZ)[:, None]
        dZ *= self._weighted_q
        return (dZ.T @ self.H).ravel()

    def minimize(self, W0, max_iter=200, tol=0.0):
        """Newton-CG with backtracking from ``W0`` in ``G``; returns ``(W~, ||grad||_F)``.

        It stops once ``||grad||_F <= tol * scale``, or else at round-off.

        The Hessian is singular on ``G-perp``. The truncated CG of
        :meth:`_newton_direction` stops at flat curvature, so the steps stay
        in ``G``; scipy's ``Newton-CG`` gives up on such Hessians and its
        trust-region variants drift into ``G-perp`` or stall. Near the
        minimizer the loss no longer resolves the decrease, so a step is also
        accepted when it halves the gradient norm, and the iteration ends
        at the first step from a stationary point that does not.
        """
        x = np.asarray(W0, dtype=np.float64).ravel().copy()
        value, grad = self._fun(x)
        norm = float(np.linalg.norm(grad))
        for _ in range(max_iter):
            if norm <= tol * self.scale:
                break
            # Inexact Newton: a loose CG far from the minimizer, tight near it
            # (superlinear convergence for a fraction of the Hessian products).
            rtol = min(0.1, np.sqrt(norm / max(self.scale, np.finfo(float).tiny)))
            step = self._centred(self._newton_direction(x, grad, max(rtol, 1e-10)))
            slope = float(grad @ step)
            if not slope < 0:
                step, slope = -grad, -norm ** 2
            accepted = False
            for _ in range(40):
                new_value, new_grad = self._fun(x + step)
                new_norm = float(np.linalg.norm(new_grad))
                if (new_value <= value + 1e-4 * slope
                        or (new_norm < 0.5 * norm and new_value <= value + 1e-13 * abs(value))):
                    accepted = True
                    break
                step, slope = 0.5 * step, 0.5 * slope
            if not accepted:
                break
            # Newton steps go on while they halve the gradient: down to round-off,
            # which the Farkas bound divides by tiny q~_jv (and along a separable
            # pair, where the gradient shrinks about e-fold per step).
            at_floor = norm <= 1e-3 * STATIONARITY_RTOL * self.scale and new_norm >= 0.5 * norm
            if new_norm < norm or not at_floor:
                x, value, grad, norm = x + step, new_value, new_grad, new_norm
            if at_floor:
                break
        return x.reshape(self.shape), norm

    def _centred(self, step):
        """``step`` with its token rows centred: ``G`` lies in that subspace,
        so this only drops round-off."""
        step = step.reshape(self.shape)
        return (step - step.mean(axis=0)).ravel()

    def _newton_direction(self, x, grad, rtol=1e-10):
        """Truncated CG on ``hess p = -grad``, stopped at (numerically) zero curvature.

        The right-hand side and every Hessian product lie in ``G``, so the
        iterates do; stopping at zero curvature keeps round-off in ``G-perp``
        from being amplified (plain CG on the singular system amplifies it).
        With full effective supports the CG is preconditioned by the tokens'
        curvatures (:meth:`_token_preconditioner`), which keeps ``G``.
        """
        precondition = self._token_preconditioner(x)
        p, r = np.zeros_like(grad), -grad
        z = precondition(r)
        d, rz = z.copy(), float(r @ z)
        # Round-off in a Hessian product is about eps * max_j ||h_j||^2 relative;
        # curvature below CURVATURE_RTOL * scale^2 is indistinguishable from G-perp.
        floor = CURVATURE_RTOL * self.scale ** 2
        for _ in range(grad.size):
            if not rz > 0:  # a residual at round-off, with no direction left in G
                break
            Ad = self._hessp(x, d)
            curvature = float(d @ Ad)
            if curvature <= floor * float(d @ d):
                break
            alpha = rz / curvature
            p += alpha * d
            r -= alpha * Ad
            if np.linalg.norm(r) <= rtol * np.linalg.norm(grad):
                break
            z = precondition(r)
            rz_new = float(r @ z)
            d = z + (rz_new / rz) * d
            rz = rz_new
        return p

    def _token_preconditioner(self, x):
        """``r -> C D^-1 r`` with ``D`` the tokens' diagonal curvatures and ``C`` centring.

        Token frequencies spread the Hessian's spectrum over orders of
        magnitude on real corpora. With full effective supports ``G`` is the
        set of centred matrices with rows in the row space of ``H``, which a
        token-wise scaling followed by centring maps to itself (and ``C D^-1 C``
        is positive definite there). Otherwise the identity.
        """
        if not self._full:
            return lambda r: r
        q = self._softmax_at(x)
        curvature = self._row_weights @ (q * (1.0 - q))
        curvature = np.maximum(curvature, CURVATURE_RTOL * curvature.max(initial=0.0))
        curvature[curvature == 0] = 1.0

        def precondition(r):
            R = r.reshape(self.shape)
            R = (R - R.mean(axis=0)) / curvature[:, None]  # C D^-1 C: round-off
            return (R - R.mean(axis=0)).ravel()            # off G kept out

        return precondition
