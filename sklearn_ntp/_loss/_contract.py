"""The loss contract: what every solver and the geometry ask of a data fit.

A data fit is the NTP cross-entropy of fixed distinct contexts
(:class:`~sklearn_ntp._data._ntp_data.NTPData`), optionally under a
:class:`Restriction`: softmax over effective supports ``S~_j`` only, logit
offsets ``b_jv``, other context weights. Solvers only call the methods of
:class:`Datafit`; how logits, gradients and Hessian products are evaluated
(over blocks of contexts sized by a memory budget, on the host or an
Array API device) is the data fit's business, in :meth:`Datafit.logits`
and :meth:`Datafit.logits_adjoint`.

The contract follows scikit-learn's ``LinearModelLoss`` (value, gradient,
their pair, Hessian products) and skglm's datafits (the smoothness constant
that sets the step, a view on a subset of the rows for stochastic solvers).
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, eq=False)
class Restriction:
    """Where the softmax lives, how logits are shifted, and how contexts weigh.

    Parameters
    ----------
    mask : ndarray of bool, shape (n_contexts, n_tokens), default=None
        The effective supports ``S~_j`` (they contain the supports ``S_j``);
        None: every token (the full cross-entropy).
    offsets : tuple of ndarrays (rows, columns, values), default=None
        Logit offsets ``b_jv`` on a few distinct pairs (zero elsewhere).
    weights : ndarray of shape (n_contexts,), default=None
        Context weights replacing ``pi_j`` (e.g. the draws of a minibatch).
    """

    mask: np.ndarray | None = None
    offsets: tuple | None = None
    weights: np.ndarray | None = None

    @property
    def is_full(self):
        """Whether the softmax runs over every token (no mask, or an all-True one)."""
        return self.mask is None or bool(np.all(self.mask))

    def rows(self, index):
        """The restriction of the contexts ``index`` (offsets are not carried over)."""
        if self.offsets is not None:
            raise ValueError("A restriction with logit offsets has no row view.")
        return Restriction(None if self.mask is None else self.mask[index])


@runtime_checkable
class Datafit(Protocol):
    """What a data fit provides (``W`` of shape ``shape``, in the fit's namespace).

    Attributes
    ----------
    data : NTPData
        The distinct contexts.
    shape : tuple of int
        ``(n_tokens, n_features)``: the shape of ``W`` and of every gradient.
    entropy : float
        The entropy lower bound of the data.
    context_norms : ndarray of shape (n_contexts,)
        ``||h_j||`` on the host.
    """

    def logits(self, W, out=None, rows=None):
        """``H[rows] W^T``: the only product of contexts (a slice; all by default) and a decoder."""

    def logits_adjoint(self, R, row_scale=None, rows=None):
        """``R^T diag(row_scale) H[rows]`` (n_tokens, n_features): the adjoint of ``logits``."""

    def value(self, W):
        """The loss at ``W``."""

    def gradient(self, W):
        """The gradient at ``W``."""

    def value_and_grad(self, W):
        """``(value, gradient)`` at ``W`` from one pass over the logits."""

    def softmax(self, W):
        """Probabilities ``q_j`` at ``W`` (zero off the effective supports)."""

    def softmax_blocks(self, W):
        """Yield ``(rows, q_rows)``: the softmax at ``W`` block by block (rows a slice)."""

    def hessian_product(self, W, V):
        """The Hessian at ``W`` applied to the direction ``V``."""

    def smoothness(self, alpha=0.0):
        """Lipschitz constant of the gradient (plus ``alpha``), whatever ``W``."""

    def rows(self, index, weights, targets=None):
        """The same data fit on the contexts ``index`` with weights ``weights``."""
