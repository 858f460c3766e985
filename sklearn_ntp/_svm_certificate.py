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
from scipy.sparse.linalg import LinearOperator, cg

from ._generators import GramSolver, PairGenerators, margin_pairs, support_pairs

#: Relative primal infeasibility (ties and margins) accepted, vs the logit scale.
FEASIBILITY_RTOL = 1e-8
#: Relative duality gap accepted.
GAP_RTOL = 1e-6
#: Generators up to which the polish factors their dense Gram matrix.
DENSE_GENERATORS = 3000
#: Active-set corrections tried before giving up.
MAX_ROUNDS = 20


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
    c, _ = cg(operator, rhs, x0=c0, rtol=1e-14, atol=0.0, maxiter=20 * int(np.sqrt(n)) + 200)
    return c


def polish(data, Z, A, margin_tol=1e-6):
    """Exact dual matrix for the active set of ``A``, corrected until consistent.

    Parameters
    ----------
    data : NTPData
    Z : ndarray of shape (n_contexts, k)
        Embeddings or a factor with the same Gram matrix.
    A : ndarray of shape (n_tokens, n_contexts)
        Approximate dual solution.

    Returns
    -------
    A_exact : ndarray of shape (n_tokens, n_contexts) or None
        None if the active set did not settle within :data:`MAX_ROUNDS`.
    """
    off = ~data.support_mask.T
    lam = np.where(off, -A, 0.0)
    active = lam > margin_tol * max(float(lam.max(initial=0.0)), 1e-300)
    for _ in range(MAX_ROUNDS):
        gens, rhs = _active_generators(data, Z, active)
        A_exact = gens.dual_matrix(_solve_generators(gens, rhs, A)).toarray()
        W = A_exact @ Z
        logits = Z @ W.T
        z0, v, j = margin_pairs(data)
        slack = np.full(off.shape, np.inf)
        slack[v, j] = logits[j, z0] - logits[j, v] - 1.0
        logit_scale = max(1.0, float(np.abs(logits).max(initial=0.0)))
        scale = max(1.0, float(np.abs(A_exact).max(initial=0.0)))
        negative = active & (A_exact > FEASIBILITY_RTOL * scale)
        violated = off & ~active & (slack < -FEASIBILITY_RTOL * logit_scale)
        if not negative.any() and not violated.any():
            return A_exact
        active = (active & ~negative) | violated
        A = A_exact
    return None


def degenerate_pair(data):
    """The two most nearly collinear contexts with different supports, and their cosine.

    Computed in row chunks of scikit-learn's ``working_memory``.
    """
    from sklearn.utils import gen_batches, get_chunk_n_rows

    H = np.asarray(data.embeddings, dtype=np.float64)
    norms = np.linalg.norm(H, axis=1)
    Hn = H / np.where(norms > 0, norms, 1.0)[:, None]
    keys = np.unique(data.support_mask, axis=0, return_inverse=True)[1].ravel()
    best, pair = -1.0, (0, 0)
    chunk = get_chunk_n_rows(row_bytes=8 * H.shape[0], max_n_rows=H.shape[0])
    for rows in gen_batches(H.shape[0], chunk):
        cos = np.abs(Hn[rows] @ Hn.T)
        cos[keys[rows][:, None] == keys[None, :]] = -1.0
        i, j = np.unravel_index(np.argmax(cos), cos.shape)
        if cos[i, j] > best:
            best, pair = float(cos[i, j]), (rows.start + int(i), int(j))
    return pair, best


def degenerate_message(data):
    """Sentence naming the most nearly collinear pair of contexts."""
    (i, j), cos = degenerate_pair(data)
    return (f"Contexts {i} and {j} have different supports and nearly collinear "
            f"embeddings (|cos| = 1 - {1.0 - cos:.1e}); the NTP margin they allow is "
            "below what double precision resolves.")
