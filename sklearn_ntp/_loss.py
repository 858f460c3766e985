"""The NTP cross-entropy over distinct contexts, its gradient, and log-softmax.

``CE(W) = -sum_j pi_j sum_{z in S_j} p_jz log softmax_z(W h_j)``
``grad CE(W) = sum_j pi_j (softmax(W h_j) - p_j) h_j^T``

Everything goes through log-sum-exp, so no norm of ``W`` overflows; the sparse
``P`` is only ever touched at its nonzeros.
"""

import numpy as np
import scipy.sparse as sp


def log_softmax(logits):
    """Row-wise log-softmax via log-sum-exp (finite for finite logits)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits):
    """Row-wise softmax, stable at any scale of the logits."""
    return np.exp(log_softmax(logits))


class NTPLoss:
    """Data-fit term of the NTP objective for fixed distinct contexts.

    Parameters
    ----------
    data : NTPData
        Distinct contexts (H, P, pi).
    dtype : numpy dtype, default=None
        Working precision; defaults to the dtype of the embeddings.
    """

    def __init__(self, data, dtype=None):
        dtype = np.dtype(dtype or data.embeddings.dtype)
        P = data.probabilities
        self.H = np.ascontiguousarray(data.embeddings, dtype=dtype)
        rows = np.repeat(np.arange(data.n_contexts), np.diff(P.indptr))
        # Flat positions of P's nonzeros in the (m, V) logits: cheaper than 2-D indexing.
        self._flat = rows * data.n_tokens + P.indices
        # pi_j p_jz at the nonzeros of P: the only place P enters loss and gradient.
        self._target = (data.weights[rows] * P.data).astype(dtype)
        self._pi = data.weights.astype(dtype)[:, None]
        self.data = data
        self.entropy = data.entropy
        self.shape = (data.n_tokens, data.n_features)
        # The gradient path reuses one (m, V) buffer: a fresh one per iteration
        # costs page faults comparable to the softmax itself.
        self._buffer = np.empty((data.n_contexts, data.n_tokens), dtype=dtype)
        self._ones = np.ones(data.n_tokens, dtype=dtype)
        # sum_j pi_j p_j h_j^T: the part of the gradient that does not depend on W.
        self._target_term = np.asarray(
            (sp.csr_matrix((self._target, P.indices, P.indptr), shape=P.shape).T @ self.H),
            dtype=dtype)

    def logits(self, W):
        """Logits ``H W^T`` of shape (n_contexts, n_tokens)."""
        return self.H @ W.T

    def value(self, W):
        """Cross-entropy ``CE(W)``."""
        Z = self.logits(W)
        return self._value_from_logits(Z, Z.ravel()[self._flat])

    def _value_from_logits(self, Z, z_target):
        zmax = Z.max(axis=1)
        lse = zmax + np.log(np.exp(Z - zmax[:, None]).sum(axis=1))
        return float(self._pi[:, 0] @ lse - self._target @ z_target)

    def value_and_grad(self, W):
        """Return ``(CE(W), grad CE(W))``; the gradient has the shape of ``W``."""
        Z = np.matmul(self.H, W.T, out=self._buffer)
        z_target = Z.ravel()[self._flat]  # ravel is a view: Z is C-contiguous
        # Softmax numerators in place; the row sums and the weighting by
        # pi_j / sum_j go through BLAS products, which use every core.
        zmax = Z.max(axis=1, keepdims=True)
        Z -= zmax
        np.exp(Z, out=Z)
        norm = Z @ self._ones
        loss = float(self._pi[:, 0] @ (np.log(norm) + zmax[:, 0]) - self._target @ z_target)
        grad = Z.T @ (self.H * (self._pi[:, 0] / norm)[:, None])
        grad -= self._target_term
        return loss, grad
