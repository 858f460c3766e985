"""The NTP-SVM (paper Definition 3), solved through its dual in row-space form.

Primal:  W^mm = argmin ||W||_F^2  subject to
    (6a) (e_z - e_z0)^T W h_j = 0          for z in S_j,
    (6b) (e_z0 - e_v)^T W h_j >= 1         for v not in S_j.

Stationarity gives ``W = A H`` with one dual column ``a_j`` in R^V per context:
``a_j`` sums to zero, and its out-of-support entries are ``-lambda_jv <= 0``.
The dual is therefore a QP over the (n_tokens, n_contexts) matrix ``A``:

    minimize   1/2 tr(A K A^T) + sum_{v not in S_j} A_vj
    subject to sum_v A_vj = 0,   A_vj <= 0 for v not in S_j,

with ``K = H H^T``: its Hessian is block diagonal (one ``K`` per token), and no
matrix indexed by (constraint, token x feature) is ever built. An interior-point
solve is then *polished*: the support vectors it finds define an equality-
constrained least-norm problem solved exactly in generator form, and the
polished matrix is kept when it satisfies every constraint (KKT then certifies
it is the unique optimum).
"""

import warnings

import clarabel
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ._data import as_ntp_data
from ._exceptions import NotNTPSeparableError
from ._generators import RANK_RTOL, GramSolver, PairGenerators, margin_pairs, support_pairs

#: Constraint violations accepted for a polished solution.
FEASIBILITY_ATOL = 1e-9
#: A dual direction with objective below this certifies non-separability.
CERTIFICATE_ATOL = 1e-7


def row_space(H):
    """Return ``(U, s, Vt, rank)``: thin SVD of ``H`` and its numerical rank."""
    U, s, Vt = np.linalg.svd(H, full_matrices=True)
    rank = int(np.sum(s > np.sqrt(RANK_RTOL) * s[0])) if s.size else 0
    return U, s, Vt, rank


def separability_certificate(data):
    """Farkas certificate that (6a)-(6b) are infeasible, or ``None``.

    The constraints are infeasible exactly when some dual matrix ``A`` (zero-sum
    columns, nonpositive off the supports) has ``A H = 0`` and a negative sum of
    off-support entries. ``A H = 0`` forces every row of ``A`` into the left null
    space of ``H``, so with full row rank (Lemma 1) no certificate exists; else
    an LP over null-space coordinates ``A = B N^T`` decides it.
    """
    H = np.asarray(data.embeddings, dtype=np.float64)
    U, _, _, rank = row_space(H)
    off = ~data.support_mask.T  # (V, m)
    if rank == data.n_contexts or not off.any():
        return None
    N = U[:, rank:]  # (m, k) orthonormal basis of the left null space
    V, k = data.n_tokens, N.shape[1]
    tok, ctx = np.nonzero(off)
    # Entry A[v, j] = N[j] . B[v]  -> one LP row per off-support pair.
    rows = np.repeat(np.arange(tok.size), k)
    cols = (tok[:, None] * k + np.arange(k)).ravel()
    entries = sp.csr_matrix((N[ctx].ravel(), (rows, cols)), shape=(tok.size, V * k))
    objective = np.asarray(entries.sum(axis=0)).ravel()
    sum_zero = sp.kron(np.ones((1, V)), sp.identity(k))  # sum_v B[v] = 0
    res = linprog(
        objective,
        A_ub=sp.vstack([entries, -objective[None, :]]),
        b_ub=np.r_[np.zeros(tok.size), 1.0],
        A_eq=sum_zero,
        b_eq=np.zeros(k),
        bounds=(None, None),
        method="highs",
    )
    if res.status != 0 or res.fun > -CERTIFICATE_ATOL:
        return None
    return res.x.reshape(V, k) @ N.T


def _solve_dual(data, K):
    """Interior-point solve of the dual QP; returns the (V, m) dual matrix ``A``."""
    V, m = data.n_tokens, data.n_contexts
    off = (~data.support_mask.T).ravel()  # row-major over (token, context)
    n = V * m
    P = sp.triu(sp.kron(sp.identity(V), sp.csr_matrix(K)), format="csc")
    q = off.astype(float)
    sum_cols = sp.kron(np.ones((1, V)), sp.identity(m))
    sign = sp.identity(n, format="csr")[np.flatnonzero(off)]
    A = sp.vstack([sum_cols, sign], format="csc")
    b = np.zeros(A.shape[0])
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = 1e-10
    settings.tol_feas = 1e-10
    solver = clarabel.DefaultSolver(
        P, q, A, b, [clarabel.ZeroConeT(m), clarabel.NonnegativeConeT(int(off.sum()))],
        settings,
    )
    solution = solver.solve()
    return np.asarray(solution.x).reshape(V, m)


def _polish(data, dual, W_ipm):
    """Exact least-norm solve on the support vectors found by the interior point."""
    tok_z0, tok_v, ctx = margin_pairs(data)
    lam = -dual[tok_v, ctx]
    active = lam > 1e-6 * max(float(lam.max(initial=0.0)), 1e-300)
    eq = support_pairs(data)
    gens = PairGenerators(
        np.r_[eq[0], tok_z0[active]], np.r_[eq[1], tok_v[active]],
        np.r_[eq[2], ctx[active]], data.embeddings, data.n_tokens,
    )
    rhs = np.r_[np.zeros(eq[0].size), np.ones(int(active.sum()))]
    W = gens.combine(GramSolver(gens.gram()).solve(rhs))
    violation = constraint_violation(W, data)
    norm_ok = np.linalg.norm(W) <= np.linalg.norm(W_ipm) * (1 + 1e-8)
    return W if violation <= FEASIBILITY_ATOL and norm_ok else None


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
    Solved as a dual QP with ``n_tokens * n_contexts`` variables whose Hessian
    is block diagonal in the Gram matrix ``K = H H^T``, then polished exactly on
    the support vectors. Feasibility holds to ``1e-9``.

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
    certificate = separability_certificate(data)
    if certificate is not None:
        raise NotNTPSeparableError(
            "The data are not NTP-separable: no W gives every in-support token "
            "equal logits and a positive margin over every out-of-support token "
            "(a Farkas certificate was found by linear programming).",
            certificate=certificate,
        )
    H = np.asarray(data.embeddings, dtype=np.float64)
    dual = _solve_dual(data, H @ H.T)
    W_ipm = dual @ H
    W = _polish(data, dual, W_ipm)
    if W is not None:
        return W
    violation = constraint_violation(W_ipm, data)
    if violation > 1e-6:
        warnings.warn(f"NTP-SVM solution violates its constraints by {violation:.2g}.",
                      RuntimeWarning, stacklevel=2)
    return W_ipm
