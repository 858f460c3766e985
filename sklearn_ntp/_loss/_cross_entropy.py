"""The NTP cross-entropy over distinct contexts: the one implementation of the loss contract.

``CE(W) = sum_j pi_j [ logsumexp_{z in S~_j} l_jz - sum_{z in S_j} p_jz l_jz ]``,
``l_j = W h_j + b_j``,
``grad CE(W) = sum_j pi_j (q_j - p_j) h_j^T``, ``q_j`` the softmax over ``S~_j``

with the effective supports ``S~_j`` (every token unless restricted), logit
offsets ``b_j`` (zero unless given) and weights ``pi_j`` of a
:class:`~sklearn_ntp._loss._contract.Restriction`.

Everything goes through log-sum-exp, so no norm of ``W`` overflows; the sparse
``P`` is only ever touched at its nonzeros. Contexts meet a decoder in two
methods only, :meth:`NTPLoss.logits` (``H W^T``) and
:meth:`NTPLoss.logits_adjoint` (``R^T H``): that is where another back-end
(block-wise, on a device) evaluates them.

The loss runs in any Array API namespace (``xp``, on ``device``): the sparse
``P`` is turned into flat indices and weights on the host once, so that every
iteration is dense products, a gather and element-wise functions on the device.
Restrictions (masks, offsets) and Hessian products run on the host.
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.utils._array_api import _is_numpy_namespace

from .._data._ntp_data import NTPData
from .._linalg._spectral import largest_gram_eigenvalue
from .._utils._array_api import from_host, namespace, scalar
from ._contract import Restriction


class LossPoint(NamedTuple):
    """The loss at one ``W``: raw logits ``H W^T``, value, gradient, softmax ``q``
    and log-normalizers ``logsumexp_{z in S~_j}`` of the (offset) logits."""

    W: np.ndarray
    logits: np.ndarray
    value: float
    gradient: np.ndarray
    probabilities: np.ndarray
    log_normalizer: np.ndarray


def log_softmax(logits):
    """Row-wise log-softmax via log-sum-exp (finite for finite logits)."""
    xp, _ = namespace(logits)
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax(logits):
    """Row-wise softmax, stable at any scale of the logits."""
    xp, _ = namespace(logits)
    return xp.exp(log_softmax(logits))


class NTPLoss:
    """The NTP cross-entropy of fixed distinct contexts (the :class:`~._contract.Datafit`).

    Parameters
    ----------
    data : NTPData
        Distinct contexts (H, P, pi).
    dtype : numpy dtype, default=None
        Working precision; defaults to the dtype of the embeddings.
    xp : Array API namespace, default=None
        Namespace of the iterates ``W``; NumPy by default. Values are then
        0-d arrays of ``xp`` (no device sync) instead of floats.
    device : device, default=None
        Device of the iterates in ``xp``.
    restriction : Restriction, default=None
        Effective supports (which must contain the supports of ``P``), logit
        offsets and weights; None: the full cross-entropy.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> from sklearn_ntp._loss._cross_entropy import NTPLoss
    >>> loss = NTPLoss(aggregate_contexts(np.eye(2), [0, 1]))
    >>> round(loss.value(np.zeros((2, 2))), 6)  # log 2
    0.693147
    """

    def __init__(self, data, dtype=None, xp=None, device=None, *, restriction=None):
        restriction = Restriction() if restriction is None else restriction
        dtype = np.dtype(dtype or data.embeddings.dtype)
        self._on_host = xp is None or _is_numpy_namespace(xp)
        if not (self._on_host or restriction.is_full and restriction.offsets is None):
            raise ValueError("Effective supports and logit offsets are evaluated on the "
                             "host only (NumPy arrays).")
        P, rows = data.probabilities, data.support_rows
        pi = np.asarray(data.weights if restriction.weights is None else restriction.weights,
                        dtype=np.float64)
        H = np.ascontiguousarray(data.embeddings, dtype=dtype)
        # Flat positions of P's nonzeros in the (m, V) logits: cheaper than 2-D indexing.
        flat = rows * data.n_tokens + P.indices
        # pi_j p_jz at the nonzeros of P: the only place P enters loss and gradient.
        target = (pi[rows] * P.data).astype(dtype)
        # sum_j pi_j p_j h_j^T: the part of the gradient that does not depend on W.
        target_term = np.asarray(
            (sp.csr_matrix((target, P.indices, P.indptr), shape=P.shape).T @ H), dtype=dtype)
        self.data, self.restriction = data, restriction
        self.entropy = data.entropy
        self.context_norms = data.context_norms
        self.shape = (data.n_tokens, data.n_features)
        # Tokens outside the effective supports (None: none), whose logits are -inf.
        self._outside = None if restriction.is_full else ~np.asarray(restriction.mask)
        self._offsets = restriction.offsets
        self._namespace, self._dtype = (xp, device), dtype
        xp = np if self._on_host else xp
        # The passes over the logits reuse one (m, V) buffer on the host: a fresh
        # one per iteration costs page faults comparable to the softmax itself.
        self._buffer = (np.empty((data.n_contexts, data.n_tokens), dtype=dtype)
                        if self._on_host else None)
        to_xp = (lambda a: a) if self._on_host else (lambda a: from_host(a, xp, device))
        self.H, self._flat, self._target, self._target_term = (
            to_xp(a) for a in (H, flat, target, target_term))
        self._pi = to_xp(pi.astype(dtype))
        self._ones = to_xp(np.ones(data.n_tokens, dtype=dtype))
        self._xp = xp
        # The last pass (host): (W, exponentials, row sums) and, once a Hessian
        # product asks, (q, pi q) at that W.
        self._last = self._curvature = None

    @property
    def weights(self):
        """The context weights ``pi_j`` of the loss (those of the restriction, if any)."""
        return self._pi

    def logits(self, W, out=None):
        """Logits ``H W^T`` of shape (n_contexts, n_tokens), into ``out`` if given."""
        return self.H @ W.T if out is None else np.matmul(self.H, W.T, out=out)

    def logits_adjoint(self, R, row_scale=None):
        """``R^T diag(row_scale) H``: the gradient of ``<R, H W^T>`` in ``W``."""
        return R.T @ (self.H if row_scale is None else self.H * row_scale[:, None])

    def _gather(self, Z):
        """Logits at the nonzeros of ``P``."""
        return self._xp.take(self._xp.reshape(Z, (-1,)), self._flat)

    def _pass(self, W, logits=None):
        """One pass over the logits: ``(value, E, row sums, row maxima)``.

        ``E`` holds ``exp(logit - row max)`` on the effective supports and 0
        elsewhere (in the host buffer: valid until the next pass).
        """
        xp = self._xp
        if not self._on_host:
            Z = self.logits(W) if logits is None else logits
        elif logits is None:
            Z = self.logits(W, out=self._buffer)
        else:
            Z = self._buffer
            np.copyto(Z, logits)
        if self._offsets is not None:
            rows, columns, values = self._offsets
            Z[rows, columns] += values
        z_target = self._gather(Z)
        if self._outside is not None:
            Z[self._outside] = -np.inf
        # Softmax numerators in place; the row sums and the weighting by
        # pi_j / sum_j go through BLAS products, which use every core.
        zmax = xp.max(Z, axis=1, keepdims=True)
        Z -= zmax
        Z = np.exp(Z, out=Z) if self._on_host else xp.exp(Z)
        norm = Z @ self._ones
        value = scalar(self._pi @ (xp.log(norm) + zmax[:, 0]) - self._target @ z_target,
                       self._on_host)
        if self._on_host:
            self._last, self._curvature = (W.copy(), Z, norm, zmax[:, 0]), None
        return value, Z, norm, zmax[:, 0]

    def value(self, W):
        """The cross-entropy at ``W``."""
        return self._pass(W)[0]

    def value_and_grad(self, W):
        """Return ``(CE(W), grad CE(W))``; the gradient has the shape of ``W``."""
        value, E, norm, _ = self._pass(W)
        grad = self.logits_adjoint(E, self._pi / norm)
        grad -= self._target_term
        return value, grad

    def gradient(self, W):
        """``sum_j pi_j (q_j - p_j) h_j^T``."""
        return self.value_and_grad(W)[1]

    def softmax(self, W):
        """``q_j``: softmax of the logits of ``W`` over ``S~_j`` (zero elsewhere)."""
        E, norm = self._exponentials_at(W)[1:3]
        return E / norm[:, None]

    def point(self, W):
        """Everything at ``W`` from one pass: a :class:`LossPoint` (host only)."""
        logits = self.logits(W)
        value, E, norm, zmax = self._pass(W, logits)
        q = E / norm[:, None]
        grad = self.logits_adjoint(q, self._pi) - self._target_term
        return LossPoint(W, logits, value, grad, q, zmax + np.log(norm))

    def _exponentials_at(self, W):
        """The last pass if it was at ``W``, else a new one."""
        if self._last is None or not np.array_equal(self._last[0], W):
            self._pass(W)
        return self._last

    def _softmax_and_weighted(self, W):
        """``(q, pi q)`` at ``W``, kept for every Hessian product there."""
        E, norm = self._exponentials_at(W)[1:3]
        if self._curvature is None:
            q = E / norm[:, None]
            self._curvature = (q, q * self._pi[:, None])
        return self._curvature

    def hessian_product(self, W, V):
        """``nabla^2 CE(W)[V] = sum_j pi_j (diag(q_j) - q_j q_j^T) V h_j h_j^T``."""
        q, weighted = self._softmax_and_weighted(W)
        # In place: the (m, V) passes, not the two products, dominate the cost.
        dZ = self.logits(V)
        dZ -= np.einsum("jv,jv->j", q, dZ)[:, None]
        dZ *= weighted
        return self.logits_adjoint(dZ)

    def smoothness(self, alpha=0.0):
        """``lambda_max(sum_j pi_j h_j h_j^T) / 2 + alpha``: a Lipschitz constant of the gradient.

        The softmax covariance ``diag(q) - q q^T`` has spectral norm at most 1/2.
        """
        A = np.sqrt(np.asarray(self.data.weights if self.restriction.weights is None
                               else self.restriction.weights, dtype=np.float64))[:, None]
        return largest_gram_eigenvalue(A * np.asarray(self.data.embeddings, np.float64)
                                       ) / 2.0 + alpha

    def rows(self, index, weights, targets=None):
        """The loss of the contexts ``index`` with weights ``weights`` (a minibatch view).

        Parameters
        ----------
        index : ndarray of int
            Contexts (repeats allowed).
        weights : ndarray of shape (len(index),)
            Their weights in the view.
        targets : sparse matrix of shape (len(index), n_tokens), default=None
            Their next-token distributions; the rows of ``P`` by default.
        """
        data = self.data
        P = data.probabilities[index] if targets is None else sp.csr_matrix(targets)
        view = NTPData(data.embeddings[index], P, data.weights[index], data.classes,
                       np.arange(len(index)))
        restriction = self.restriction.rows(index)
        xp, device = self._namespace
        return NTPLoss(view, self._dtype, xp, device,
                       restriction=Restriction(restriction.mask, weights=weights))
