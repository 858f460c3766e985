"""Naive reference formulations, used only to check the library independently.

They build exactly what the library avoids: the explicit (equations x V*d)
Kronecker system and a cvxpy model over the full V x d variable.
"""

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog, minimize
from scipy.special import logsumexp


def random_ntp_problem(rng, n_contexts, n_tokens, n_features, support_size):
    """Gaussian embeddings with random supports and random in-support probabilities."""
    H = rng.standard_normal((n_contexts, n_features))
    P = np.zeros((n_contexts, n_tokens))
    for j in range(n_contexts):
        support = rng.choice(n_tokens, size=support_size, replace=False)
        p = rng.uniform(0.1, 1.0, size=support_size)
        P[j, support] = p / p.sum()
    return H, P


def supports(P):
    return [np.flatnonzero(row > 0) for row in P]


def kronecker_log_odds_system(H, P):
    """Rows vec((e_z - e_z0) h_j^T) for z in S_j minus its first token, and log-odds."""
    V, d = P.shape[1], H.shape[1]
    rows, rhs = [], []
    for j, S in enumerate(supports(P)):
        for z in S[1:]:
            E = np.zeros((V, d))
            E[z] += H[j]
            E[S[0]] -= H[j]
            rows.append(E.ravel())
            rhs.append(np.log(P[j, z] / P[j, S[0]]))
    return np.array(rows).reshape(-1, V * d), np.array(rhs)


def kronecker_log_odds_solution(H, P):
    """Minimum-norm least-squares solution of the explicit system (lies in F)."""
    M, ell = kronecker_log_odds_system(H, P)
    if M.shape[0] == 0:
        return np.zeros((P.shape[1], H.shape[1]))
    return np.linalg.lstsq(M, ell, rcond=None)[0].reshape(P.shape[1], H.shape[1])


def kronecker_projection(H, P, W):
    """P_F(W) as the projection onto the row space of the explicit system."""
    M, _ = kronecker_log_odds_system(H, P)
    if M.shape[0] == 0:
        return np.zeros_like(W)
    coef = np.linalg.lstsq(M.T, W.ravel(), rcond=None)[0]
    return (M.T @ coef).reshape(W.shape)


def naive_ntp_svm(H, P, solver=cp.CLARABEL):
    """NTP-SVM over the full V x d variable, written as in Definition 3.

    Returns ``(W, problem, equalities, inequalities)``; ``W`` is None when the
    problem is infeasible. The inequality multipliers come in context-major
    order, out-of-support tokens ascending.
    """
    V, d = P.shape[1], H.shape[1]
    W = cp.Variable((V, d))
    logits = cp.vec(W @ H.T, order="F")  # logit of token z in context j at j * V + z
    tied, anchor, top, beaten = [], [], [], []
    for j, S in enumerate(supports(P)):
        tied += [j * V + z for z in S[1:]]
        anchor += [j * V + S[0]] * (len(S) - 1)
        out = np.setdiff1d(np.arange(V), S)
        top += [j * V + S[0]] * len(out)
        beaten += [j * V + v for v in out]
    equalities = [logits[tied] == logits[anchor]] if tied else []
    inequalities = [logits[top] - logits[beaten] >= 1] if top else []
    problem = cp.Problem(cp.Minimize(cp.sum_squares(W)), equalities + inequalities)
    problem.solve(solver=solver)
    value = W.value if problem.status == cp.OPTIMAL else None
    return value, problem, equalities, inequalities


def cross_entropy(W, H, P, pi):
    """CE(W) straight from the definition (scipy's logsumexp)."""
    from scipy.special import logsumexp
    Z = H @ W.T
    log_q = Z - logsumexp(Z, axis=1, keepdims=True)
    return -np.sum(pi[:, None] * np.where(P > 0, P * log_q, 0.0))


# The implicit-bias limit, over the explicit V x d variable.
def pair_row(H, j, plus, minus, V):
    E = np.zeros((V, H.shape[1]))
    E[plus] += H[j]
    E[minus] -= H[j]
    return E.ravel()


def explicit_separable_pairs(H, P):
    """LP over vec(W) in R^{V d}: maximize sum t, ties, margins >= t; anchor = last token."""
    m, V = P.shape
    S = [np.flatnonzero(row > 0) for row in P]
    ties = [pair_row(H, j, z, S[j][-1], V) for j in range(m) for z in S[j][:-1]]
    pairs = [(j, v) for j in range(m) for v in range(V) if P[j, v] == 0]
    margins = np.array([pair_row(H, j, S[j][-1], v, V) for j, v in pairs])
    n, k = V * H.shape[1], len(pairs)
    res = linprog(np.r_[np.zeros(n), -np.ones(k)],
                  A_ub=sp.hstack([sp.csr_matrix(-margins), sp.eye(k)], format="csr"),
                  b_ub=np.zeros(k),
                  A_eq=sp.hstack([sp.csr_matrix(np.array(ties)), sp.csr_matrix((len(ties), k))],
                                 format="csr") if ties else None,
                  b_eq=np.zeros(len(ties)) if ties else None,
                  bounds=[(None, None)] * n + [(0, 1)] * k, method="highs")
    assert res.status == 0
    T = np.zeros(P.shape, dtype=bool)
    for (j, v), t in zip(pairs, res.x[n:]):
        T[j, v] = t > 0.5
    return T


def basis_of_G(H, mask):
    """Orthonormal basis (rows) of span{vec((e_z - e_z0) h_j^T) : z in S~_j}."""
    V = mask.shape[1]
    rows = [pair_row(H, j, z, np.flatnonzero(mask[j])[0], V)
            for j in range(H.shape[0]) for z in np.flatnonzero(mask[j])[1:]]
    if not rows:
        return np.zeros((0, V * H.shape[1]))
    _, s, Vt = np.linalg.svd(np.array(rows), full_matrices=False)
    return Vt[s > 1e-10 * s[0]]


def restricted_ce(W, H, P, pi, mask):
    Z = np.where(mask, H @ W.T, -np.inf)
    return float(pi @ (logsumexp(Z, axis=1) - np.sum(P * np.where(mask, Z, 0.0), axis=1)))


def explicit_finite_part(H, P, pi, mask):
    """BFGS over the coordinates of W in an orthonormal basis of G."""
    B = basis_of_G(H, mask)
    shape = (P.shape[1], H.shape[1])
    if B.shape[0] == 0:  # G = {0}
        return np.zeros(shape), restricted_ce(np.zeros(shape), H, P, pi, mask), B

    def fun(c):
        W = (c @ B).reshape(shape)
        Z = np.where(mask, H @ W.T, -np.inf)
        q = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
        return restricted_ce(W, H, P, pi, mask), B @ (((q - P) * pi[:, None]).T @ H).ravel()

    res = minimize(fun, np.zeros(B.shape[0]), jac=True, method="BFGS",
                   options={"gtol": 1e-11, "maxiter": 20_000})
    return (res.x @ B).reshape(shape), res.fun, B


def explicit_max_margin(H, P, mask, T, feature_map=None):
    """cvxpy QP over the V x d variable: ties on S~, margin >= 1 on T.

    With ``feature_map`` ``A``, the minimum-norm solution for the contexts
    ``H A`` (rows ``h_j^T A``), solved over ``V = U A^T`` on the rows of the
    well-conditioned ``H`` (same logits) with the objective ``||V A^-T||^2``.
    """
    m, n_tokens = P.shape
    A_inv = np.eye(H.shape[1]) if feature_map is None else np.linalg.inv(feature_map)
    U = cp.Variable((n_tokens, H.shape[1]))
    logits = cp.vec(U @ H.T, order="F")  # token z of context j at j * V + z
    tied, anchor, top, beaten = [], [], [], []
    for j in range(m):
        S = np.flatnonzero(mask[j])
        tied += [j * n_tokens + z for z in S[1:]]
        anchor += [j * n_tokens + S[0]] * (len(S) - 1)
        beaten += [j * n_tokens + v for v in np.flatnonzero(T[j])]
        top += [j * n_tokens + S[0]] * int(T[j].sum())
    constraints = [logits[top] - logits[beaten] >= 1]
    if tied:
        constraints.append(logits[tied] == logits[anchor])
    cp.Problem(cp.Minimize(cp.sum_squares(U @ A_inv.T)), constraints).solve(solver=cp.CLARABEL)
    return U.value @ A_inv.T


def ce(W, H, P, pi):
    return restricted_ce(W, H, P, pi, np.ones(P.shape, dtype=bool))


def explicit_limit(H, P, pi=None):
    """``(T, L*, W~, U~)`` of the rows as given, each from its explicit formulation.

    ``T`` by the LP over vec(W), ``W~`` and ``L*`` by BFGS over a basis of ``G``,
    ``U~`` by the cvxpy QP (None when ``T`` is empty); uniform weights by default.
    """
    pi = np.full(H.shape[0], 1.0 / H.shape[0]) if pi is None else pi
    T = explicit_separable_pairs(H, P)
    mask = (P > 0) | ((P == 0) & ~T)
    W, value, _ = explicit_finite_part(H, P, pi, mask)
    U = explicit_max_margin(H, P, mask, T) if T.any() else None
    return T, value, W, U


def assert_limit_equals(limit, T, loss_infimum, W, U):
    """A certified ``limit`` with the explicit ``T``, ``L*``, ``W~`` and ``U~``."""
    assert limit.status == "certified", limit.status
    np.testing.assert_array_equal(limit.separable_pairs, T)
    assert abs(limit.loss_infimum - loss_infimum) <= 1e-10
    np.testing.assert_allclose(limit.finite_component, W, atol=1e-6)
    if U is None:
        assert limit.max_margin_solution is None
    else:
        np.testing.assert_allclose(limit.max_margin_solution, U, atol=1e-6 * np.abs(U).max())
