"""Exact polish of an approximate NTP-SVM dual, and the certificate of the result.

Any dual method ends near the optimum, which identifies the support vectors
(active margins). The equality-constrained problem on that active set —
in-support logits tied, active margins equal to one — has a minimum-norm
solution ``W = sum_g c_g (e_plus - e_minus) h_g^T``, a combination of the
constraint generators, with ``G c = rhs`` for their Gram matrix ``G``. Any
``c`` solving it gives the same ``W`` (``W`` lies in the generators' span),
so a Krylov solve may start from the dual iterate itself. Active sets are
corrected until no margin is violated and no multiplier is negative; the
result is then certified by its KKT residuals and its duality gap.
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la
from scipy.optimize import lsq_linear
from scipy.sparse.linalg import LinearOperator, cg
from sklearn import get_config
from sklearn.utils import gen_batches

from ._generators import RANK_RTOL, GramSolver, PairGenerators, margin_pairs, support_pairs

#: Relative primal infeasibility (ties and margins) accepted, vs the logit scale.
FEASIBILITY_RTOL = 1e-8
#: Relative duality gap accepted.
GAP_RTOL = 1e-6
#: Generators up to which the polish factors their dense Gram matrix.
DENSE_GENERATORS = 3000
#: Active-set corrections tried before giving up.
MAX_ROUNDS = 50


@dataclass(frozen=True)
class Certificate:
    """Residuals of a candidate NTP-SVM solution ``W = A H``.

    ``primal``: largest tie or margin violation over the logit scale;
    ``dual``: largest positive out-of-support entry of ``A`` over its scale;
    ``gap``: relative duality gap ``|P(W) - D(A)| / P(W)``.
    """

    primal: float
    dual: float
    gap: float

    @property
    def holds(self):
        """Whether the candidate is certified optimal."""
        return (self.primal <= FEASIBILITY_RTOL and self.dual <= FEASIBILITY_RTOL
                and self.gap <= GAP_RTOL)


def constraint_residuals(W, data):
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


def certify(A, data):
    """:class:`Certificate` of ``W = A H`` for the dual matrix ``A`` (dense)."""
    off = ~data.support_mask.T
    W = A @ np.asarray(data.embeddings, dtype=np.float64)
    ties, slack, logit_scale = constraint_residuals(W, data)
    primal = max(float(np.max(np.abs(ties), initial=0.0)),
                 float(np.max(-slack[off], initial=0.0))) / logit_scale
    dual_scale = max(float(np.abs(A).max(initial=0.0)), np.finfo(float).tiny)
    column_sums = float(np.abs(A.sum(axis=0)).max(initial=0.0))
    dual = max(float(np.max(A[off], initial=0.0)), column_sums) / dual_scale
    # P(W) = ||W||^2 / 2 and D(A) = -||A H||^2 / 2 - sum_off A (same W).
    primal_value = 0.5 * float(np.sum(W * W))
    gap = abs(2.0 * primal_value + float(A[off].sum())) / max(primal_value, np.finfo(float).tiny)
    return Certificate(primal=primal, dual=dual, gap=gap)


def kkt_violation(A, data):
    """Largest KKT residual of ``W = A H`` (see :class:`Certificate`)."""
    cert = certify(A, data)
    return max(cert.primal, cert.dual, cert.gap)


def _active_generators(data, Z, active):
    """Generators of the ties and active margins, with their right-hand sides."""
    eq = support_pairs(data)
    z0, v, j = margin_pairs(data)
    pick = active[v, j]
    gens = PairGenerators(np.r_[eq[0], z0[pick]], np.r_[eq[1], v[pick]],
                          np.r_[eq[2], j[pick]], Z, data.n_tokens)
    rhs = np.r_[np.zeros(eq[0].size), np.ones(int(pick.sum()))]
    return gens, rhs


def _solve_generators(gens, rhs, A0):
    """Coefficients ``c`` with ``G c = rhs``: dense when small, else CG warm-started at ``A0``."""
    n = len(gens)
    if n <= DENSE_GENERATORS:
        return GramSolver(gens.gram()).solve(rhs)
    # A0 restricted to the generators: ties carry A_zj, margins carry -A_vj.
    c0 = np.zeros(n)
    n_ties = int(np.count_nonzero(rhs == 0.0))
    c0[:n_ties] = A0[gens.plus[:n_ties], gens.context[:n_ties]]
    c0[n_ties:] = -A0[gens.minus[n_ties:], gens.context[n_ties:]]
    operator = LinearOperator((n, n), matvec=lambda c: gens.inner(gens.combine(c)),
                              dtype=np.float64)
    c, _ = cg(operator, rhs, x0=c0, rtol=1e-12, atol=0.0, maxiter=20 * int(np.sqrt(n)) + 200)
    return c


def _nonnegative_multipliers(gens, rhs, c):
    """Other coefficients of the same ``W``, with nonnegative margin multipliers.

    With more active constraints than independent generators (degenerate
    data, ``m > d``), the minimum-norm coefficients may have negative margin
    multipliers although nonnegative ones exist. A bounded least-squares fit
    ``min ||B^T (c' - c)||`` in the whitened Gram metric finds them (dense
    regime only); returns None if they do not exist.
    """
    if len(gens) > DENSE_GENERATORS:
        return None
    vals, vecs = la.eigh(gens.gram())
    keep = vals > RANK_RTOL * max(float(vals[-1]), np.finfo(float).tiny)
    M = np.sqrt(vals[keep])[:, None] * vecs[:, keep].T
    target = M @ c
    lower = np.where(rhs == 0.0, -np.inf, 0.0)
    fit = lsq_linear(M, target, bounds=(lower, np.inf), method="bvls")
    if np.linalg.norm(M @ fit.x - target) > 1e-10 * max(np.linalg.norm(target), 1e-300):
        return None
    return fit.x


def polish(data, Z, A, margin_tol=1e-6):
    """Exact dual matrix for the active set of ``A``, corrected until consistent.

    Each round solves the equality-constrained problem of the active set; it
    adds the worst violated margins while there are any, and otherwise drops
    the margins whose multipliers must be negative.

    Parameters
    ----------
    data : NTPData
    Z : ndarray of shape (n_contexts, k)
        Embeddings or a factor with the same Gram matrix.
    A : ndarray of shape (n_tokens, n_contexts)
        Approximate dual solution.
    margin_tol : float
        Multipliers above ``margin_tol`` times the largest mark the initial
        active set.

    Returns
    -------
    A_exact : ndarray of shape (n_tokens, n_contexts) or None
        None if the active set did not settle within :data:`MAX_ROUNDS`.
    """
    off = ~data.support_mask.T
    lam = np.where(off, -A, 0.0)
    active = lam > margin_tol * max(float(lam.max(initial=0.0)), 1e-300)
    z0, v, j = margin_pairs(data)
    for _ in range(MAX_ROUNDS):
        gens, rhs = _active_generators(data, Z, active)
        c = _solve_generators(gens, rhs, A)
        A = gens.dual_matrix(c).toarray()
        logits = Z @ (A @ Z).T
        slack = np.full(off.shape, np.inf)
        slack[v, j] = logits[j, z0] - logits[j, v] - 1.0
        logit_scale = max(1.0, float(np.abs(logits).max(initial=0.0)))
        violated = off & (slack < -FEASIBILITY_RTOL * logit_scale)
        if (violated & active).any():
            return None  # inconsistent active set (dependent generators)
        if violated.any():
            # The worst half only: adding every violated margin overshoots
            # and makes the active set cycle.
            active |= violated & (slack <= 0.5 * float(slack[violated].min()))
            continue
        negative = active & (A > FEASIBILITY_RTOL * max(1.0, float(np.abs(A).max())))
        if not negative.any():
            return A
        c_nonneg = _nonnegative_multipliers(gens, rhs, c)
        if c_nonneg is not None:
            return gens.dual_matrix(c_nonneg).toarray()
        active &= ~negative
    return None


def degenerate_pair(data):
    """The two most nearly collinear contexts with different supports, and their cosine.

    Computed in row chunks of scikit-learn's ``working_memory``.
    """
    H = np.asarray(data.embeddings, dtype=np.float64)
    norms = np.linalg.norm(H, axis=1)
    Hn = H / np.where(norms > 0, norms, 1.0)[:, None]
    keys = np.unique(data.support_mask, axis=0, return_inverse=True)[1].ravel()
    best, pair = -1.0, (0, 0)
    chunk = max(1, int(get_config()["working_memory"] * 2**20 // (8 * H.shape[0])))
    for rows in gen_batches(H.shape[0], chunk):
        cos = np.abs(Hn[rows] @ Hn.T)
        cos[keys[rows][:, None] == keys[None, :]] = -1.0
        i, j = np.unravel_index(np.argmax(cos), cos.shape)
        if cos[i, j] > best:
            best, pair = float(cos[i, j]), (rows.start + int(i), int(j))
    return pair, best


def degenerate_message(data):
    """Sentence naming the most nearly collinear pair of contexts."""
    (i, j), _ = degenerate_pair(data)
    H = np.asarray(data.embeddings, dtype=np.float64)[[i, j]]
    u, w = H / np.linalg.norm(H, axis=1, keepdims=True)
    angle = min(np.linalg.norm(u - w), np.linalg.norm(u + w))
    return (f"Contexts {i} and {j} have different supports and nearly collinear "
            f"embeddings (angle {angle:.1e} rad); the NTP margin they allow is "
            "below what double precision resolves.")
