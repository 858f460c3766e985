"""Naive reference formulations, used only to check the library independently.

They build exactly what the library avoids: the explicit (equations x V*d)
Kronecker system and a cvxpy model over the full V x d variable.
"""

import cvxpy as cp
import numpy as np


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
