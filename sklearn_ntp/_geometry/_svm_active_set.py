"""The NTP-SVM by a dual active-set method, for badly conditioned features.

The primal ``min ||W||_F`` over the row space of ``H`` (coordinates
``Y = U S``, ``H = U S V^T``, the same norms) is handed to the dual
active-set method of Goldfarb and Idnani (the ``quadprog`` package). It
keeps an orthogonal factorization of the active constraints, so badly
scaled or offset features -- a year or a price next to an intercept, whose
Gram matrix ``H H^T`` has the square of their condition number -- cost it
only ``eps cond(H)``, where dual methods on ``H H^T`` lose ``eps cond(H)^2``.
Its constraint matrix is dense, ``(n_tokens * rank) x (n_contexts * (n_tokens - 1))``,
so it serves small problems (:data:`ACTIVE_SET_ENTRIES`).
"""

import numpy as np
import scipy.linalg as la

from ._basis import SPAN_RESOLUTION, context_basis
from ._generators import margin_pairs, support_pairs

#: Largest dense constraint matrix handed to the active-set method (160 MB).
ACTIVE_SET_ENTRIES = 20_000_000


def active_set_size(data):
    """Entries of the dense constraint matrix of :func:`active_set_svm`."""
    rank = min(data.n_contexts, data.n_features)
    return data.n_tokens * rank * data.n_contexts * (data.n_tokens - 1)


def active_set_svm(data):
    """``(A, W)``: dual matrix and solution of the NTP-SVM of ``data``.

    Raises ``ValueError`` (from ``quadprog``) when the method finds the
    constraints inconsistent, which on feasible data means round-off won.
    """
    import quadprog

    H = np.asarray(data.embeddings, dtype=np.float64)
    U, s, Vt = np.linalg.svd(H, full_matrices=False)
    rank = context_basis(H).rank
    Y = U[:, :rank] * s[:rank]
    V, m = data.n_tokens, data.n_contexts
    z, z0, j = _independent_ties(data, U[:, :rank])
    top, beaten, i = margin_pairs(data)
    # Columns: ties (e_z - e_z0) y_j^T, then margins (e_top - e_beaten) y_i^T.
    C = np.zeros((V, rank, z.size + top.size))
    ties, margins = np.arange(z.size), z.size + np.arange(top.size)
    C[z, :, ties] += Y[j]
    C[z0, :, ties] -= Y[j]
    C[top, :, margins] += Y[i]
    C[beaten, :, margins] -= Y[i]
    b = np.r_[np.zeros(z.size), np.ones(top.size)]
    x, _, _, _, multipliers, _ = quadprog.solve_qp(
        np.eye(V * rank), np.zeros(V * rank), C.reshape(V * rank, -1), b, meq=z.size)
    A = np.zeros((V, m))
    tie, margin = multipliers[:z.size], multipliers[z.size:]
    np.add.at(A, (z, j), tie)
    np.add.at(A, (z0, j), -tie)
    np.add.at(A, (top, i), margin)
    np.add.at(A, (beaten, i), -margin)
    return A, x.reshape(V, rank) @ Vt[:rank]


def _independent_ties(data, U):
    """The ties of :func:`support_pairs` with linearly independent generators.

    The method needs independent equality constraints, and the ties of many
    contexts are not (they span ``F``). Scaling the columns of ``U`` (the
    orthonormal left singular vectors of ``H``) by the singular values gives
    the coordinates ``Y`` of the constraints, so a subset of ties is
    independent in ``Y`` exactly when it is in ``U``, where pivoted QR
    decides it well conditioned, at :data:`._basis.SPAN_RESOLUTION`.
    """
    z, z0, j = support_pairs(data)
    if z.size == 0:
        return z, z0, j
    V, rank = data.n_tokens, U.shape[1]
    rows = np.zeros((z.size, V, rank))
    index = np.arange(z.size)
    rows[index, z] += U[j]
    rows[index, z0] -= U[j]
    _, R, pivots = la.qr(rows.reshape(z.size, -1).T, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(R))
    keep = np.sort(pivots[:int(np.sum(diagonal > SPAN_RESOLUTION * diagonal[0]))])
    return z[keep], z0[keep], j[keep]
