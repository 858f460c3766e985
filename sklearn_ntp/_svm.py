"""The NTP-SVM (paper Definition 3), solved through its dual in row-space form.

Primal:  W^mm = argmin ||W||_F^2  subject to
    (6a) (e_z - e_z0)^T W h_j = 0          for z in S_j,
    (6b) (e_z0 - e_v)^T W h_j >= 1         for v not in S_j.

Stationarity gives ``W = A H`` with one dual column ``a_j`` in R^V per context:
``a_j`` sums to zero, and its out-of-support entries are ``-lambda_jv <= 0``.
The dual is therefore a QP over the (n_tokens, n_contexts) matrix ``A``:

    minimize   1/2 tr(A K A^T) + sum_{v not in S_j} A_vj
    subject to sum_v A_vj = 0,   A_vj <= 0 for v not in S_j,

with ``K = H H^T``. A primal-dual interior point (:mod:`._interior_point`)
solves it with one (m, m) system per token plus an (m, m) Schur complement per
step, so no matrix indexed by (constraint, token x feature) is ever built.
Infeasibility is decided by a Farkas certificate (:mod:`._farkas`). The support vectors it finds
then define an equality-constrained problem that is solved exactly; the
result is returned only once the KKT conditions certify it (else the
interior-point solution, with a warning if it is not accurate to ``1e-6``).
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._data import as_ntp_data
from ._exceptions import NotNTPSeparableError
from ._farkas import separability_certificate
from ._generators import (
    RANK_RTOL,
    GramSolver,
    PairGenerators,
    margin_pairs,
    support_pairs,
)
from ._interior_point import interior_point, psd_inverse

#: Constraint violations accepted while refining the support vectors.
FEASIBILITY_ATOL = 1e-9
#: KKT violation below which a polished solution is certified optimal.
KKT_ATOL = 1e-8
#: Smallest singular-value ratio of H for the structured (full-rank) path.
WELL_CONDITIONED = 1e-4
#: Relative ridges of the lifted embeddings tried for degenerate Gram matrices.
LIFTS = (1e-7, 1e-9, 1e-11)


def embedding_rank(H):
    """Return ``(s, rank)``: singular values of ``H`` and its numerical rank."""
    s = np.linalg.svd(H, compute_uv=False)
    rank = int(np.sum(s > np.sqrt(RANK_RTOL) * s[0])) if s.size else 0
    return s, rank


def _structured_polish(data, K, off, active):
    """Exact dual for a guessed support-vector set, inactive entries fixed at 0.

    Per token ``v`` the free entries ``F_v`` (supports and active pairs) solve
    ``K_FF a_F = -(c_F + nu_F)``; the column sums fix ``nu`` through an
    (m, m) Schur complement. Needs ``K`` definite (full-rank embeddings).
    """
    V, m = off.shape
    free = ~off | active
    S = np.zeros((m, m))
    b = np.zeros(m)
    inverses = []
    for v in range(V):
        F = np.flatnonzero(free[v])
        K_inv = psd_inverse(K[np.ix_(F, F)])
        S[np.ix_(F, F)] += K_inv
        b[F] += K_inv @ off[v, F]
        inverses.append((F, K_inv))
    nu = -psd_inverse(S) @ b
    A = np.zeros((V, m))
    for v, (F, K_inv) in enumerate(inverses):
        A[v, F] = -K_inv @ (off[v, F] + nu[F])
    return A


def _generator_polish(data, K, off, active):
    """Exact dual for a guessed support-vector set, in generator form.

    Minimum-norm ``W`` with in-support logit differences 0 and active margins 1,
    as a combination of the constraint generators (any rank of ``H``).
    """
    eq = support_pairs(data)
    z0, v, j = margin_pairs(data)
    pick = active[v, j]
    gens = PairGenerators(np.r_[eq[0], z0[pick]], np.r_[eq[1], v[pick]],
                          np.r_[eq[2], j[pick]], data.embeddings, data.n_tokens)
    rhs = np.r_[np.zeros(eq[0].size), np.ones(int(pick.sum()))]
    return gens.dual_matrix(GramSolver(gens.gram()).solve(rhs)).toarray()


def _refine_active_set(data, K, off, A, polish, max_rounds=20):
    """Primal-dual active set from the interior point's support vectors.

    Each round solves the equality-constrained problem exactly, then adds the
    violated margins and drops the negative multipliers, until neither exists.
    """
    lam = np.where(off, -A, 0.0)
    active = lam > 1e-6 * max(float(lam.max(initial=0.0)), 1e-300)
    H = np.asarray(data.embeddings, dtype=np.float64)
    for _ in range(max_rounds):
        A_exact = polish(data, K, off, active)
        _, slack, logit_scale = _constraint_residuals(A_exact @ H, data)
        negative = active & (A_exact > FEASIBILITY_ATOL * max(1.0, np.abs(A_exact).max()))
        violated = off & ~active & (slack < -FEASIBILITY_ATOL * logit_scale)
        if not negative.any() and not violated.any():
            return A_exact
        active = (active & ~negative) | violated
    return None


def kkt_violation(A, data):
    """Largest KKT violation of ``W = A H`` for the NTP-SVM with dual matrix ``A``.

    Checks primal feasibility (6a)-(6b) relative to the largest logit, dual
    feasibility (zero column sums, nonpositive out-of-support entries)
    relative to the largest multiplier, and complementary slackness relative
    to their product (each scale at least 1): nearly non-separable data have
    a huge ``W^mm``, whose rounding errors grow with it.
    """
    off = ~data.support_mask.T
    W = A @ np.asarray(data.embeddings, dtype=np.float64)
    ties, slack, logit_scale = _constraint_residuals(W, data)
    primal = max(float(np.max(np.abs(ties), initial=0.0)),
                 float(np.max(-slack[off], initial=0.0)))
    dual_scale = max(1.0, float(np.abs(A).max()))
    return max(
        primal / logit_scale,
        float(np.abs(A.sum(axis=0)).max()) / dual_scale,
        float(np.max(A[off], initial=0.0)) / dual_scale,
        float(np.max(np.abs(A[off] * slack[off]), initial=0.0)) / (dual_scale * logit_scale),
    )


def _constraint_residuals(W, data):
    """Residuals of (6a) and (6b) from one logits matrix of ``W``.

    Returns the in-support logit differences ``l_zj - l_z0j`` (zero when (6a)
    holds), the margin slacks ``l_z0j - l_vj - 1`` as a (V, m) array (+inf on
    the supports; nonnegative when (6b) holds), and ``max(1, max |logit|)``.
    """
    logits = np.asarray(data.embeddings, dtype=np.float64) @ W.T  # (m, V)
    z, z0, j = support_pairs(data)
    ties = logits[j, z] - logits[j, z0]
    z0, v, j = margin_pairs(data)
    slack = np.full(logits.T.shape, np.inf)
    slack[v, j] = logits[j, z0] - logits[j, v] - 1.0
    return ties, slack, max(1.0, float(np.abs(logits).max(initial=0.0)))


def ntp_svm(X, y=None, sample_weight=None):
    """Max-margin direction: the NTP-SVM solution ``W^mm`` (paper Definition 3).

    ``W^mm = argmin ||W||_F`` subject to equal logits on each support
    (6a) and in-support logits exceeding out-of-support logits by one (6b).
    ``W^mm`` lies in the orthogonal complement of the data subspace, and
    ``1 / ||W^mm||`` is the largest NTP margin of a unit-norm matrix there.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or NTPData
        Context embeddings, or aggregated data (then ``y`` is ignored).
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights (only which rows have positive weight matters).

    Returns
    -------
    W_mm : ndarray of shape (n_tokens, n_features)
        The NTP-SVM solution. If every context has full support there is no
        inequality, and ``W_mm`` is the zero matrix (the margin is undefined).

    Raises
    ------
    NotNTPSeparableError
        If the constraints are infeasible; the error carries a Farkas
        certificate computed by a linear program.

    Notes
    -----
    Solved as a dual QP over the (n_tokens, n_contexts) matrix ``A`` with
    ``W = A H`` (row-space form), by an interior point whose Newton steps cost
    ``n_tokens`` inversions of (m, m) matrices. The support vectors it finds are
    then refined into the exact solution, which is certified by the KKT
    conditions to ``1e-8`` (relative to the largest logit and multiplier).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import ntp_svm
    >>> X = np.eye(2)
    >>> Y = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    >>> ntp_svm(X, Y).round(4)
    array([[ 0.3333, -0.3333],
           [ 0.3333, -0.3333],
           [-0.6667,  0.6667]])
    """
    data = as_ntp_data(X, y, sample_weight)
    if data.support_mask.all():
        return np.zeros((data.n_tokens, data.n_features))
    H = np.asarray(data.embeddings, dtype=np.float64)
    sing, rank = embedding_rank(H)
    K = H @ H.T
    off = ~data.support_mask.T
    if rank == data.n_contexts and sing[-1] > WELL_CONDITIONED * sing[0]:
        candidates = _definite_candidates(data, K, off, sing[0] ** 2)
    else:
        certificate = separability_certificate(data, rank)
        if certificate is not None:
            raise NotNTPSeparableError(
                "The data are not NTP-separable: no W gives every in-support token "
                "equal logits and a positive margin over every out-of-support token "
                "(a Farkas certificate was found by linear programming).",
                certificate=certificate,
            )
        candidates = _lifted_candidates(data, K, off, sing[0] ** 2)
    best, best_violation = None, np.inf
    for A_ipm, A_exact in candidates:
        if A_exact is not None and kkt_violation(A_exact, data) <= KKT_ATOL:
            return A_exact @ H
        violation = kkt_violation(A_ipm, data)
        if violation < best_violation:
            best, best_violation = A_ipm, violation
    if best_violation > 1e-6:
        warnings.warn(
            "The NTP-SVM solution meets its optimality (KKT) conditions only to "
            f"{best_violation:.2g}.", ConvergenceWarning, stacklevel=2,
        )
    return best @ H


def _definite_candidates(data, K, off, scale):
    """Interior point on ``K`` itself with the structured polish, then the fallbacks."""
    A_ipm = interior_point(K, off)
    yield A_ipm, _refine_active_set(data, K, off, A_ipm, _structured_polish)
    yield from _lifted_candidates(data, K, off, scale)


def _lifted_candidates(data, K, off, scale):
    """Interior points on lifted embeddings ``[H, eps I]``, ``eps`` shrinking.

    A rank-deficient (or nearly so) ``K`` makes the dual degenerate; the lifted
    problem is full rank with the same constraints, and its solution tends to
    ``W^mm`` as ``eps -> 0``. It only has to reveal the support vectors: the
    generator-form polish that follows is exact for ``H`` itself.
    """
    for lift in LIFTS:
        A_ipm = interior_point(K + lift * scale * np.eye(K.shape[0]), off)
        yield A_ipm, _refine_active_set(data, K, off, A_ipm, _generator_polish)
