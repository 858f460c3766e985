"""Primal-dual interior point for the dual of the NTP-SVM.

The dual is a QP over the (n_tokens, n_contexts) matrix ``A``:

    minimize   1/2 tr(A K A^T) + sum_{v not in S_j} A_vj
    subject to sum_v A_vj = 0,   A_vj <= 0 for v not in S_j,

whose Hessian is block diagonal with one ``K = H H^T`` per token. Newton steps
therefore cost one (m, m) inversion per token and one (m, m) Schur complement
for the column sums.
"""

import numpy as np
import scipy.linalg as la

#: Residuals and mean complementarity at which the iteration stops: the
#: result only has to reveal the support vectors, which the polish makes exact.
IPM_TOL = 1e-10
#: Most iterations (a few dozen suffice on well-posed duals).
IPM_MAX_ITER = 200
#: Fraction of the step to the boundary taken, keeping the iterate interior.
BOUNDARY_FRACTION = 0.99
#: Exponent of Mehrotra's centering heuristic ``sigma = (mu_affine / mu)^3``.
CENTERING_EXPONENT = 3


def _newton_solver(K, d):
    """Factor the Newton system of the dual: per token ``M_v = K + diag(d_v)``, then
    the Schur complement ``S = sum_v M_v^{-1}`` of the column-sum constraint.

    Returns ``solve(g, r_p) -> (da, dnu)`` for ``M_v da_v + dnu = g_v``,
    ``sum_v da_v = -r_p``: ``V`` batched (m, m) inverses and one (m, m) solve.
    """
    idx = np.arange(K.shape[0])
    M = np.repeat(K[None, :, :], d.shape[0], axis=0)
    M[:, idx, idx] += d
    M_inv = np.linalg.inv(M)
    S = M_inv.sum(axis=0)
    if not np.all(np.isfinite(S)):
        raise la.LinAlgError("Newton system of the interior point is not finite.")
    S_inv = psd_inverse(S)

    def solve(g, r_p):
        Mg = np.einsum("vij,vj->vi", M_inv, g)
        dnu = S_inv @ (Mg.sum(axis=0) + r_p)
        return Mg - np.einsum("vij,j->vi", M_inv, dnu), dnu

    return solve


def interior_point(K, off, tol=IPM_TOL, max_iter=IPM_MAX_ITER):
    """Mehrotra predictor-corrector on the dual QP; returns the dual matrix ``A``.

    ``off`` (V, m) marks the sign-constrained entries. ``lam = -A[off]`` are
    the primal multipliers, ``z`` the primal margin slacks ``t_j - l_vj - 1``.
    The result is not trusted as such: callers polish and verify it.
    """
    c = off.astype(float)
    A, z, nu = -c, c.copy(), np.zeros(off.shape[1])
    # Overflow on degenerate data is caught by the finiteness checks below.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for _ in range(max_iter):
            residuals = (A @ K + c + nu + z, A.sum(axis=0))
            mu = _complementarity(-A, z, off)
            if max(np.abs(r).max() for r in residuals) < tol and mu < tol:
                break
            try:
                dA, dz, dnu = _mehrotra_direction(K, off, A, z, residuals, mu)
            except (la.LinAlgError, np.linalg.LinAlgError):
                break  # numerically stalled
            step = min(1.0, BOUNDARY_FRACTION * _step_to_boundary(-A, -dA, z, dz, off))
            if not (np.isfinite(step) and np.all(np.isfinite(dA))):
                break
            A = A + step * dA
            z = z + step * dz
            nu = nu + step * dnu
    return A


def _complementarity(lam, z, off):
    """Mean complementarity ``lam_i z_i`` over the sign-constrained entries."""
    return float(np.sum((lam * z)[off])) / max(int(off.sum()), 1)


def _mehrotra_direction(K, off, A, z, residuals, mu):
    """Predictor, then centering-corrector direction ``(dA, dz, dnu)``.

    Linearized complementarity ``z dlam + lam dz = rc`` with ``dlam = -dA``
    eliminates ``dz``; the rest is :func:`_newton_solver`'s block system.
    """
    r_d, r_p = residuals
    lam = np.where(off, -A, 1.0)
    solve = _newton_solver(K, np.where(off, z / lam, 0.0))

    def direction(rc):
        dA, dnu = solve(-r_d - np.where(off, rc / lam, 0.0), r_p)
        return dA, np.where(off, (rc + z * dA) / lam, 0.0), dnu

    dA, dz, _ = direction(np.where(off, -lam * z, 0.0))
    step = _step_to_boundary(lam, -dA, z, dz, off)
    affine = _complementarity(lam - step * dA, z + step * dz, off)
    sigma = (affine / mu) ** CENTERING_EXPONENT if mu > 0 else 0.0
    return direction(np.where(off, sigma * mu - lam * z + dA * dz, 0.0))


def _step_to_boundary(lam, dlam, z, dz, off):
    """Largest step keeping ``lam`` and ``z`` nonnegative on the constrained entries."""
    ratios = [-x[off & (dx < 0)] / dx[off & (dx < 0)] for x, dx in ((lam, dlam), (z, dz))]
    return float(min(np.min(r, initial=np.inf) for r in ratios))


def psd_inverse(M):
    """Inverse of a PSD matrix: Cholesky when definite, pseudo-inverse otherwise."""
    try:
        return la.cho_solve(la.cho_factor(M), np.eye(M.shape[0]))
    except la.LinAlgError:
        return la.pinvh(M)
