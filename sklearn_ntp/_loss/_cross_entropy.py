"""The NTP cross-entropy over distinct contexts, its gradient, and log-softmax.

``CE(W) = -sum_j pi_j sum_{z in S_j} p_jz log softmax_z(W h_j)``
``grad CE(W) = sum_j pi_j (softmax(W h_j) - p_j) h_j^T``

Everything goes through log-sum-exp, so no norm of ``W`` overflows; the sparse
``P`` is only ever touched at its nonzeros.

The loss runs in any Array API namespace (``xp``, on ``device``): the sparse
``P`` is turned into flat indices and weights on the host once, so that every
iteration is dense products, a gather and element-wise functions on the device.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils._array_api import _is_numpy_namespace

from .._utils._array_api import from_host, namespace, scalar


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
    """Data-fit term of the NTP objective for fixed distinct contexts.

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
    """

    def __init__(self, data, dtype=None, xp=None, device=None):
        dtype = np.dtype(dtype or data.embeddings.dtype)
        P = data.probabilities
        H = np.ascontiguousarray(data.embeddings, dtype=dtype)
        rows = np.repeat(np.arange(data.n_contexts), np.diff(P.indptr))
        # Flat positions of P's nonzeros in the (m, V) logits: cheaper than 2-D indexing.
        flat = rows * data.n_tokens + P.indices
        # pi_j p_jz at the nonzeros of P: the only place P enters loss and gradient.
        target = (data.weights[rows] * P.data).astype(dtype)
        # sum_j pi_j p_j h_j^T: the part of the gradient that does not depend on W.
        target_term = np.asarray(
            (sp.csr_matrix((target, P.indices, P.indptr), shape=P.shape).T @ H), dtype=dtype)
        self.data = data
        self.entropy = data.entropy
        self.shape = (data.n_tokens, data.n_features)
        self._on_host = xp is None or _is_numpy_namespace(xp)
        xp = np if self._on_host else xp
        # The gradient path reuses one (m, V) buffer on the host: a fresh one per
        # iteration costs page faults comparable to the softmax itself.
        self._buffer = (np.empty((data.n_contexts, data.n_tokens), dtype=dtype)
                        if self._on_host else None)
        to_xp = (lambda a: a) if self._on_host else (lambda a: from_host(a, xp, device))
        self.H, self._flat, self._target, self._target_term = (
            to_xp(a) for a in (H, flat, target, target_term))
        self._pi = to_xp(data.weights.astype(dtype)[:, None])
        self._ones = to_xp(np.ones(data.n_tokens, dtype=dtype))
        self._xp = xp

    def logits(self, W):
        """Logits ``H W^T`` of shape (n_contexts, n_tokens)."""
        return self.H @ W.T

    def value(self, W):
        """Cross-entropy ``CE(W)``."""
        Z = self.logits(W)
        return self._value_from_logits(Z, self._gather(Z))

    def _gather(self, Z):
        """Logits at the nonzeros of ``P``."""
        return self._xp.take(self._xp.reshape(Z, (-1,)), self._flat)

    def _value_from_logits(self, Z, z_target):
        xp = self._xp
        zmax = xp.max(Z, axis=1)
        lse = zmax + xp.log(xp.sum(xp.exp(Z - zmax[:, None]), axis=1))
        return scalar(self._pi[:, 0] @ lse - self._target @ z_target, self._on_host)

    def value_and_grad(self, W):
        """Return ``(CE(W), grad CE(W))``; the gradient has the shape of ``W``."""
        xp = self._xp
        Z = np.matmul(self.H, W.T, out=self._buffer) if self._on_host else self.H @ W.T
        z_target = self._gather(Z)
        # Softmax numerators in place; the row sums and the weighting by
        # pi_j / sum_j go through BLAS products, which use every core.
        zmax = xp.max(Z, axis=1, keepdims=True)
        Z -= zmax
        Z = np.exp(Z, out=Z) if self._on_host else xp.exp(Z)
        norm = Z @ self._ones
        loss = scalar(self._pi[:, 0] @ (xp.log(norm) + zmax[:, 0]) - self._target @ z_target,
                      self._on_host)
        grad = Z.T @ (self.H * (self._pi[:, 0] / norm)[:, None])
        grad -= self._target_term
        return loss, grad
