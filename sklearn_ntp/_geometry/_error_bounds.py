"""Error bounds for ``W~`` and ``L*`` from a gradient and a curvature bound.

``CE~`` restricted to ``G`` is strongly convex near its minimizer, but a
small gradient alone bounds nothing: the curvature on ``G`` can be tiny (rare
tokens, contexts of tiny weight, nearly collinear contexts). The bound here
is rigorous and computed in orthonormal coordinates of the contexts
(:mod:`._basis`, ``||z_j|| <= 1``), so it means the same in any units.

**Curvature.** On ``S~_j`` the Hessian block of context ``j`` is
``pi_j (diag q_j - q_j q_j^T)``, and for a vector ``x`` summing to zero on
``S~_j``, ``x^T (diag q - q q^T) x = min_c sum_v q_v (x_v - c)^2 >= q_min ||x||^2``.
So the Hessian at ``M`` is at least the quadratic form
``sum_j w_j ||C_j (Delta z_j)|_{S~_j}||^2`` with ``w_j = pi_j min_{v in S~_j} q_jv``
(``C_j`` centring on ``S~_j``), whose smallest value on unit ``Delta`` in ``G`` is
``mu``. Moving the logits of every context by at most ``tau`` changes every
``q_jv`` by a factor within ``exp(+-2 tau)``, so on the ball
``||Delta||_F <= 1 / (2 max_j ||z_j||)`` (``tau <= 1/2``) the curvature stays above
``mu / e``.

**Bound.** If ``e ||g|| / mu`` is below that radius, the minimizer lies in the
ball, and (strong convexity along the segment)
``||M - M~||_F <= e ||g|| / mu`` and ``0 <= CE~(M) - L* <= e ||g||^2 / (2 mu)``.
Every logit of ``M`` on ``S~`` is then within ``2 e ||g|| / mu`` of ``W~``'s
(up to the same constant per context).

While ``V * rank`` is small (:data:`DENSE_HESSIAN_SIZE`) ``mu`` is the
smallest eigenvalue on ``G`` of the Hessian itself, formed densely, less the
eigensolver's round-off. Above, the ``q_min`` form is bounded in closed form
in two cases -- full effective supports (an ``r x r`` eigenvalue problem)
and orthonormal contexts (``rank H = m``: ``G`` splits by context) -- and
otherwise by the smallest nonzero singular value of the weighted generator
matrix while it is small (:data:`DENSE_GENERATOR_ENTRIES`); above that no
bound is computed, and the status says so. ``G = {0}`` (one-hot effective
supports) needs none.
"""

import numpy as np

#: Largest ``V * rank`` for which the Hessian on ``G`` is formed and its
#: smallest nonzero eigenvalue computed exactly (a few seconds at this size).
DENSE_HESSIAN_SIZE = 2000
#: Largest generator matrix (rows times ``V * rank`` columns) whose singular
#: values give the curvature bound on ``G`` (about 160 MB).
DENSE_GENERATOR_ENTRIES = 20_000_000
#: Singular values of the generator matrix, relative to the largest, between
#: these two are neither round-off nor resolved: ``G``'s dimension is then
#: not decided, and no bound is claimed.
GENERATOR_ROUNDOFF = 1e-12
GENERATOR_RESOLVED = 1e-8
#: Resolution of a computed gradient relative to its scale (a few units of
#: round-off of the sums that form it).
GRADIENT_ROUNDOFF = 4 * np.finfo(np.float64).eps
#: Backward error of a symmetric eigensolver, in units of ``n eps ||A||``.
EIGENVALUE_ROUNDOFF = 10
#: Largest logit change ``tau = error * max_j ||z_j||`` on the ball of the
#: bound: within it the probabilities change by at most ``exp(+-2 tau)``, the
#: factor ``e`` of the bound (module docstring).
MAX_LOGIT_SHIFT = 0.5


def curvature_lower_bound(loss, M):
    """``(mu, reason)``: a lower bound on the curvature of ``loss`` on ``G`` at ``M``.

    ``mu`` is ``inf`` when ``G = {0}`` (no direction to bound) and ``0`` with
    a ``reason`` when no bound could be computed.
    """
    sizes = loss.mask.sum(axis=1)
    varied = sizes >= 2
    if not varied.any() or not np.any(loss.H):
        return np.inf, ""
    Z, (V, r) = loss.H, loss.shape
    if V * r <= DENSE_HESSIAN_SIZE:
        dim, reason = _dimension(loss, sizes)
        return (_hessian_bound(loss, M, dim), "") if dim else (0.0, reason)
    weights = loss.pi * _smallest_probabilities(loss, M)
    if loss.mask.all():
        # G = centred matrices times the span of the z_j, which is all of R^r.
        return max(float(np.linalg.eigvalsh(Z.T @ (weights[:, None] * Z))[0]), 0.0), ""
    if Z.shape[0] == Z.shape[1]:
        # Orthonormal z_j: G is the orthogonal sum of the contexts' parts.
        return float(weights[varied].min()), ""
    generators, rows = _generators(loss, sizes)
    if generators is None:
        return 0.0, rows
    dim, reason = _generator_rank(generators)
    if not dim:
        return 0.0, reason
    scaled = generators * np.sqrt(weights[rows] / sizes[rows])[:, None]
    return float(np.linalg.svd(scaled, compute_uv=False)[dim - 1] ** 2), ""


def _smallest_probabilities(loss, M):
    """``min_{v in S~_j} q_jv`` at ``M`` for every context, block by block."""
    smallest = np.empty(loss.data.n_contexts)
    for rows, q in loss.softmax_blocks(M):
        smallest[rows] = np.where(loss.mask[rows], q, np.inf).min(axis=1)
    return smallest


def _hessian_bound(loss, M, dim):
    """The smallest eigenvalue on ``G`` (of dimension ``dim``) of the Hessian
    ``sum_j pi_j (diag q_j - q_j q_j^T) (x) z_j z_j^T`` at ``M``, less its round-off.

    Both terms are sums over contexts, accumulated block by block.
    """
    Z, (V, r) = loss.H, loss.shape
    diagonal, outer = np.zeros((V, r, r)), np.zeros((V * r, V * r))
    for rows, q in loss.softmax_blocks(M):
        pi, Z_rows = loss.pi[rows], Z[rows]
        diagonal += np.einsum("jv,ja,jb->vab", pi[:, None] * q, Z_rows, Z_rows)
        X = (np.sqrt(pi)[:, None, None] * q[:, :, None] * Z_rows[:, None, :]).reshape(
            len(Z_rows), -1)
        outer += X.T @ X
    hessian = np.zeros((V, r, V, r))
    hessian[np.arange(V), :, np.arange(V), :] = diagonal
    hessian = hessian.reshape(V * r, V * r) - outer
    eigenvalues = np.linalg.eigvalsh(hessian)
    roundoff = EIGENVALUE_ROUNDOFF * V * r * np.finfo(float).eps * abs(eigenvalues[-1])
    return max(float(eigenvalues[V * r - dim]) - roundoff, 0.0)


def _dimension(loss, sizes):
    """``(dim G, reason)``, exact for full supports and orthonormal contexts."""
    V, r = loss.shape
    if loss.mask.all():
        return (V - 1) * r, ""
    if loss.H.shape[0] == r:
        return int(np.sum(sizes - 1)), ""
    generators, reason = _generators(loss, sizes)
    return _generator_rank(generators) if generators is not None else (0, reason)


def _generators(loss, sizes):
    """``(generators, rows)``: the anchor generators ``(e_z - e_a_j) z_j^T`` of
    ``G`` as rows of a dense matrix, and their contexts; ``(None, reason)``
    above :data:`DENSE_GENERATOR_ENTRIES`."""
    Z, (V, r) = loss.H, loss.shape
    rows, tokens = np.nonzero(loss.mask)
    first = np.r_[True, rows[1:] != rows[:-1]]
    anchors = np.repeat(tokens[first], sizes[sizes > 0])
    keep = ~first
    rows, tokens, anchors = rows[keep], tokens[keep], anchors[keep]
    if rows.size * V * r > DENSE_GENERATOR_ENTRIES:
        return None, (f"no curvature bound for W~: G has {rows.size} generators, "
                      f"above the {DENSE_GENERATOR_ENTRIES:,}-entry dense bound")
    generators = np.zeros((rows.size, V, r))
    index = np.arange(rows.size)
    generators[index, tokens] = Z[rows]
    generators[index, anchors] -= Z[rows]
    return generators.reshape(rows.size, V * r), rows


def _generator_rank(generators):
    """``(rank, reason)`` of the generator matrix, refused in the grey zone."""
    s = np.linalg.svd(generators, compute_uv=False)
    grey = (s > GENERATOR_ROUNDOFF * s[0]) & (s <= GENERATOR_RESOLVED * s[0])
    if grey.any():
        return 0, (f"no curvature bound for W~: a generator of G lies within "
                   f"{s[grey].max() / s[0]:.1g} of the span of the others (relative), "
                   "which double precision does not resolve")
    return int(np.sum(s > GENERATOR_RESOLVED * s[0])), ""


def finite_part_error(loss, M, grad_norm):
    """``(error, loss_error, reason)`` for ``M``, an approximate minimizer of ``loss`` in ``G``.

    ``error`` bounds ``||M - M~||_F`` and ``loss_error`` bounds
    ``loss.value(M) - L*`` (module docstring), with ``grad_norm`` increased by
    its round-off; both are ``inf`` with a ``reason`` when no bound holds.
    """
    mu, reason = curvature_lower_bound(loss, M)
    if np.isinf(mu):
        return 0.0, 0.0, ""
    if not mu > 0:
        return np.inf, np.inf, reason or "the curvature of CE~ on G vanishes at W~"
    g = grad_norm + GRADIENT_ROUNDOFF * loss.scale
    varied = loss.mask.sum(axis=1) >= 2
    z_max = float(loss.context_norms[varied].max())
    error = np.e * g / mu
    if error * z_max > MAX_LOGIT_SHIFT:
        return np.inf, np.inf, (f"the gradient of W~ ({g:.2g}) is not small against "
                                f"the curvature bound {mu:.2g} on G")
    return float(error), float(np.e * g * g / (2 * mu)), ""
