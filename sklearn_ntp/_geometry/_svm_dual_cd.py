"""Sequential dual method for the NTP-SVM: block coordinate descent over contexts.

The dual of the NTP-SVM is a QP over the (n_tokens, n_contexts) matrix ``A``
(see :mod:`._svm`)::

    minimize   1/2 ||A Z||_F^2 + sum_{v not in S_j} A_vj
    subject to sum_v A_vj = 0,   A_vj <= 0 for v not in S_j,

where the rows of ``Z`` are any embeddings with the Gram matrix ``H H^T``.
Its constraints separate by context (column of ``A``), which is what makes the
sequential dual method of Keerthi et al. (KDD 2008) work: visit the contexts,
and minimize over one column at a time with the others fixed. A block of
contexts ``B`` is updated by one projected-gradient step with step
``1 / ||Z_B||_2^2``; for a single context the subproblem is isotropic, and the
step is its exact minimizer. Blocks make each step two BLAS-3 products
(``R Z_B^T`` and ``dA_B Z_B`` with ``R = A Z``), so an epoch costs about two
products of size ``n_tokens x n_contexts x n_features``, like a gradient
descent iteration on the primal. With the Gram matrix ``K = Z Z^T`` stored
(``n_contexts <= n_features``), a step is the single product ``A K_B^T``
and an epoch one product of size ``n_tokens x n_contexts x n_contexts``.

The projection of a column onto ``{sum a = 0, a_off <= 0}`` is exact: the
in-support entries shift by a common ``theta`` and the off-support ones are
clipped at zero, with ``theta`` the root of a monotone piecewise-linear
equation found by one sort.
"""

import numpy as np

#: Contexts per block, relative to the embedding dimension: blocks much
#: smaller than ``d`` have nearly orthogonal rows, so their step stays close
#: to the exact per-context one.
BLOCK_FRACTION = 0.25
#: Largest block.
MAX_BLOCK = 64


def project_columns(B, off):
    """Project every column of ``B`` onto ``{sum a = 0, a_vj <= 0 where off}``.

    Parameters
    ----------
    B : ndarray of shape (n_tokens, n_columns)
    off : ndarray of bool, same shape
        Sign-constrained (out-of-support) entries; every column has at least
        one free entry.

    Returns
    -------
    A : ndarray of the same shape
        ``A = B - theta`` on free entries, ``min(B - theta, 0)`` on the others.
    """
    V = B.shape[0]
    n_free = V - off.sum(axis=0)
    free_sum = np.where(off, 0.0, B).sum(axis=0)
    # Off entries sorted ascending; with k of them below theta,
    # theta_k = (free_sum + sum of the k smallest) / (n_free + k).
    keys = np.sort(np.where(off, B, np.inf), axis=0)
    csum = np.cumsum(np.where(np.isfinite(keys), keys, 0.0), axis=0)
    k = np.arange(1, V + 1)[:, None]
    theta_k = (free_sum + csum) / (n_free + k)
    # The k-th smallest is in the clipped set iff it lies below theta_k;
    # that holds for a prefix of k (as for the projection onto a simplex).
    below = np.isfinite(keys) & (keys < theta_k)
    count = below.sum(axis=0)
    theta = free_sum / n_free
    has = count > 0
    theta[has] = theta_k[count[has] - 1, np.flatnonzero(has)]
    A = B - theta
    return np.where(off, np.minimum(A, 0.0), A)


def _blocks(Z, gram, rng):
    """A random partition of the contexts into blocks, with their step sizes."""
    m, d = Z.shape
    size = int(np.clip(BLOCK_FRACTION * d, 1, MAX_BLOCK))
    order = rng.permutation(m)
    blocks = [order[i:i + size] for i in range(0, m, size)]
    steps = []
    for b in blocks:
        block_gram = gram[np.ix_(b, b)] if gram is not None else Z[b] @ Z[b].T
        top = np.linalg.eigvalsh(block_gram)[-1]
        steps.append(1.0 / max(top, np.finfo(float).tiny))
    return blocks, steps


def sequential_dual(Z, off, *, A=None, n_epochs=10, random_state=0, gram=None):
    """Run ``n_epochs`` epochs of block sequential dual descent.

    Parameters
    ----------
    Z : ndarray of shape (n_contexts, n_features)
        Embeddings (or any factor with the same Gram matrix).
    off : ndarray of bool, shape (n_tokens, n_contexts)
        Out-of-support entries.
    A : ndarray of shape (n_tokens, n_contexts), default=None
        Warm start (feasible); zero if None. Updated in place.
    n_epochs : int
        Passes over all contexts.
    random_state : int
        Seed of the block partition and visiting order.
    gram : ndarray of shape (n_contexts, n_contexts), default=None
        ``Z Z^T`` if stored. A block's gradient is then the single product
        ``A K_B^T`` (``A`` only changes in the block's columns, so it is
        always current), half the cost of the two products through ``Z``
        when ``Z`` has ``n_contexts`` columns.

    Returns
    -------
    A : ndarray of shape (n_tokens, n_contexts)
        The dual iterate (always feasible).
    """
    rng = np.random.default_rng(random_state)
    c = off.astype(np.float64)
    A = np.zeros(off.shape) if A is None else A
    R = A @ Z if gram is None else None  # the primal iterate in Z coordinates
    blocks, steps = _blocks(Z, gram, rng)
    for _ in range(n_epochs):
        for i in rng.permutation(len(blocks)):
            b, step = blocks[i], steps[i]
            grad = (R @ Z[b].T if gram is None else A @ gram[b].T) + c[:, b]
            new = project_columns(A[:, b] - step * grad, off[:, b])
            if gram is None:
                R += (new - A[:, b]) @ Z[b]
            A[:, b] = new
    return A
