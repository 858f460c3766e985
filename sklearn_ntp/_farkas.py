"""Farkas certificates that the NTP-separability constraints (6a)-(6b) are infeasible."""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.optimize import linprog

#: A dual direction with objective below this certifies non-separability.
CERTIFICATE_ATOL = 1e-7


def separability_certificate(data, rank):
    """Farkas certificate that (6a)-(6b) are infeasible, or ``None``.

    The constraints are infeasible exactly when some dual matrix ``A`` (zero-sum
    columns, nonpositive off the supports) has ``A H = 0`` and a negative sum of
    off-support entries. ``A H = 0`` puts every row of ``A`` in the left null
    space of ``H``, so with full row rank (Lemma 1) no certificate exists; else
    an LP over null-space coordinates ``A = B N^T`` decides it.

    The null-space basis is kept sparse: with ``r = rank`` basis contexts
    chosen by pivoted QR, every other context ``i`` gives the null vector
    ``e_i - sum_b c_ib e_b`` (``h_i = sum_b c_ib h_b``). The sign constraint of
    an out-of-support pair of a non-basis context is then a simple bound, and
    only pairs of the ``r`` basis contexts need LP rows.
    """
    off = ~data.support_mask.T  # (V, m)
    if rank == data.n_contexts or not off.any():
        return None
    H = np.asarray(data.embeddings, dtype=np.float64)
    V, m = off.shape
    pivots = la.qr(H.T, mode="economic", pivoting=True)[2]
    basis, rest = pivots[:rank], pivots[rank:]
    k = rest.size
    N = np.zeros((m, k))  # columns: the null vectors
    N[rest, np.arange(k)] = 1.0
    N[basis] = -la.lstsq(H[basis].T, H[rest].T)[0]
    column = np.empty(m, dtype=np.intp)
    column[rest] = np.arange(k)
    tok, ctx = np.nonzero(off)
    bounded = np.isin(ctx, rest)
    # Entry A[v, j] = N[j] . B[v]: a bound on B[v, i] for non-basis j, else a row.
    bounded_vars = tok[bounded] * k + column[ctx[bounded]]
    upper = np.full(V * k, np.inf)
    upper[bounded_vars] = 0.0
    tb, cb = tok[~bounded], ctx[~bounded]
    rows = sp.csr_matrix(
        (N[cb].ravel(), (np.repeat(np.arange(tb.size), k), (tb[:, None] * k + np.arange(k)).ravel())),
        shape=(tb.size, V * k),
    )
    objective = np.asarray(rows.sum(axis=0)).ravel()  # sum of off-support entries of A
    np.add.at(objective, bounded_vars, 1.0)
    res = linprog(
        objective,
        A_ub=sp.vstack([rows, -objective[None, :]]),  # ... <= 0, and total >= -1
        b_ub=np.r_[np.zeros(tb.size), 1.0],
        A_eq=sp.kron(np.ones((1, V)), sp.identity(k)),  # zero column sums of A
        b_eq=np.zeros(k),
        bounds=np.c_[np.full(V * k, -np.inf), upper],
        method="highs",
    )
    if res.status != 0 or res.fun > -CERTIFICATE_ATOL:
        return None
    return res.x.reshape(V, k) @ N.T
