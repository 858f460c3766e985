"""The separable pairs ``T``: off-support pairs that some tied direction separates.

``C`` is the cone of decoders ``U`` with equal logits on every support and a
nonnegative margin ``margin_jv(U) = (e_z0 - e_v)^T U h_j`` on every
off-support pair ``(j, v)`` (``O``). ``T`` is the set of pairs of ``O`` on which
some ``U`` in ``C`` is strictly positive. ``C`` is a convex cone, so a sum of
such directions is strictly positive on the union: ``T`` is unique, and the LP

    maximize sum t   subject to  0 <= t <= 1,  U in C,  margin_jv(U) >= t_jv,

returns ``t = 1`` on ``T`` and ``t = 0`` elsewhere. The logits of a token
range over the column space of ``H``: with ``Q`` an orthonormal basis of it
(rows ``q_j`` in ``R^r``) the variable is ``C`` of shape (n_tokens, r), the
logits are ``Q C^T``, and every constraint row has ``2 r (+1)`` nonzeros.
"""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.optimize import linprog

from .._linalg._highs import highs_message
from ._generators import margin_pairs, support_pairs


class SeparablePairsError(RuntimeError):
    """The linear program for the separable pairs did not solve to optimality."""


def column_space_basis(H, rank):
    """Orthonormal basis ``Q`` (n_contexts, rank) of the column space of ``H``.

    The logits ``H u`` of a token range over exactly that space, so the
    margins of the LP below may be written ``(c_z - c_v) . q_j`` with ``Q``
    in place of ``H``: ``T`` depends on ``H`` only through it, and ``Q`` is
    perfectly conditioned however badly scaled the features are.
    """
    U = la.svd(np.asarray(H, dtype=np.float64), full_matrices=False)[0]
    return U[:, :rank]


def separable_pairs(data, rank, *, always_solve=False):
    """Boolean (n_contexts, n_tokens) mask of ``T`` (False on the supports).

    Parameters
    ----------
    data : NTPData
        Distinct contexts.
    rank : int
        Numerical rank of the embedding matrix ``H``.
    always_solve : bool, default=False
        Solve the LP also when ``H`` has full row rank.

    Returns
    -------
    T : ndarray of bool, shape (n_contexts, n_tokens)
        With full row rank every logit pattern is reachable, so ``T = O``
        without solving anything.

    Raises
    ------
    SeparablePairsError
        When HiGHS does not report an optimal solution (its status is named).
    """
    off = ~data.support_mask
    if (rank == data.n_contexts and not always_solve) or not off.any():
        return off
    if rank == 0:  # every embedding is zero: every margin is zero
        return np.zeros_like(off)
    Q = column_space_basis(data.embeddings, rank)
    V, r = data.n_tokens, rank
    z, z0, j = support_pairs(data)
    ties = pair_rows(z, z0, Q[j], V, r)
    anchor, v, jo = margin_pairs(data)
    n_off = v.size
    margins = pair_rows(v, anchor, Q[jo], V, r)  # -margin_jv(C)
    slack = sp.identity(n_off, format="csr")
    A_ub = sp.hstack([margins, slack], format="csr")  # -margin + t <= 0
    A_eq = sp.hstack([ties, sp.csr_matrix((ties.shape[0], n_off))], format="csr")
    res = linprog(
        np.r_[np.zeros(V * r), -np.ones(n_off)],
        A_ub=A_ub, b_ub=np.zeros(n_off),
        A_eq=A_eq if A_eq.shape[0] else None,
        b_eq=np.zeros(A_eq.shape[0]) if A_eq.shape[0] else None,
        bounds=np.r_[np.tile([-np.inf, np.inf], (V * r, 1)), np.tile([0.0, 1.0], (n_off, 1))],
        method="highs",
    )
    if res.status != 0:
        raise SeparablePairsError(
            "The linear program for the separable pairs failed: "
            f"{highs_message(res)}."
        )
    T = np.zeros_like(off)
    T[jo, v] = res.x[V * r:] > 0.5
    return T


def lp_size(data, rank):
    """Nonzeros of the linear program of :func:`separable_pairs` (its memory):
    one row per tie or off-support pair, ``m (V - 1)`` in all, each with at
    most ``2 rank + 1`` nonzeros."""
    return data.n_contexts * (data.n_tokens - 1) * (2 * rank + 1)


def pair_rows(plus, minus, Q, n_tokens, rank):
    """Sparse rows ``(c_plus - c_minus) . q`` over the flattened (n_tokens, rank) ``C``."""
    n = plus.size
    cols = np.r_[plus[:, None] * rank + np.arange(rank), minus[:, None] * rank + np.arange(rank)]
    return sp.csr_matrix(
        (np.r_[Q, -Q].ravel(), (np.tile(np.repeat(np.arange(n), rank), 2), cols.ravel())),
        shape=(n, n_tokens * rank),
    )
