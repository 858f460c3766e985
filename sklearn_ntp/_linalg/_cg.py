"""Truncated, preconditioned conjugate gradients for positive semidefinite systems.

The Newton solvers apply Hessians that are singular off a subspace (``G`` or
``F``) and only positive semidefinite there up to round-off. Plain CG on
such systems amplifies the round-off components; this one stops instead:

* ``"converged"``: ``||r|| <= max(rtol * ||b||, atol)``;
* ``"flat"``: a direction ``d`` of curvature ``d^T A d <= flat * ||d||^2``
  (zero or negative curvature, to the caller's resolution);
* ``"exhausted"``: the preconditioned residual ``r^T M r`` is no longer
  positive (the residual is round-off without a direction left);
* ``"max_iter"``.

The iterate returned is the last one before the stop, so it only ever moved
along directions of positive curvature.

The vectors may be arrays of any Array API namespace (e.g. on a GPU): each
iteration then reads three scalars from the device.
"""

from math import prod
from typing import NamedTuple

from .._utils._array_api import copy, namespace, norm, vdot


class CGResult(NamedTuple):
    """Outcome of :func:`truncated_cg`."""

    x: object
    n_iter: int
    reason: str


def _identity(r):
    return r


def truncated_cg(apply, b, x0=None, *, rtol=0.0, atol=0.0, flat=0.0, max_iter=None,
                 precondition=None):
    """Solve ``apply(x) = b`` by (preconditioned) CG, truncated at flat curvature.

    Parameters
    ----------
    apply : callable
        ``v -> A v`` for a symmetric positive semidefinite ``A``.
    b : array
        Right-hand side (any shape and Array API namespace; inner products are
        over all entries).
    x0 : array, default=None
        Starting point (zero by default).
    rtol, atol : float, default=0.0
        Stop once ``||b - A x|| <= max(rtol * ||b||, atol)``.
    flat : float, default=0.0
        Stop at a direction ``d`` with ``d^T A d <= flat * ||d||^2``: the
        curvature below which ``A`` is taken for singular or indefinite.
    max_iter : int, default=None
        At most this many products (``b.size`` by default: exact arithmetic
        converges within it).
    precondition : callable, default=None
        ``r -> M r`` for a symmetric positive definite ``M ~ A^-1``.

    Returns
    -------
    result : CGResult
        ``(x, n_iter, reason)``, ``reason`` one of ``"converged"``, ``"flat"``,
        ``"exhausted"``, ``"max_iter"``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._linalg._cg import truncated_cg
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> x, n_iter, reason = truncated_cg(lambda v: A @ v, np.array([1.0, 2.0]), rtol=1e-12)
    >>> np.allclose(A @ x, [1.0, 2.0]), reason
    (True, 'converged')
    """
    precondition = precondition or _identity
    max_iter = prod(b.shape) if max_iter is None else max_iter
    xp, _ = namespace(b)
    x = xp.zeros_like(b) if x0 is None else copy(x0)
    r = b - apply(x) if x0 is not None else copy(b)
    threshold = max(rtol * norm(b), atol)
    z = precondition(r)
    d, rz = copy(z), vdot(r, z)
    for k in range(max_iter):
        if norm(r) <= threshold:
            return CGResult(x, k, "converged")
        if not rz > 0:
            return CGResult(x, k, "exhausted")
        Ad = apply(d)
        curvature = vdot(d, Ad)
        if curvature <= flat * vdot(d, d):
            return CGResult(x, k, "flat")
        alpha = rz / curvature
        x += alpha * d
        r -= alpha * Ad
        z = precondition(r)
        rz, rz_old = vdot(r, z), rz
        d = z + (rz / rz_old) * d
    reason = "converged" if norm(r) <= threshold else "max_iter"
    return CGResult(x, max_iter, reason)
