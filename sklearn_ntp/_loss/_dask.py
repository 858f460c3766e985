"""The NTP cross-entropy of contexts held on dask workers: the loss contract as reductions.

``CE(W) = sum_j pi_j [...]`` is a sum over contexts, so its value, gradient
and Hessian products are sums over the partitions of a
:class:`~sklearn_ntp._data._dask.DaskNTPData`. One
:class:`~sklearn_ntp._loss._cross_entropy.NTPLoss` per partition is built on
the worker that holds the partition (and stays there); every evaluation
sends ``W`` (and the direction of a Hessian product) once to every worker,
each partition returns its part, and the parts are added in float64 along a
tree on the workers (:meth:`~sklearn_ntp._data._dask.ClusterBackend.sum`):
the client receives one (n_tokens, n_features) array per evaluation. The
solvers call the same methods as on :class:`NTPLoss` and run unchanged.

What is on the client: ``W``, the summed gradient, the context norms (one
float per context) and, only for the solvers that need the contexts in one
process (sgd's sampling, accelerated's split loss), :attr:`DaskNTPLoss.data`,
gathered once on first use.
"""

from functools import cached_property

import numpy as np

from ._cross_entropy import NTPLoss


def _partition_loss(data, dtype, working_memory):
    return NTPLoss(data, dtype, working_memory=working_memory)


def _value(loss, W):
    return loss.value(W)


def _value_and_grad(loss, W):
    value, grad = loss.value_and_grad(W)
    return value, np.asarray(grad, dtype=np.float64)


def _hessian_product(loss, W, V):
    return np.asarray(loss.hessian_product(W, V), dtype=np.float64)


def _softmax(loss, W):
    return loss.softmax(W)


class DaskNTPLoss:
    """The NTP cross-entropy of distinct contexts on dask workers (a :class:`~._contract.Datafit`).

    Parameters
    ----------
    data : DaskNTPData
        The distinct contexts, as partitions on the workers.
    dtype : numpy dtype, default=None
        Working precision of every partition's loss; that of the embeddings by default.
    working_memory : float, default=None
        Block budget (MiB) of every partition's loss on its worker.

    Attributes
    ----------
    shape : tuple of int
        ``(n_tokens, n_features)``.
    entropy : float
        The entropy of the data.
    context_norms : ndarray of shape (n_contexts,)
        ``||h_j||`` on the client.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sklearn_ntp._data._dask import aggregate_dask_contexts
    >>> from sklearn_ntp._loss._dask import DaskNTPLoss
    >>> X = da.from_array(np.eye(4), chunks=(2, -1))  # no client: dask's default scheduler
    >>> loss = DaskNTPLoss(aggregate_dask_contexts(X, [0, 1, 0, 1]))
    >>> round(loss.value(np.zeros((2, 4))), 6)  # log 2
    0.693147
    """

    def __init__(self, data, dtype=None, *, working_memory=None):
        self.contexts = data
        self.shape = (data.n_tokens, data.n_features)
        self.entropy = data.entropy
        self.context_norms = data.context_norms
        self._run = data.backend
        # Empty partitions (a hash may send no row to one) add nothing.
        parts = [p for p, size in zip(data.parts, data.sizes) if size]
        self._losses = self._run.map(_partition_loss, parts,
                                     broadcast=(dtype, working_memory))
        self._sizes = [size for size in data.sizes if size]

    @cached_property
    def data(self):
        """All contexts as one NTPData on the client (gathered on first use only)."""
        return self.contexts.gather()

    def _sum(self, func, *arrays):
        return self._run.map_sum(func, self._losses, broadcast=arrays)

    def value(self, W):
        """The cross-entropy at ``W``."""
        return self._sum(_value, W)

    def value_and_grad(self, W):
        """``(CE(W), grad CE(W))``; the gradient has the shape and dtype of ``W``."""
        value, grad = self._sum(_value_and_grad, W)
        return value, grad.astype(W.dtype, copy=False)

    def gradient(self, W):
        """``sum_j pi_j (q_j - p_j) h_j^T``."""
        return self.value_and_grad(W)[1]

    def hessian_product(self, W, V):
        """The Hessian at ``W`` applied to ``V`` (a sum over the partitions)."""
        return self._sum(_hessian_product, W, V).astype(W.dtype, copy=False)

    def softmax_blocks(self, W):
        """Yield ``(rows, q)`` partition by partition (rows in partition order)."""
        start = 0
        for size, loss in zip(self._sizes, self._losses):
            q = self._run.gather(self._run.map(_softmax, [loss], broadcast=(W,)))[0]
            yield slice(start, start + size), q
            start += size

    def softmax(self, W):
        """``q_j`` of every context, in partition order (whole, on the client)."""
        return np.concatenate([q for _, q in self.softmax_blocks(W)])

    def smoothness(self, alpha=0.0):
        """``lambda_max(sum_j pi_j h_j h_j^T) / 2 + alpha`` from the Gram matrix summed on
        the workers (n_features squared on the client)."""
        return self.contexts.largest_gram_eigenvalue() / 2.0 + alpha

    def rows(self, index, weights, targets=None):
        """The loss of the contexts ``index`` of :attr:`data` (gathered), in this process."""
        return self._gathered_loss.rows(index, weights, targets)

    @cached_property
    def _gathered_loss(self):
        return NTPLoss(self.data)
