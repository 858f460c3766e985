"""The NTP-SVM by constraint generation: a working set of margins.

With ``d`` much smaller than ``m`` the NTP-SVM has ``m (V - 1)`` margins on
only ``V d`` unknowns, and few of them are active at the optimum. The
working-set (cutting-plane) method solves the problem restricted to a small
set of margins (all ties are always kept), then scans every off-support pair
for margins that the restricted solution violates, adds the worst few of
each context, drops the margins that are clearly inactive, and solves again,
until no margin is violated. Each restricted
problem is the row-space primal of :func:`._svm.ntp_svm`'s ``"cvxpy"`` method
(``W = W_Z Q^T``, ``n_tokens x min(m, d)`` variables) with one sparse row of
``2 min(m, d)`` nonzeros per kept constraint, solved by Clarabel. The scan
runs over blocks of contexts within scikit-learn's ``working_memory``; no
matrix indexed by (token, feature) pairs is formed.

The restricted problems are relaxations: dropping margins with zero
multipliers keeps the restricted solution optimal, adding violated ones
raises the optimal norm, so no working set repeats, and the first restricted
solution feasible for every margin is the NTP-SVM solution. Its tight
margins and multipliers then go through the same exact polish and
certificate, over all constraints, as every other method.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.utils import gen_batches

from .._loss._cross_entropy import rows_per_block
from ._generators import support_pairs
from ._svm_dual_cd import sequential_dual

#: Off-support tokens per context in the first working set: those whose
#: tokens' mean context is closest in direction to the context.
INITIAL_PAIRS = 8
#: Up to this many tokens, the first working set is ranked by a few epochs
#: of the sequential dual method over all margins (:func:`_dual_ranked_pairs`).
FEW_TOKENS = 4 * INITIAL_PAIRS
INITIAL_EPOCHS = 10
#: Most violated margins added per context in a round.
ADDED_PAIRS = 5
#: Rounds of constraint generation before giving up.
MAX_ROUNDS = 50
#: Margin violation, relative to ``max(1, max |logit|)``, above which a pair
#: joins the working set: the restricted problems are solved to Clarabel's
#: accuracy, and the polish that follows removes what is left.
VIOLATION_RTOL = 1e-9

#: Margins of the working set leave it when their multiplier is below this
#: fraction of the largest and their slack above :data:`DROP_SLACK` (most
#: margins the scan adds are inactive at the next restricted optimum).
DROP_MULTIPLIER_RTOL = 1e-9
DROP_SLACK = 1e-3
#: Slack, relative to ``max(1, max |logit|)``, below which a margin of the
#: restricted solution is active: the polish starts from these margins, weakly
#: active ones included (the interior point's multipliers miss those, and
#: leave small positive ones on inactive margins). Far above the restricted
#: problems' accuracy.
ACTIVE_SLACK_RTOL = 1e-6
#: Size of the restricted problems' KKT system (unknowns plus constraints) up
#: to which Clarabel factors it by QDLDL; above, by its supernodal solver
#: (faer), whose dense kernels pay off once elimination fills the factor in.
#: One context per token, d = 16: 0.1 s against 0.5 s at m = 100 (size 2,400);
#: the whole working set 17 s against 8 s at m = 250 (sizes 6,000 to 7,000).
QDLDL_MAX_SIZE = 5_000


class RestrictedProblemError(RuntimeError):
    """Clarabel could not solve a restricted problem."""


class InfeasibleWorkingSet(RestrictedProblemError):
    """A restricted problem is infeasible: so are the full constraints."""


@dataclass
class WorkingSetResult:
    """Multipliers of the last restricted problem, as a dual matrix.

    ``A`` (n_tokens, n_contexts) has ``A H = W`` up to the solver's accuracy;
    ``active`` (same shape) marks the margins tight at the restricted
    solution, weakly active ones included (the polish starts from them);
    ``sizes`` is the number of margins of every restricted problem solved, and
    ``converged`` whether the last one violated no margin of the data.
    """

    A: np.ndarray
    active: np.ndarray = None
    sizes: list = field(default_factory=list)
    converged: bool = False


def working_set_svm(data, Z, verbose=0):
    """:class:`WorkingSetResult` of the NTP-SVM of ``data`` by constraint generation.

    Parameters
    ----------
    data : NTPData
        Distinct contexts (some context has an off-support token).
    Z : ndarray of shape (n_contexts, k)
        The embeddings, or any factor with the same Gram matrix.
    verbose : int, default=0
        Print the size of every restricted problem and its worst violation.

    Raises
    ------
    InfeasibleWorkingSet
        When a restricted problem is infeasible (then so is the NTP-SVM).
    """
    off = ~data.support_mask
    working = _initial_pairs(data, Z, off)
    ties = support_pairs(data)
    sizes = []
    for _ in range(MAX_ROUNDS):
        margins = _anchored(data, *np.nonzero(working))
        W_z, multipliers = _restricted_primal(ties, margins, Z, data.n_tokens)
        sizes.append(int(margins[0].size))
        added, worst, scale = _worst_violations(data, Z, W_z, off & ~working)
        slack = _slacks(margins, W_z, Z)
        if verbose:
            print(f"ntp_svm working-set: {margins[0].size} margins, worst violation "
                  f"{worst:.2e}, {int(added.sum())} added")
        if not added.any():
            break
        working[_inactive(margins, multipliers, slack)] = False
        working |= added
    # The dual matrix and the active margins of the last restricted problem only.
    tight = slack <= ACTIVE_SLACK_RTOL * scale
    active = np.zeros(off.shape[::-1], dtype=bool)
    active[margins[1][tight], margins[2][tight]] = True
    A = _dual_matrix(margins, np.where(tight, multipliers, 0.0), active.shape)
    return WorkingSetResult(A, active, sizes, converged=not added.any())


def _anchored(data, j, v):
    """The margins ``(z0_j, v, j)`` of the pairs ``(j, v)``, as
    :func:`._generators.margin_pairs` lists them."""
    P = data.probabilities
    return P.indices[P.indptr[:-1]][j], v, j


def _initial_pairs(data, Z, off):
    """Boolean (n_contexts, n_tokens) mask of the first working set.

    With many tokens, per context the :data:`INITIAL_PAIRS` off-support
    tokens whose direction ``w_v`` (the normalized weighted sum of the
    contexts that have ``v`` in their support) has the largest logit: the
    pairs hardest to separate. With at most :data:`FEW_TOKENS` tokens a
    context has so few margins that keeping some of each prunes little (on
    digits, two a context keep 3,594 margins and miss 78 of the 267 active
    ones); the margins are then ranked by :func:`_dual_ranked_pairs`.
    """
    if data.n_tokens <= FEW_TOKENS:
        return _dual_ranked_pairs(data, Z, off)
    P = data.probabilities
    W0 = P.T @ (data.weights[:, None] * Z)
    norms = np.linalg.norm(W0, axis=1)
    W0 /= np.where(norms > 0, norms, 1.0)[:, None]
    working = np.zeros_like(off)
    k = _per_context(INITIAL_PAIRS, data.n_tokens)
    for rows in _blocks(data):
        logits = np.where(off[rows], Z[rows] @ W0.T, -np.inf)
        top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
        r = np.arange(top.shape[0])[:, None]
        working[rows][r, top] = np.isfinite(logits[r, top])
    return working


def _dual_ranked_pairs(data, Z, off):
    """The ``n_tokens * k`` margins (``k = Z.shape[1]``, the unknowns of the
    restricted problems) smallest after :data:`INITIAL_EPOCHS` epochs of the
    sequential dual method, over all contexts.

    A generic solution has at most as many active margins as unknowns, and
    the few epochs (cheap: two ``n_tokens x m x k`` products each) already
    tell the support vectors from the rest: on digits these 650 margins hold
    200 of the 267 active ones, and the working set ends in a third of the
    time.
    """
    W_z = sequential_dual(Z, off.T, n_epochs=INITIAL_EPOCHS) @ Z
    budget = data.n_tokens * Z.shape[1]
    best, values = [], []
    for rows, slack, _ in _block_slacks(data, Z, W_z, off):
        flat = slack.ravel()
        top = np.argpartition(flat, min(budget, flat.size) - 1)[:budget]
        best.append(top + rows.start * data.n_tokens)
        values.append(flat[top])
    best, values = np.concatenate(best), np.concatenate(values)
    keep = best[np.argpartition(values, min(budget, values.size) - 1)[:budget]]
    working = np.zeros_like(off)
    working.flat[keep] = True
    return working & off


def _per_context(pairs, n_tokens):
    """At most ``pairs`` margins per context, and at most a quarter of a
    context's off-support tokens: with few tokens (digits: 10), eight pairs
    would be most margins, and the working set the whole problem (about four
    times slower on digits than two pairs a context)."""
    return max(1, min(pairs, (n_tokens - 1) // 4))


def _blocks(data):
    """Slices of contexts whose (rows, n_tokens) float arrays fit in ``working_memory``."""
    return gen_batches(data.n_contexts, rows_per_block(8 * 3 * data.n_tokens))


def _block_slacks(data, Z, W_z, candidates):
    """Per block of contexts, ``(rows, slack, largest)``: ``margin - 1`` of every
    pair under ``W = W_z`` (``Z`` coordinates), ``inf`` off ``candidates``, and
    the block's largest absolute logit."""
    anchor = data.probabilities.indices[data.probabilities.indptr[:-1]]
    for rows in _blocks(data):
        logits = Z[rows] @ W_z.T
        n = logits.shape[0]
        slack = logits[np.arange(n), anchor[rows]][:, None] - logits - 1.0
        slack[~candidates[rows]] = np.inf
        yield rows, slack, float(np.abs(logits).max(initial=0.0))


def _worst_violations(data, Z, W_z, candidates):
    """Per context, the :data:`ADDED_PAIRS` candidate pairs with the most violated
    margins under ``W = W_z`` (in ``Z`` coordinates), the worst violation
    relative to ``max(1, max |logit|)``, and that scale."""
    k = _per_context(ADDED_PAIRS, data.n_tokens)
    picked, slacks, scale = [], [], 1.0
    for rows, slack, largest in _block_slacks(data, Z, W_z, candidates):
        scale = max(scale, largest)
        top = np.argpartition(slack, k - 1, axis=1)[:, :k]
        r = np.arange(slack.shape[0])[:, None]
        picked.append((r + rows.start, top))
        slacks.append(slack[r, top])
    added = np.zeros_like(candidates)
    worst = 0.0
    for (r, top), slack in zip(picked, slacks):
        violated = slack < -VIOLATION_RTOL * scale
        added[np.broadcast_to(r, top.shape)[violated], top[violated]] = True
        worst = max(worst, float(-slack.min(initial=0.0)))
    return added, worst / scale, scale


def _restricted_primal(ties, margins, Z, n_tokens):
    """``(W_Z, multipliers)`` of the row-space primal restricted to ``margins``.

    ``min 1/2 ||W_Z||_F^2`` over (n_tokens, k) matrices with the logits
    ``Z W_Z^T`` tied on every ``ties`` pair (a zero cone) and a margin of one
    on every ``margins`` pair (a nonnegative cone), solved by Clarabel called
    directly: through cvxpy, its canonicalization cost two to three times the
    solve on these problems. The multipliers of the margins are Clarabel's
    dual variables of the nonnegative cone (``W_Z`` is their combination of
    the margin rows, minus one of the tie rows).
    """
    import clarabel

    from ._separable_pairs import pair_rows

    k = Z.shape[1]
    z, z0, j = ties
    top, v, i = margins
    A = sp.vstack([pair_rows(z, z0, Z[j], n_tokens, k),
                   -pair_rows(top, v, Z[i], n_tokens, k)], format="csc")
    A.sort_indices()
    b = np.r_[np.zeros(z.size), -np.ones(top.size)]
    cones = [clarabel.ZeroConeT(z.size)] if z.size else []
    cones.append(clarabel.NonnegativeConeT(top.size))
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    n = n_tokens * k
    size = n + z.size + top.size
    settings.direct_solve_method = "qdldl" if size <= QDLDL_MAX_SIZE else "faer"
    solution = clarabel.DefaultSolver(sp.identity(n, format="csc"), np.zeros(n), A, b, cones,
                                      settings).solve()
    status = solution.status
    if status in (clarabel.SolverStatus.PrimalInfeasible,
                  clarabel.SolverStatus.AlmostPrimalInfeasible):
        raise InfeasibleWorkingSet(f"{top.size} margins are infeasible.")
    if status not in (clarabel.SolverStatus.Solved, clarabel.SolverStatus.AlmostSolved):
        raise RestrictedProblemError(f"Clarabel ended with status {status}")
    return np.reshape(solution.x, (n_tokens, k)), np.asarray(solution.z)[z.size:]


def _slacks(margins, W_z, Z):
    """``margin - 1`` of each of the ``margins`` under ``W = W_z`` (``Z`` coordinates)."""
    top, v, i = margins
    return np.einsum("ij,ij->i", Z[i], W_z[top] - W_z[v]) - 1.0


def _inactive(margins, multipliers, slack):
    """``(j, v)`` of the margins with a zero multiplier and a slack above
    :data:`DROP_SLACK`: the restricted solution stays optimal without them,
    and each round's added violated margins raise the optimal norm, so the
    working sets never repeat."""
    _, v, i = margins
    drop = (multipliers <= DROP_MULTIPLIER_RTOL * max(float(multipliers.max(initial=0.0)),
                                                     np.finfo(float).tiny))
    drop &= slack > DROP_SLACK
    return i[drop], v[drop]


def _dual_matrix(margins, multipliers, shape):
    """Dual matrix ``A`` with ``-multipliers`` at the margins' off-support
    entries and their sums at the anchors (ties are left to the polish)."""
    top, v, i = margins
    return sp.csr_matrix(
        (np.r_[multipliers, -multipliers], (np.r_[top, v], np.r_[i, i])), shape=shape
    ).toarray()
