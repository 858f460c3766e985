"""The ridge penalty ``(alpha / 2) ||W||_F^2`` added to the NTP cross-entropy.

With ``alpha = 0`` the objective is the paper's unregularized NTP loss, whose
infimum (the entropy) is not attained; with ``alpha > 0`` the objective is
strongly convex and its minimizer traces the regularization path of
Theorem 1 as ``alpha -> 0``.

On contexts rescaled column-wise by powers of two (:mod:`sklearn_ntp._data._scaling`)
the same penalty of the given decoder ``W = W' 2^-k`` is
``sum_j (alpha 4^-k_j / 2) ||W'_j||^2``: one strength per column.
"""

import numpy as np

from .._utils._array_api import from_host, namespace


class L2Penalty:
    """Ridge penalty ``(alpha / 2) ||W||_F^2``; ``alpha = 0`` is no penalty.

    Parameters
    ----------
    alpha : float
        Nonnegative regularization strength.
    exponents : ndarray of int of shape (n_features,), default=None
        The penalty is that of ``W' 2^-exponents`` (column-wise): the decoder
        of contexts that were divided column-wise by ``2^exponents``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._loss._penalty import L2Penalty
    >>> penalty = L2Penalty(0.5)
    >>> W = np.array([[1.0, 2.0], [0.0, -2.0]])
    >>> penalty.value(W)
    2.25
    >>> penalty.grad(W)
    array([[ 0.5,  1. ],
           [ 0. , -1. ]])
    >>> L2Penalty(0.5, exponents=np.array([0, 1])).value(W)  # of [[1, 1], [0, -1]]
    0.75
    """

    def __init__(self, alpha, exponents=None):
        if alpha < 0:
            raise ValueError(f"alpha must be nonnegative, got {alpha}.")
        self.alpha = float(alpha)
        # Exact powers of two: no strength over- or underflows where alpha 4^-k fits.
        self.strength = (self.alpha if exponents is None or self.alpha == 0.0
                         else np.ldexp(self.alpha, -2 * np.asarray(exponents)))
        self._on_device = None

    @property
    def largest_strength(self):
        """The largest per-column strength (its share of the smoothness constant)."""
        return float(np.max(self.strength))

    def _strength_like(self, W):
        if np.ndim(self.strength) == 0:
            return W.dtype.type(self.strength) if isinstance(W, np.ndarray) else self.strength
        if isinstance(W, np.ndarray):
            return self.strength.astype(W.dtype)
        if self._on_device is None:
            xp, _ = namespace(W)
            self._on_device = from_host(self.strength, xp, W.device, W.dtype)
        return self._on_device

    def value(self, W):
        """Penalty value ``(alpha / 2) ||W||_F^2``."""
        if self.alpha == 0.0:
            return 0.0
        xp, on_host = namespace(W)
        scalar = np.ndim(self.strength) == 0
        if not on_host:  # a 0-d array: no device sync
            squares = W * W if scalar else W * W * self._strength_like(W)
            return 0.5 * (self.strength if scalar else 1.0) * xp.sum(squares)
        if scalar:
            return 0.5 * self.alpha * float(np.vdot(W, W))
        return 0.5 * float(np.vdot(W * self._strength_like(W), W))

    def grad(self, W):
        """Penalty gradient ``alpha W`` (a new array of ``W``'s shape and dtype)."""
        # A Python float keeps the dtype of W in every Array API namespace.
        return W * self._strength_like(W)
