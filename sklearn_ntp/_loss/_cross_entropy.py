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
``P`` is turned into flat indices and weights, and a restriction into boolean
masks (effective supports, offset positions), on the host once, so that every
evaluation (value, gradient, softmax, Hessian products) is dense products, a
gather, masked assignments and element-wise functions on the device, block by
block, without a transfer per block. On the host the blocks add up in float64;
on a device in the working dtype (some devices have no float64).
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.utils import gen_batches
from sklearn.utils._array_api import _is_numpy_namespace

from .._data._ntp_data import NTPData
from .._linalg._spectral import largest_gram_eigenvalue
from .._utils._array_api import from_host, namespace, scalar
from ._contract import Restriction


class BlockPoint(NamedTuple):
    """The loss at one ``W`` on the contexts ``rows`` (a slice): their part of
    the value, raw logits ``H[rows] W^T``, softmax ``q`` and log-normalizers
    ``logsumexp_{z in S~_j}`` of the (offset) logits."""

    rows: slice
    value: float
    logits: np.ndarray
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


def rows_per_block(row_bytes, working_memory=None):
    """How many rows of ``row_bytes`` bytes fit in ``working_memory`` MiB.

    ``working_memory`` defaults to scikit-learn's ``working_memory`` config.
    A budget too small for a single row is refused.

    Examples
    --------
    >>> from sklearn_ntp._loss._cross_entropy import rows_per_block
    >>> rows_per_block(2 ** 19, working_memory=2)
    4
    """
    if working_memory is None:
        working_memory = get_config()["working_memory"]
    n_rows = int(working_memory * 2 ** 20 // row_bytes)
    if n_rows < 1:
        raise ValueError(f"working_memory={working_memory} MiB is smaller than one "
                         f"context row ({row_bytes} bytes); raise working_memory.")
    return n_rows


class NTPLoss:
    """The NTP cross-entropy of fixed distinct contexts (the :class:`~._contract.Datafit`).

    Every evaluation runs over blocks of contexts (rows) whose working arrays,
    at most two of shape (rows, n_tokens), fit in ``working_memory``: no
    (n_contexts, n_tokens) array is held whole unless it fits.

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
    working_memory : float, default=None
        Memory budget of the blocks in MiB; None: scikit-learn's
        ``working_memory`` config when the loss is built.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> from sklearn_ntp._loss._cross_entropy import NTPLoss
    >>> loss = NTPLoss(aggregate_contexts(np.eye(2), [0, 1]))
    >>> round(loss.value(np.zeros((2, 2))), 6)  # log 2
    0.693147
    """

    def __init__(self, data, dtype=None, xp=None, device=None, *, restriction=None,
                 working_memory=None):
        restriction = Restriction() if restriction is None else restriction
        dtype = np.dtype(dtype or data.embeddings.dtype)
        self._on_host = xp is None or _is_numpy_namespace(xp)
        P, rows = data.probabilities, data.support_rows
        pi = np.asarray(data.weights if restriction.weights is None else restriction.weights,
                        dtype=np.float64)
        H = np.ascontiguousarray(data.embeddings, dtype=dtype)
        # Flat positions of P's nonzeros in the (m, V) logits: cheaper than 2-D
        # indexing. A block of rows [a, b) holds those of P.indptr[a]:P.indptr[b].
        flat = rows * data.n_tokens + P.indices
        self._indptr = P.indptr
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
        outside = None if restriction.is_full else ~np.asarray(restriction.mask)
        self._offsets = restriction.offsets
        self._namespace, self._dtype = (xp, device), dtype
        self._working_memory = working_memory
        row_bytes = data.n_tokens * dtype.itemsize
        # A block holds the logits and, in Hessian products, the direction's.
        self._block_rows = min(rows_per_block(2 * row_bytes, working_memory),
                               data.n_contexts)
        self._blocks = list(gen_batches(data.n_contexts, self._block_rows))
        # The softmax at the last W is kept for Hessian products only when it
        # fits beside them: (q, pi q), the logits and the direction.
        self._cache_fits = len(self._blocks) == 1 and rows_per_block(
            4 * row_bytes, working_memory) >= data.n_contexts
        xp = np if self._on_host else xp
        # The passes over the logits reuse one block buffer on the host: a fresh
        # one per iteration costs page faults comparable to the softmax itself.
        self._buffer = (np.empty((self._block_rows, data.n_tokens), dtype=dtype)
                        if self._on_host else None)
        # The direction's logits in Hessian products: the block's second array,
        # allocated at the first product (most losses never take one).
        self._direction_buffer = None
        to_xp = (lambda a: a) if self._on_host else (lambda a: from_host(a, xp, device))
        self.H, self._flat, self._target, self._target_term = (
            to_xp(a) for a in (H, flat, target, target_term))
        self._outside = None if outside is None else to_xp(outside)
        if self._offsets is not None and not self._on_host:
            self._offsets = _masked_offsets(self._offsets, (data.n_contexts, data.n_tokens),
                                            dtype, to_xp)
        self._pi = to_xp(pi.astype(dtype))
        self._ones = to_xp(np.ones(data.n_tokens, dtype=dtype))
        self._xp = xp
        # The last single-block pass (host): (W, exponentials, row sums) and,
        # once a Hessian product asks, (q, pi q) at that W.
        self._last = self._curvature = None

    @property
    def weights(self):
        """The context weights ``pi_j`` of the loss (those of the restriction, if any)."""
        return self._pi

    def logits(self, W, out=None, rows=None):
        """Logits ``H W^T`` of the contexts ``rows`` (a slice; all by default), into ``out``."""
        H = self.H if rows is None else self.H[rows, ...]
        return H @ W.T if out is None else np.matmul(H, W.T, out=out)

    def logits_adjoint(self, R, row_scale=None, rows=None):
        """``R^T diag(row_scale) H[rows]``: the gradient of ``<R, H[rows] W^T>`` in ``W``."""
        H = self.H if rows is None else self.H[rows, ...]
        if row_scale is None:
            return R.T @ H
        # Scale the narrower factor: R when there are fewer tokens than
        # features (tabular data), H otherwise (language models).
        if R.shape[1] < H.shape[1]:
            return (R * row_scale[:, None]).T @ H
        return R.T @ (H * row_scale[:, None])

    def _block_logits(self, W, rows, logits):
        """The logits of the block ``rows`` (in the host buffer), offsets added."""
        if not self._on_host:
            return self._device_block_logits(W, rows, logits)
        Z = self._buffer[:rows.stop - rows.start]
        if logits is None:
            self.logits(W, out=Z, rows=rows)
        else:
            np.copyto(Z, logits)
        if self._offsets is not None:
            offset_rows, columns, values = self._offsets
            inside = (offset_rows >= rows.start) & (offset_rows < rows.stop)
            Z[offset_rows[inside] - rows.start, columns[inside]] += values[inside]
        return Z

    def _device_block_logits(self, W, rows, logits):
        """The logits of the block ``rows`` (a new device array), offsets added."""
        xp = self._xp
        Z = self.logits(W, rows=rows) if logits is None else xp.asarray(logits, copy=True)
        if self._offsets is not None:
            # The block's offset positions, in row-major order like their values.
            positions, values, pointers = self._offsets
            inside = positions[rows, ...]
            Z[inside] = Z[inside] + values[int(pointers[rows.start]):int(pointers[rows.stop])]
        return Z

    def _pass(self, W, rows, logits=None):
        """One pass over the logits of the block ``rows``: ``(value, E, row sums, row maxima)``.

        ``E`` holds ``exp(logit - row max)`` on the effective supports and 0
        elsewhere (in the host buffer: valid until the next pass); ``value``
        is the block's part of the loss.
        """
        xp = self._xp
        Z = self._block_logits(W, rows, logits)
        nonzeros = slice(int(self._indptr[rows.start]), int(self._indptr[rows.stop]))
        z_target = xp.take(xp.reshape(Z, (-1,)),
                           self._flat[nonzeros] - rows.start * self.shape[0])
        if self._outside is not None:
            Z[self._outside[rows, ...]] = -np.inf
        # Softmax numerators in place; the row sums and the weighting by
        # pi_j / sum_j go through BLAS products, which use every core.
        zmax = xp.max(Z, axis=1, keepdims=True)
        Z -= zmax
        Z = np.exp(Z, out=Z) if self._on_host else xp.exp(Z)
        norm = Z @ self._ones
        value = (self._pi[rows, ...] @ (xp.log(norm) + zmax[:, 0])
                 - self._target[nonzeros] @ z_target)
        # Kept for the Hessian products at W. The host keeps a copy of W to
        # compare values with; a device keeps W itself and recognizes the same
        # array (no copy, no sync: iterates are new arrays, never changed in place).
        if len(self._blocks) == 1 and (self._on_host or self._cache_fits):
            self._last = (W.copy() if self._on_host else W, Z, norm, zmax[:, 0])
            self._curvature = None
        return value, Z, norm, zmax[:, 0]

    def _normalized(self, E, norm):
        """The softmax ``E / norm`` of a pass: in place in the host buffer (which
        a single-block pass also keeps as the last exponentials: they go)."""
        if not self._on_host:
            return E / norm[:, None]
        self._last = None
        return np.divide(E, norm[:, None], out=E)

    def _add(self, total, block):
        """``total + block`` (in place; ``block`` itself for the first one): the sum of
        block results of the shape of ``W``, in float64 on the host."""
        if total is None:
            return block.astype(np.float64, copy=False) if self._on_host else block
        total += block
        return total

    def _accumulated(self, total):
        """The sum of the blocks in the working dtype."""
        return total.astype(self._dtype, copy=False) if self._on_host else total

    def _empty(self, shape):
        """An uninitialized array of the working dtype in the loss's namespace."""
        if self._on_host:
            return np.empty(shape, dtype=self._dtype)
        return self._xp.empty(shape, dtype=self.H.dtype, device=self._namespace[1])

    def _blockwise(self, W, with_grad=True):
        """``(CE(W), grad CE(W) or None)`` summed over the blocks of contexts.

        The loss is a sum of ``m`` terms of either sign and the gradient one of
        ``m`` outer products: on the host both add up across blocks in float64,
        so that blocking adds no round-off beyond that within one block. Devices
        keep the working dtype (some have no float64).
        """
        value, grad = 0.0, None
        for rows in self._blocks:
            block_value, E, norm, _ = self._pass(W, rows)
            value = value + (float(block_value) if self._on_host else block_value)
            if with_grad:
                grad = self._add(grad, self.logits_adjoint(E, self._pi[rows, ...] / norm, rows))
        if with_grad:
            grad = self._accumulated(grad)
            grad -= self._target_term
        return scalar(value, self._on_host), grad

    def value(self, W):
        """The cross-entropy at ``W``."""
        return self._blockwise(W, with_grad=False)[0]

    def value_and_grad(self, W):
        """Return ``(CE(W), grad CE(W))``; the gradient has the shape of ``W``."""
        return self._blockwise(W)

    def gradient(self, W):
        """``sum_j pi_j (q_j - p_j) h_j^T``."""
        return self._blockwise(W)[1]

    def softmax(self, W):
        """``q_j``: softmax of the logits of ``W`` over ``S~_j`` (zero elsewhere)."""
        if len(self._blocks) == 1:
            E, norm = self._exponentials_at(W)[1:3]
            return E / norm[:, None]
        q = self._empty((self.data.n_contexts, self.shape[0]))
        for rows, q_rows in self.softmax_blocks(W):
            q[rows, ...] = q_rows
        return q

    def softmax_blocks(self, W):
        """Yield ``(rows, q)`` block by block: ``q`` the softmax at ``W`` of the contexts
        ``rows`` (a slice), zero off the effective supports.

        Consumers reduce each block before asking for the next: on the host ``q``
        lives in the block buffer and is overwritten by the next pass.
        """
        for rows in self._blocks:
            E, norm = self._pass(W, rows)[1:3]
            yield rows, self._normalized(E, norm)

    def point_blocks(self, W):
        """Yield a :class:`BlockPoint` per block of contexts.

        The gradient is ``sum`` over blocks of ``logits_adjoint(q, pi[rows], rows)``
        minus :attr:`target_term`. On the host a block's ``q`` lives in the
        block buffer: reduce it before asking for the next block. Values are
        floats on the host, 0-d arrays of the loss's namespace elsewhere.
        """
        for rows in self._blocks:
            logits = self.logits(W, rows=rows)
            value, E, norm, zmax = self._pass(W, rows, logits)
            yield BlockPoint(rows, scalar(value, self._on_host), logits,
                             self._normalized(E, norm), zmax + self._xp.log(norm))

    @property
    def target_term(self):
        """``sum_j pi_j p_j h_j^T``: the part of the gradient that does not depend on ``W``."""
        return self._target_term

    def _exponentials_at(self, W):
        """The last (single-block) pass if it was at ``W``, else a new one."""
        last = self._last
        if last is None or not (np.array_equal(last[0], W) if self._on_host else last[0] is W):
            E, norm, zmax = self._pass(W, self._blocks[0])[1:]
            return self._last or (W, E, norm, zmax)  # None: not kept (device)
        return self._last

    def _softmax_and_weighted(self, W):
        """``(q, pi q)`` at ``W``, kept for every Hessian product there (when they fit)."""
        E, norm = self._exponentials_at(W)[1:3]
        if self._curvature is None:
            q = E / norm[:, None]
            self._curvature = (q, q * self._pi[:, None])
        return self._curvature

    def _curvature_blocks(self, W):
        """``(rows, q)`` over the blocks at ``W``: the kept softmax when it fits."""
        if self._cache_fits:
            yield slice(None), self._softmax_and_weighted(W)[0]
        else:
            yield from self.softmax_blocks(W)

    def hessian_product(self, W, V):
        """``nabla^2 CE(W)[V] = sum_j pi_j (diag(q_j) - q_j q_j^T) V h_j h_j^T``."""
        if self._cache_fits:
            q, weighted = self._softmax_and_weighted(W)
            return self._curvature_term(q, weighted, V, slice(None))
        # Too large to keep: the softmax is recomputed block by block.
        product = None
        for rows, q in self.softmax_blocks(W):
            product = self._add(product, self._curvature_term(q, None, V, rows))
        return self._accumulated(product)

    def _curvature_term(self, q, weighted, V, rows):
        """The Hessian product's part from the contexts ``rows``, softmax ``q``
        and ``weighted = pi q`` (None: weighted here, without a third array)."""
        # In place: the (rows, V) passes, not the two products, dominate the cost;
        # pi_j scales the (rows, d) contexts in the adjoint, not the (rows, V) block.
        if self._on_host:
            if self._direction_buffer is None:
                self._direction_buffer = np.empty_like(self._buffer)
            dZ = self.logits(V, out=self._direction_buffer[:len(q)], rows=rows)
            dZ -= np.einsum("jv,jv->j", q, dZ)[:, None]
        else:
            dZ = self.logits(V, rows=rows)
            dZ -= self._xp.vecdot(q, dZ)[:, None]
        if weighted is None:
            dZ *= q
            return self.logits_adjoint(dZ, self._pi[rows, ...], rows)
        dZ *= weighted
        return self.logits_adjoint(dZ, rows=rows)

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
                       restriction=Restriction(restriction.mask, weights=weights),
                       working_memory=self._working_memory)


def _masked_offsets(offsets, mask_shape, dtype, to_xp):
    """Logit offsets ``(rows, columns, values)`` as a device mask of their
    positions, their values in row-major order, and each row's first value.

    Array API namespaces index with integer arrays for reading only; a boolean
    mask assigns the offsets of a block in place, without a host transfer.
    """
    rows, columns, values = (np.asarray(a) for a in offsets)
    n_contexts, n_tokens = mask_shape
    order = np.argsort(rows * n_tokens + columns, kind="stable")
    positions = np.zeros(mask_shape, dtype=bool)
    positions[rows, columns] = True
    pointers = np.searchsorted(rows[order], np.arange(n_contexts + 1))
    return to_xp(positions), to_xp(values[order].astype(dtype)), pointers
