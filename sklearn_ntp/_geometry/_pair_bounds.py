"""Farkas bounds: how large a margin the pairs outside ``T`` can have, without an LP.

For any weights ``pi_j > 0``, distributions ``p_j`` on ``S_j`` and probabilities
``q_j`` positive on ``S~_j`` (zero elsewhere), every ``U`` of the cone (ties on
the supports, nonnegative margins) satisfies the identity

``sum_j pi_j sum_{v in S~_j minus S_j} q_jv margin_jv(U) = -<U, sum_j pi_j (q_j - p_j) h_j^T>``

with nonnegative terms on the left, so ``margin_jv(U) <= ||g|| / (pi_j q_jv)``
for a unit ``U``, ``g`` the sum on the right. At a stationary point of the
cross-entropy over ``S~`` that sum is its gradient, zero up to round-off.

``T`` depends only on ``H`` and the supports, so the weights, the
distributions and even logit offsets are free. The data's own are a poor
choice on real corpora: rare contexts and frequent tokens leave some
``pi_j q_jv`` near ``1e-15``, where a gradient at round-off bounds nothing.
:func:`farkas_bounds` therefore takes uniform weights and distributions,
then raises the logits of the pairs left with small probabilities by offsets
and minimizes again; each point gives a valid bound, and the smallest is
kept. Pairs still unresolved then get Newton steps past round-off, which
only a separable pair's probability follows down (e-fold per step).
"""

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from .._loss._restricted import RestrictedLoss

#: Largest certified margin of a unit-norm direction on a pair outside ``T``,
#: relative to ``max_j ||h_j||`` (the largest margin a unit direction can have).
#: The bound divides a gradient at round-off (about ``1e-15`` relative) by
#: ``pi_j q_jv``, and ``1e-5`` is also the scale of the LP's own tolerances.
FARKAS_RTOL = 1e-5
#: Resolution of a computed gradient relative to its scale: a gradient norm
#: below it is round-off, and the bound uses this floor instead.
GRADIENT_ROUNDOFF = 4 * np.finfo(np.float64).eps
#: Newton steps of each minimization: a pair separated by the iterates has
#: its probability shrink about ``e``-fold per step, far below any other's.
PROBE_NEWTON_STEPS = 50
#: Pairs whose probability is below this fraction of uniform (``1 / |S~_j|``)
#: have their logits raised to uniform before the second minimization.
REBALANCING_THRESHOLD = 0.1
#: Most pairs given an offset (those of smallest probability first): a
#: bound on the offsets' memory (16 bytes each).
REBALANCED_PAIRS = 4_000_000


def farkas_bounds(data, mask, newton_steps=PROBE_NEWTON_STEPS, rebalance=True):
    """Farkas bounds for the pairs of ``mask`` outside the supports.

    Parameters
    ----------
    data : NTPData
        Distinct contexts.
    mask : ndarray of bool, shape (n_contexts, n_tokens)
        The effective supports ``S~`` (``S`` plus the pairs assumed outside ``T``).
    newton_steps : int, default=PROBE_NEWTON_STEPS
        Most Newton steps of each minimization (the bounds hold at any point,
        only weaker away from the minimizer).
    rebalance : bool, default=True
        Whether pairs left unresolved get the second minimization, with
        offsets, continued past round-off if some are still unresolved.

    Returns
    -------
    outside : ndarray of bool, shape (n_contexts, n_tokens)
        The pairs of ``S~`` off the supports.
    bounds : ndarray of shape (outside.sum(),)
        For each of them, an upper bound on its margin under any unit-norm
        direction of the cone, relative to ``max_j ||h_j||``; ``inf`` where
        the probability underflows (a pair along which Newton diverges).
    """
    uniform = balanced(data)
    loss = RestrictedLoss(uniform, mask)
    # Newton stops at the gradient's round-off, below which the bounds use it.
    W, grad_norm = loss.minimize(np.zeros(loss.shape), max_iter=newton_steps,
                                 tol=GRADIENT_ROUNDOFF)
    outside, bounds = pair_bounds(loss, W, grad_norm, data.support_mask)
    if not rebalance or np.all(bounds <= FARKAS_RTOL):
        return outside, bounds
    loss = RestrictedLoss(uniform, mask, _rebalancing_offsets(loss, W, outside))
    W, grad_norm = loss.minimize(W, max_iter=newton_steps, tol=GRADIENT_ROUNDOFF)
    bounds = np.minimum(bounds, pair_bounds(loss, W, grad_norm, data.support_mask)[1])
    if np.all(bounds <= FARKAS_RTOL):
        return outside, bounds
    # Past round-off, Newton steps go on while they halve the gradient: along
    # separable pairs, whose probabilities keep shrinking e-fold per step.
    W, grad_norm = loss.minimize(W, max_iter=newton_steps, tol=0.0)
    return outside, np.minimum(bounds, pair_bounds(loss, W, grad_norm, data.support_mask)[1])


def balanced(data):
    """``data`` with uniform context weights and uniform distributions on the supports."""
    P = data.probabilities.tocsr(copy=True)
    P.data = np.repeat(1.0 / data.support_sizes, data.support_sizes)
    return replace(data, probabilities=sp.csr_matrix(P),
                   weights=np.full(data.n_contexts, 1.0 / data.n_contexts))


def _rebalancing_offsets(loss, W, outside):
    """Offsets ``log(1 / (|S~_j| q_jv))`` for the pairs of ``outside`` whose
    ``q_jv`` is below :data:`REBALANCING_THRESHOLD` ``/ |S~_j|``: at ``W`` they
    make those pairs uniform; the new minimizer gives back only part of it."""
    uniform = 1.0 / loss.mask.sum(axis=1)
    rows, columns, probabilities = [], [], []
    for block, q in loss.softmax_blocks(W):
        j, v = np.nonzero(outside[block]
                          & (q < REBALANCING_THRESHOLD * uniform[block, None]))
        rows.append(j + block.start)
        columns.append(v)
        probabilities.append(q[j, v])
    rows, columns, probabilities = (np.concatenate(a) for a in (rows, columns, probabilities))
    probabilities = np.maximum(probabilities, np.finfo(np.float64).tiny)
    if rows.size > REBALANCED_PAIRS:
        keep = np.argpartition(probabilities, REBALANCED_PAIRS)[:REBALANCED_PAIRS]
        rows, columns, probabilities = rows[keep], columns[keep], probabilities[keep]
    return rows, columns, np.log(uniform[rows] / probabilities)


def pair_bounds(loss, W, grad_norm, supports):
    """Farkas bounds (module docstring) for every pair of ``loss.mask`` off ``supports``.

    Returns ``(outside, bounds)`` as :func:`farkas_bounds`, from the
    probabilities of ``loss`` at ``W``, where ``||grad||_F = grad_norm``.
    The probabilities are read block by block (:meth:`NTPLoss.softmax_blocks`).
    """
    outside = loss.mask & ~supports
    j, v = np.nonzero(outside)
    h_norms = loss.context_norms
    h_max = float(np.max(h_norms, initial=0.0))
    if j.size == 0 or h_max == 0:
        return outside, np.zeros(j.size)
    # np.nonzero lists the pairs row by row: a block's pairs are one slice.
    q_pairs, deviation = np.empty(j.size), np.empty(len(h_norms))
    for block, q in loss.softmax_blocks(W):
        first, last = np.searchsorted(j, (block.start, block.stop))
        q_pairs[first:last] = q[j[first:last] - block.start, v[first:last]]
        deviation[block] = np.abs(q.sum(axis=1) - 1.0)
    # The computed gradient is only known to its round-off; and the identity
    # assumes every q_j sums to one, which in floating point adds
    # sum_j pi_j c_j (sum_v q_jv - 1), with |c_j| <= ||U|| ||h_j||.
    unnormalized = loss.pi @ (h_norms * deviation)
    grad_norm = max(grad_norm, GRADIENT_ROUNDOFF * loss.scale) + unnormalized
    with np.errstate(divide="ignore", over="ignore"):  # q underflows: no bound
        return outside, grad_norm / (loss.pi[j] * q_pairs) / h_max


def unresolved_pairs(outside, bounds):
    """Pairs whose bound exceeds :data:`FARKAS_RTOL`: those bounding a margin
    above one first (no unit direction has such a margin, so they carry no
    information: the pairs Newton diverges along), the others only when
    there are none."""
    unresolved = np.zeros_like(outside)
    uninformative = ~(bounds <= 1.0)
    unresolved[outside] = uninformative if uninformative.any() else ~(bounds <= FARKAS_RTOL)
    return unresolved
