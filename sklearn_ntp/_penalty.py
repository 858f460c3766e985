"""The ridge penalty ``(alpha / 2) ||W||_F^2`` added to the NTP cross-entropy.

With ``alpha = 0`` the objective is the paper's unregularized NTP loss, whose
infimum (the entropy) is not attained; with ``alpha > 0`` the objective is
strongly convex and its minimizer traces the regularization path of
Theorem 1 as ``alpha -> 0``.
"""

import numpy as np

from ._array_api import namespace


class L2Penalty:
    """Ridge penalty ``(alpha / 2) ||W||_F^2``; ``alpha = 0`` is no penalty.

    Parameters
    ----------
    alpha : float
        Nonnegative regularization strength.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._penalty import L2Penalty
    >>> penalty = L2Penalty(0.5)
    >>> W = np.array([[1.0, 2.0], [0.0, -2.0]])
    >>> penalty.value(W)
    2.25
    >>> penalty.grad(W)
    array([[ 0.5,  1. ],
           [ 0. , -1. ]])
    """

    def __init__(self, alpha):
        if alpha < 0:
            raise ValueError(f"alpha must be nonnegative, got {alpha}.")
        self.alpha = float(alpha)

    def value(self, W):
        """Penalty value ``(alpha / 2) ||W||_F^2``."""
        if self.alpha == 0.0:
            return 0.0
        xp, on_host = namespace(W)
        if not on_host:  # a 0-d array: no device sync
            return 0.5 * self.alpha * xp.sum(W * W)
        return 0.5 * self.alpha * float(np.vdot(W, W))

    def grad(self, W):
        """Penalty gradient ``alpha W`` (a new array of ``W``'s shape and dtype)."""
        # A Python float keeps the dtype of W in every Array API namespace.
        return W * W.dtype.type(self.alpha) if isinstance(W, np.ndarray) else W * self.alpha
