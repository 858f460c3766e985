"""Farkas certificates that the NTP-separability constraints (6a)-(6b) are infeasible."""

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.optimize import linprog

from .._exceptions import CertificationError
from .._linalg._highs import highs_message
from ._basis import context_basis, orthonormal_data
from ._svm_certificate import degenerate_message

#: A dual direction with objective below this certifies non-separability.
CERTIFICATE_ATOL = 1e-7
#: Largest ``||A H||_F / |sum_off A|`` (an upper bound on the NTP margin of
#: unit-norm decoders, with rows of ``H`` scaled to norm <= 1) accepted as a
#: certificate that the margin is zero rather than merely tiny.
MARGIN_BOUND_ATOL = 1e-10


def margin_bound(A, H):
    """``||A H||_F / |sum of off-support entries|``: the margin that ``A`` allows.

    For any ``W`` meeting (6a)-(6b), ``<A H, W> >= -sum_off A``, hence
    ``1 / ||W|| <= margin_bound`` (0 for an exact Farkas certificate).
    """
    total = -float(np.sum(np.minimum(A, 0.0)))
    return float(np.linalg.norm(A @ H)) / max(total, np.finfo(float).tiny)


def separability_certificate(data, options=None, gram=None):
    """Verified Farkas certificate that (6a)-(6b) are infeasible, or ``None``.

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

    Feasibility does not depend on the features' coordinates, and neither
    does ``A H = 0`` (it says that the rows of ``A`` are orthogonal to the
    column space of ``H``): the LP is solved for an orthonormal basis ``Q`` of
    that column space (:mod:`._basis`), so badly scaled or offset features
    cost it nothing, and its margin bound is measured there.

    ``gram`` is the :class:`~sklearn_ntp._linalg._gram.GramFactor` of
    ``data.embeddings`` if one exists (for :func:`._basis.context_basis`).
    ``options`` are passed to HiGHS (e.g. ``{"time_limit": 60}``). A failed LP
    raises :class:`CertificationError` (never read as "no certificate"), and so
    does a direction whose residual ``A H`` is too large to be a certificate:
    the data are then numerically degenerate.
    """
    off = ~data.support_mask.T  # (V, m)
    coordinates = context_basis(data.embeddings, gram)
    rank = coordinates.rank
    if rank == data.n_contexts or not off.any():
        return None
    H = coordinates.Q
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
        (N[cb].ravel(),
         (np.repeat(np.arange(tb.size), k), (tb[:, None] * k + np.arange(k)).ravel())),
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
        options=options or {},
    )
    if res.status != 0:
        raise CertificationError(
            "The linear program deciding NTP-separability failed "
            f"(HiGHS: {highs_message(res)}).",
            status=f"lp_{res.status}",
        )
    if res.fun > -CERTIFICATE_ATOL:
        return None
    A = res.x.reshape(V, k) @ N.T
    # Exact signs and zero column sums (the anchor token absorbs the rounding).
    A = np.where(off, np.minimum(A, 0.0), A)
    P = data.probabilities
    A[P.indices[P.indptr[:-1]], np.arange(m)] -= A.sum(axis=0)
    bound = margin_bound(A, H)
    if bound > MARGIN_BOUND_ATOL:
        raise CertificationError(
            "Separability cannot be decided: the best Farkas direction still allows "
            f"a margin of {bound:.2g} (in orthonormal coordinates of the contexts). "
            + degenerate_message(orthonormal_data(data, coordinates)),
            status="degenerate", residuals={"margin_bound": bound},
        )
    return A
