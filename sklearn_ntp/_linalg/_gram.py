"""The Gram matrix ``K = H H^T`` of wide embeddings and its Cholesky factor, once.

When the contexts are fewer than the features (``m < d``), every computation
of the geometry that touches ``H`` twice can go through ``K``: the rank
decision (its Cholesky pivots), the map of decoders back to the features
(``W = (M K^-1) H``), the NTP-SVM's dual and its certificates (logits
``A K``). Forming ``K`` costs ``m^2 d`` and factoring it ``m^3 / 3``; a
:class:`GramFactor` does each at most once and is handed to whoever needs
them, so one data set pays for them once.
"""

from functools import cached_property

import numpy as np
import scipy.linalg as la


class GramFactor:
    """``K = H H^T`` and its Cholesky factor ``L`` (``K = L L^T``), computed on first use.

    Parameters
    ----------
    H : ndarray of shape (n_contexts, n_features)
        Embeddings; kept by reference, so :meth:`belongs_to` can tell whether
        other embeddings are these.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._linalg._gram import GramFactor
    >>> gram = GramFactor(np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]]))
    >>> gram.matrix
    array([[2., 0.],
           [0., 4.]])
    >>> round(gram.pivot_ratio, 12), gram.solve(np.array([2.0, 4.0]))
    (0.5, array([1., 1.]))
    """

    def __init__(self, H):
        self.H = H

    def belongs_to(self, H):
        """Whether ``H`` is the very array this factor was built from."""
        return H is self.H

    @cached_property
    def matrix(self):
        """``K = H H^T``, of shape (n_contexts, n_contexts)."""
        H = np.asarray(self.H, dtype=np.float64)
        return H @ H.T

    @cached_property
    def cholesky(self):
        """Lower-triangular ``L`` with ``K = L L^T`` (zero above the diagonal),
        or None when ``K`` is not numerically positive definite."""
        with np.errstate(all="ignore"):
            try:
                L = la.cholesky(self.matrix, lower=True)
            except la.LinAlgError:
                return None
        return L if np.all(np.isfinite(L)) else None

    @property
    def pivot_ratio(self):
        """Smallest over largest Cholesky pivot ``L_ii^2`` (about ``1 / cond(K)``;
        0 when ``K`` is not positive definite)."""
        if self.cholesky is None or not len(self.cholesky):
            return 0.0
        pivots = np.diag(self.cholesky) ** 2
        return float(pivots.min() / pivots.max())

    def solve(self, b):
        """``K^-1 b`` through the Cholesky factor (which must exist)."""
        return la.cho_solve((self.cholesky, True), b)

    def rescaled(self, H, scale):
        """The factor of ``H = self.H / scale``, from this one's products.

        Products already formed are divided (``K / scale^2``, ``L / scale``:
        ``O(m^2)``) instead of formed again; the others are formed on first use.
        """
        scaled = GramFactor(H)
        if "matrix" in self.__dict__:
            scaled.matrix = self.matrix / scale**2
        if "cholesky" in self.__dict__:
            scaled.cholesky = None if self.cholesky is None else self.cholesky / scale
        return scaled
