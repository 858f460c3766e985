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
from scipy.sparse.linalg import splu
from sklearn import get_config
from sklearn.utils import gen_batches

from .._linalg._cg import truncated_cg
from ._generators import (
    RANK_RTOL,
    REFINEMENT_STEPS,
    GramSolver,
    PairGenerators,
    gram_logits,
    margin_pairs,
    support_pairs,
)

#: Relative primal infeasibility (ties and margins) accepted, vs the logit scale.
FEASIBILITY_RTOL = 1e-8
#: Relative duality gap accepted.
GAP_RTOL = 1e-6
#: Generators up to which the polish factors their dense Gram matrix.
DENSE_GENERATORS = 3000
#: Cholesky pivot ratio (about ``1 / cond``) of the generators' Gram matrix
#: below which the polish solves on the generator matrix itself instead: least
#: squares by orthogonal factorization lose ``eps cond(M)``, the Gram matrix
#: ``eps cond(M)^2`` (badly scaled or offset features).
GRAM_PIVOT_RATIO = 1e-8
#: Singular values of that matrix below this fraction of the largest are
#: dependent generators' round-off (a true direction of badly scaled features
#: is far above it: ``eps cond(M)`` is the accuracy of what is kept).
ROWS_RCOND = 1e-12
#: Largest dense generator matrix formed for that (about 160 MB).
DENSE_GENERATOR_ENTRIES = 20_000_000
#: Nonzeros of the generators' sparse Gram matrix (pairs of generators that
#: share a token) up to which the polish above :data:`DENSE_GENERATORS`
#: factors it by sparse LU instead of running conjugate gradients.
SPARSE_GRAM_NONZEROS = 5_000_000
#: Residual of that solve, relative to the right-hand side, accepted.
SPARSE_SOLVE_RTOL = 1e-10
#: Active-set corrections tried before giving up.
MAX_ROUNDS = 50
#: Multipliers of an approximate dual above this fraction of the largest mark
#: its support vectors: a dual method's iterate is far from exact, but its
#: active multipliers stand out by orders of magnitude.
ACTIVE_MULTIPLIER_RTOL = 1e-6
#: Fraction of the worst violation above which violated margins join the
#: active set in one round: adding every violated margin overshoots and
#: makes the active set cycle.
ADDED_VIOLATION_FRACTION = 0.5
#: Residual of the nonnegative refit of the multipliers, relative to the
#: target, accepted as the same ``W`` (round-off of the whitened Gram metric).
REFIT_RTOL = 1e-10


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


def constraint_residuals(logits, data):
    """Residuals of (6a) and (6b) from the (V, m) logits of a candidate ``W``.

    Returns the in-support logit differences ``l_zj - l_z0j`` (zero when (6a)
    holds), the margin slacks ``l_z0j - l_vj - 1`` as a (V, m) array (+inf on
    the supports; nonnegative when (6b) holds), and ``max(1, max |logit|)``.
    """
    z, z0, j = support_pairs(data)
    ties = logits[z, j] - logits[z0, j]
    z0, v, j = margin_pairs(data)
    slack = np.full(logits.shape, np.inf)
    slack[v, j] = logits[z0, j] - logits[v, j] - 1.0
    return ties, slack, max(1.0, float(np.abs(logits).max(initial=0.0)))


def primal_violation(data, logits):
    """Largest tie or margin violation of the (V, m) logits, over the logit scale."""
    ties, slack, logit_scale = constraint_residuals(logits, data)
    return max(float(np.max(np.abs(ties), initial=0.0)),
               float(np.max(-slack[~data.support_mask.T], initial=0.0))) / logit_scale


def certify(A, data, W=None):
    """:class:`Certificate` of the dual matrix ``A`` (dense) and the primal ``W``.

    ``W`` defaults to ``A H``. A ``W`` computed on its own (the polish on badly
    conditioned features, where ``A`` is large and ``A H`` cancels) is checked
    for feasibility itself, and the gap is the true duality gap
    ``P(W) - D(A) = ||W||^2 / 2 + ||A H||^2 / 2 + sum_off A``.
    """
    off = ~data.support_mask.T
    H = np.asarray(data.embeddings, dtype=np.float64)
    W_dual = A @ H
    W = W_dual if W is None else W
    primal = primal_violation(data, W @ H.T)
    dual_scale = max(float(np.abs(A).max(initial=0.0)), np.finfo(float).tiny)
    column_sums = float(np.abs(A.sum(axis=0)).max(initial=0.0))
    dual = max(float(np.max(A[off], initial=0.0)), column_sums) / dual_scale
    # P(W) = ||W||^2 / 2 and D(A) = -||A H||^2 / 2 - sum_off A.
    primal_value = 0.5 * float(np.sum(W * W))
    gap = (abs(primal_value + 0.5 * float(np.sum(W_dual * W_dual)) + float(A[off].sum()))
           / max(primal_value, np.finfo(float).tiny))
    return Certificate(primal=primal, dual=dual, gap=gap)


def kkt_violation(A, data, W=None):
    """Largest KKT residual of ``A`` and ``W`` (see :class:`Certificate`)."""
    cert = certify(A, data, W)
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


def _solve_generators(gens, rhs, A0, gram=None):
    """Coefficients ``c`` with ``G c = rhs``: dense when small, else sparse LU
    when ``G`` is sparse and nonsingular (:func:`_sparse_solve`), else
    preconditioned CG.

    CG starts from ``A0`` restricted to the generators. Each generator is a
    leaf ``e_t`` of a star centred on its context's anchor, with sign
    ``s = +1`` for a tie ``(e_z - e_z0)`` and ``-1`` for a margin
    ``(e_z0 - e_v)``: so ``c = s A0[t, j]``, and the diagonal block of ``G``
    of a context with ``n`` generators is ``K_jj D (I + 1 1^T) D``
    (``D = diag(s)``), whose inverse ``D (I - 1 1^T / (n + 1)) D / K_jj``
    is the block-Jacobi preconditioner. Each product with ``G`` is one
    logits product (:meth:`PairGenerators.gram_matvec`).
    """
    n = len(gens)
    if n <= DENSE_GENERATORS:
        return GramSolver(gens.gram()).solve(rhs)
    c = _sparse_solve(gens, rhs)
    if c is not None:
        return c
    Z, context = gens.H, gens.context
    m = Z.shape[0]
    sign = np.where(rhs == 0.0, 1.0, -1.0)
    leaf = np.where(rhs == 0.0, gens.plus, gens.minus)

    def matvec(c):
        return gens.gram_matvec(c, gram)

    diagonal = np.diag(gram) if gram is not None else np.einsum("ij,ij->i", Z, Z)
    block_size = np.bincount(context, minlength=m) + 1.0

    def precondition(r):
        y = sign * r
        y -= np.bincount(context, y, m)[context] / block_size[context]
        return sign * y / diagonal[context]

    return truncated_cg(matvec, rhs, sign * A0[leaf, context], rtol=1e-12,
                        precondition=precondition, max_iter=20 * int(np.sqrt(n)) + 200).x


def _sparse_solve(gens, rhs):
    """``c`` with ``G c = rhs`` by a sparse LU factorization of the generators'
    Gram matrix, when its token pattern is sparse (each token in few
    generators: many contexts, few support vectors each) and ``G`` is
    nonsingular to a residual of :data:`SPARSE_SOLVE_RTOL` after iterative
    refinement; else None."""
    G = gens.sparse_gram(SPARSE_GRAM_NONZEROS)
    if G is None:
        return None
    try:
        lu = splu(G)
    except RuntimeError:  # "Factor is exactly singular"
        return None
    c = lu.solve(rhs)
    for _ in range(REFINEMENT_STEPS):  # iterative refinement of the LU solve
        c += lu.solve(rhs - G @ c)
    residual = np.linalg.norm(G @ c - rhs)
    if not residual <= SPARSE_SOLVE_RTOL * max(np.linalg.norm(rhs), np.finfo(float).tiny):
        return None
    return c


def _solve_active(gens, rhs, A0, gram=None, primal=False):
    """``(c, W)``: coefficients of the active problem, and its minimum-norm
    solution ``W`` when it was computed on its own (else None).

    With ``primal`` (the generators are built on the embeddings themselves)
    and a badly conditioned Gram matrix, ``W`` is the minimum-norm solution
    of the active constraints by least squares on the generator matrix
    (orthogonal factorization: ``eps cond(M)`` instead of the Gram matrix's
    ``eps cond(M)^2``), and ``c`` any coefficients that reproduce it.
    """
    if primal and len(gens) <= DENSE_GENERATORS:
        solver = GramSolver(gens.gram())
        rows = (gens.dense_rows(DENSE_GENERATOR_ENTRIES)
                if solver.pivot_ratio < GRAM_PIVOT_RATIO else None)
        if rows is None:
            return solver.solve(rhs), None
        w = la.lstsq(rows, rhs, cond=ROWS_RCOND, lapack_driver="gelsd")[0]
        tokens = np.unique(np.r_[gens.plus, gens.minus])
        W = np.zeros((gens.n_tokens, gens.H.shape[1]))
        W[tokens] = w.reshape(tokens.size, -1)
        return la.lstsq(rows.T, w, cond=ROWS_RCOND, lapack_driver="gelsd")[0], W
    return _solve_generators(gens, rhs, A0, gram), None


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
    if np.linalg.norm(M @ fit.x - target) > REFIT_RTOL * max(np.linalg.norm(target),
                                                             np.finfo(float).tiny):
        return None
    return fit.x


def polish(data, Z, A, margin_tol=ACTIVE_MULTIPLIER_RTOL, gram=None, active=None):
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
    gram : ndarray of shape (n_contexts, n_contexts), default=None
        ``Z Z^T`` if stored (one product per logits instead of two).
    active : ndarray of bool, shape (n_tokens, n_contexts), default=None
        The initial active set of margins, when the caller knows it better
        than the multipliers of ``A`` (tight margins of a primal solution,
        weakly active ones included).

    Returns
    -------
    A_exact : ndarray of shape (n_tokens, n_contexts) or None
        None if the active set did not settle within :data:`MAX_ROUNDS`.
    W : ndarray of shape (n_tokens, n_features) or None
        The primal solution when it was computed on its own
        (:func:`_solve_active`), else None (``W = A H``).
    """
    primal = Z is data.embeddings
    off = ~data.support_mask.T
    if active is None:
        lam = np.where(off, -A, 0.0)
        active = lam > margin_tol * max(float(lam.max(initial=0.0)), np.finfo(float).tiny)
    active = active & off
    for _ in range(MAX_ROUNDS):
        gens, rhs = _active_generators(data, Z, active)
        c, W = _solve_active(gens, rhs, A, gram, primal)
        A = gens.dual_matrix(c).toarray()
        logits = gram_logits(A, Z, gram) if W is None else W @ Z.T
        _, slack, logit_scale = constraint_residuals(logits, data)
        violated = off & (slack < -FEASIBILITY_RTOL * logit_scale)
        if (violated & active).any():
            return None, None  # inconsistent active set (dependent generators)
        if violated.any():
            worst = float(slack[violated].min())
            active |= violated & (slack <= ADDED_VIOLATION_FRACTION * worst)
            continue
        negative = active & (A > FEASIBILITY_RTOL * max(1.0, float(np.abs(A).max())))
        if not negative.any():
            return A, W
        c_nonneg = _nonnegative_multipliers(gens, rhs, c)
        if c_nonneg is not None:
            return gens.dual_matrix(c_nonneg).toarray(), W
        active &= ~negative
    return None, None


def degenerate_pair(data):
    """The two most nearly collinear contexts with different supports, and their cosine.

    Computed in row chunks of scikit-learn's ``working_memory``.
    """
    H = np.asarray(data.embeddings, dtype=np.float64)
    norms = data.context_norms
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
    u, w = H / data.context_norms[[i, j], None]
    angle = min(np.linalg.norm(u - w), np.linalg.norm(u + w))
    return (f"Contexts {i} and {j} have different supports and nearly collinear "
            f"embeddings (angle {angle:.1e} rad); the NTP margin they allow is "
            "below what double precision resolves.")
