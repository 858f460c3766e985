"""Least squares with a positive semidefinite matrix factored by pivoted Cholesky.

``A = P L L^T P^T`` with ``L = [L1; L2]`` of shape (n, r), ``L1`` lower
triangular and ``r`` the numerical rank (LAPACK ``?pstrf``, about the cost of
a Cholesky factorization and far cheaper than an eigendecomposition). With
``S = L2 L1^{-1}``, ``L^T L = L1^T C L1`` where ``C = I + S^T S``; solves with
``C`` go through whichever of ``C`` and ``I + S S^T`` is smaller (Woodbury),
so a nearly full-rank ``A`` costs little beyond its factorization.
"""

import numpy as np
import scipy.linalg as la
from scipy.linalg import lapack


class PivotedCholesky:
    """Pseudo-inverse solves with a PSD matrix through its pivoted Cholesky factor.

    Parameters
    ----------
    A : ndarray of shape (n, n)
        Symmetric positive semidefinite; overwritten.
    rtol : float
        Pivots stop below ``rtol * max(diag(A))``: the rank cut-off.

    Attributes
    ----------
    rank : int
        Numerical rank ``r``.
    """

    def __init__(self, A, rtol):
        n = A.shape[0]
        scale = max(float(np.max(np.diag(A), initial=0.0)), np.finfo(float).tiny)
        if n:
            factor, piv, rank, _ = lapack.dpstrf(A, tol=rtol * scale, lower=1, overwrite_a=1)
            self.perm = piv - 1
            self.rank = int(rank)
        else:
            factor, self.perm, self.rank = A, np.zeros(0, dtype=int), 0
        r = self.rank
        # Views, no copies: the triangular solves read only the lower
        # triangle of L1, and columns beyond the rank (the unfactored Schur
        # complement) are never read.
        self._L1, self._L2 = factor[:r, :r], factor[r:, :r]
        # S^T = L1^{-T} L2^T, of shape (r, n - r).
        self._St = la.solve_triangular(self._L1, self._L2.T, lower=True, trans="T")
        self._C = None
        if 0 < n - r:
            small = self._St.T @ self._St if n - r <= r else self._St @ self._St.T
            small[np.diag_indices_from(small)] += 1.0
            self._C = la.cho_factor(small, lower=True)

    def _solve_C(self, v):
        """``C^{-1} v`` with ``C = I + S^T S``."""
        if self._C is None:
            return v
        if self._St.shape[1] > self.rank:
            return la.cho_solve(self._C, v)
        return v - self._St @ la.cho_solve(self._C, self._St.T @ v)

    def lstsq(self, e):
        """``L^+ P^T e``: the least-squares solution ``y`` of ``L y = P^T e``.

        ``e`` of shape (n,) or (n, k). When ``A = M M^T``, ``P^T M = L U^T`` for
        an orthonormal basis ``U`` of the row space of ``M``: for ``e = M x``
        the result is ``U^T x``, whose norm is that of ``x`` projected there.
        """
        e = np.asarray(e, dtype=np.float64)[self.perm]
        r = self.rank
        z = self._solve_C(e[:r] + self._St @ e[r:])
        return la.solve_triangular(self._L1, z, lower=True)

    def basic_solution(self, e):
        """A least-squares solution ``c`` of ``A c = e``, zero off the ``r`` pivots.

        Not the minimum-norm one: ``A c`` is the orthogonal projection of ``e``
        onto the range of ``A``, which is all a combination ``B c`` depends on.
        """
        c = np.zeros_like(np.asarray(e, dtype=np.float64))
        c[self.perm[:self.rank]] = la.solve_triangular(self._L1, self.lstsq(e), lower=True,
                                                       trans="T")
        return c

    def pinv_solve(self, b):
        """``A^+ b``: the minimum-norm least-squares solution of ``A x = b``."""
        y = self.lstsq(b)  # x = (L^T)^+ y = L (L^T L)^{-1} y
        t = la.solve_triangular(self._L1, y, lower=True, trans="T")
        t = la.solve_triangular(self._L1, self._solve_C(t), lower=True)
        x = np.empty_like(np.asarray(b, dtype=np.float64))
        x[self.perm] = np.concatenate([np.tril(self._L1) @ t, self._L2 @ t])
        return x
