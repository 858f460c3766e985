"""The NTP-SVM (paper Definition 3), solved through its dual in row-space form.

Primal:  W^mm = argmin ||W||_F^2  subject to
    (6a) (e_z - e_z0)^T W h_j = 0          for z in S_j,
    (6b) (e_z0 - e_v)^T W h_j >= 1         for v not in S_j.

Stationarity gives ``W = A H`` with one dual column ``a_j`` in R^V per context:
``a_j`` sums to zero, and its out-of-support entries are ``-lambda_jv <= 0``.
The dual is therefore a QP over the (n_tokens, n_contexts) matrix ``A``:

    minimize   1/2 tr(A K A^T) + sum_{v not in S_j} A_vj
    subject to sum_v A_vj = 0,   A_vj <= 0 for v not in S_j,

with ``K = H H^T``. A primal-dual interior point solves it with one (m, m)
system per token plus an (m, m) Schur complement per step, so no matrix indexed
by (constraint, token x feature) is ever built. The support vectors it finds
then define an equality-constrained problem that is solved exactly; the
result is returned only once the KKT conditions certify it (else the
interior-point solution, with a warning if it is not accurate to ``1e-6``).
"""

import warnings

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.optimize import linprog
from sklearn.exceptions import ConvergenceWarning

from ._data import as_ntp_data
from ._exceptions import NotNTPSeparableError
from ._generators import RANK_RTOL, GramSolver, PairGenerators, margin_pairs, support_pairs

#: Constraint violations accepted while refining the support vectors.
FEASIBILITY_ATOL = 1e-9
#: KKT violation below which a polished solution is certified optimal.
KKT_ATOL = 1e-8
#: Smallest singular-value ratio of H for the structured (full-rank) path.
WELL_CONDITIONED = 1e-4
#: Relative ridges of the lifted embeddings tried for degenerate Gram matrices.
LIFTS = (1e-7, 1e-9, 1e-11)
#: A dual direction with objective below this certifies non-separability.
CERTIFICATE_ATOL = 1e-7


def embedding_rank(H):
    """Return ``(s, rank)``: singular values of ``H`` and its numerical rank."""
    s = np.linalg.svd(H, compute_uv=False)
    rank = int(np.sum(s > np.sqrt(RANK_RTOL) * s[0])) if s.size else 0
    return s, rank


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


def _newton_solver(K, d):
    """Factor the Newton system of the dual: per token ``M_v = K + diag(d_v)``, then
    the Schur complement ``S = sum_v M_v^{-1}`` of the column-sum constraint.

    Returns ``solve(g, r_p) -> (da, dnu)`` for ``M_v da_v + dnu = g_v``,
    ``sum_v da_v = -r_p``: ``V`` batched (m, m) inverses and one (m, m) solve.
    """
    idx = np.arange(K.shape[0])
    M = np.repeat(K[None, :, :], d.shape[0], axis=0)
    M[:, idx, idx] += d
    M_inv = np.linalg.inv(M)
    S = M_inv.sum(axis=0)
    if not np.all(np.isfinite(S)):
        raise la.LinAlgError("Newton system of the interior point is not finite.")
    S_inv = _psd_inverse(S)

    def solve(g, r_p):
        Mg = np.einsum("vij,vj->vi", M_inv, g)
        dnu = S_inv @ (Mg.sum(axis=0) + r_p)
        return Mg - np.einsum("vij,j->vi", M_inv, dnu), dnu

    return solve


def _interior_point(K, off, tol=1e-10, max_iter=200):
    """Mehrotra predictor-corrector on the dual QP; returns the dual matrix ``A``.

    ``off`` (V, m) marks the sign-constrained entries. ``lam = -A[off]`` are
    the primal multipliers, ``z`` the primal margin slacks ``t_j - l_vj - 1``.
    """
    V, m = off.shape
    c = off.astype(float)
    A = -c.copy()
    z = c.copy()
    nu = np.zeros(m)
    n_off = max(int(off.sum()), 1)
    # Overflow on degenerate data is caught by the finiteness checks below.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for _ in range(max_iter):
            lam = np.where(off, -A, 1.0)
            r_d = A @ K + c + nu + z
            r_p = A.sum(axis=0)
            mu = float(np.sum((lam * z)[off])) / n_off
            if max(np.abs(r_d).max(), np.abs(r_p).max()) < tol and mu < tol:
                break
            try:
                solve = _newton_solver(K, np.where(off, z / lam, 0.0))
            except (la.LinAlgError, np.linalg.LinAlgError):
                break  # numerically stalled: the caller verifies whatever it gets

            def direction(rc):
                dA, dnu = solve(-r_d - np.where(off, rc / lam, 0.0), r_p)
                return dA, dnu, np.where(off, (rc + z * dA) / lam, 0.0)

            dA, dnu, dz = direction(np.where(off, -lam * z, 0.0))
            step = _step_to_boundary(lam, -dA, z, dz, off)
            mu_aff = float(np.sum(((lam - step * dA) * (z + step * dz))[off])) / n_off
            sigma = (mu_aff / mu) ** 3 if mu > 0 else 0.0
            dA, dnu, dz = direction(np.where(off, sigma * mu - lam * z + dA * dz, 0.0))
            step = min(1.0, 0.99 * _step_to_boundary(lam, -dA, z, dz, off))
            if not (np.isfinite(step) and np.all(np.isfinite(dA))):
                break
            A += step * dA
            z += step * dz
            nu += step * dnu
    return A


def _step_to_boundary(lam, dlam, z, dz, off):
    """Largest step keeping ``lam`` and ``z`` nonnegative on the constrained entries."""
    ratios = [-x[off & (dx < 0)] / dx[off & (dx < 0)] for x, dx in ((lam, dlam), (z, dz))]
    return float(min(np.min(r, initial=np.inf) for r in ratios))


def _psd_inverse(M):
    """Inverse of a PSD matrix: Cholesky when definite, pseudo-inverse otherwise."""
    try:
        return la.cho_solve(la.cho_factor(M), np.eye(M.shape[0]))
    except la.LinAlgError:
        return la.pinvh(M)


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
        K_inv = _psd_inverse(K[np.ix_(F, F)])
        S[np.ix_(F, F)] += K_inv
        b[F] += K_inv @ off[v, F]
        inverses.append((F, K_inv))
    nu = -_psd_inverse(S) @ b
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
        slack, logit_scale = _margin_slack(A_exact @ H, data)
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
    slack, logit_scale = _margin_slack(W, data)
    dual_scale = max(1.0, float(np.abs(A).max()))
    return max(
        constraint_violation(W, data) / logit_scale,
        float(np.abs(A.sum(axis=0)).max()) / dual_scale,
        float(np.max(A[off], initial=0.0)) / dual_scale,
        float(np.max(np.abs(A[off] * slack[off]), initial=0.0)) / (dual_scale * logit_scale),
    )


def _margin_slack(W, data):
    """Margin slacks ``l_z0j - l_vj - 1`` of out-of-support pairs as a (V, m)
    array (+inf elsewhere), and the scale ``max(1, max |logit|)`` of ``W``."""
    logits = (np.asarray(data.embeddings, dtype=np.float64) @ W.T).T  # (V, m)
    z0, v, j = margin_pairs(data)
    slack = np.full(logits.shape, np.inf)
    slack[v, j] = logits[z0, j] - logits[v, j] - 1.0
    return slack, max(1.0, float(np.abs(logits).max(initial=0.0)))


def constraint_violation(W, data):
    """Largest violation of (6a) and (6b) by ``W``."""
    eq = PairGenerators(*support_pairs(data), data.embeddings, data.n_tokens).inner(W)
    ineq = PairGenerators(*margin_pairs(data), data.embeddings, data.n_tokens).inner(W)
    return max(float(np.max(np.abs(eq), initial=0.0)),
               float(np.max(1.0 - ineq, initial=0.0)))


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
    A_ipm = _interior_point(K, off)
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
        A_ipm = _interior_point(K + lift * scale * np.eye(K.shape[0]), off)
        yield A_ipm, _refine_active_set(data, K, off, A_ipm, _generator_polish)
