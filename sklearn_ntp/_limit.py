"""The limit of gradient descent on any data: :func:`implicit_bias_limit`.

Beyond the paper's two conditions the same picture holds with effective
supports (docs, "Beyond separability"):

1. ``T``, the separable off-support pairs: every off-support pair when ``H``
   has full row rank; none when the minimizer of ``CE`` itself certifies that
   (the Farkas bound below); else by one LP (:mod:`._separable_pairs`);
2. ``S~_j = S_j`` plus the off-support tokens of ``j`` outside ``T``, and the
   subspace ``G`` their in-support differences span;
3. ``W~``, the minimizer in ``G`` of the cross-entropy restricted to ``S~``
   (:mod:`._restricted_loss`), with value ``L* = inf CE``;
4. ``U~``, the NTP-SVM of the effective supports (ties on ``S~``, margin one
   on ``T``), solved by :func:`~sklearn_ntp.implicit_bias.ntp_svm`.

Each part carries its certificate: stationarity of ``W~``, the KKT conditions
of ``U~``, and a Farkas bound showing that no direction of the cone separates
a pair outside ``T`` (from the stationarity of ``W~``, without an LP).
"""

import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.linalg as la

from ._data import NTPData, as_ntp_data, with_support
from ._restricted_loss import STATIONARITY_RTOL, RestrictedLoss
from ._separable_pairs import SeparablePairsError, separable_pairs
from ._subspace import DataSubspace
from ._svm import (
    KKT_ATOL,
    _constraint_residuals,
    _generator_polish,
    embedding_rank,
    kkt_violation,
    ntp_svm,
)

#: Largest certified margin of a unit-norm direction on a pair outside ``T``,
#: relative to ``max_j ||h_j||`` (the largest margin a unit direction can have).
FARKAS_RTOL = 1e-6
#: Slack (relative to the largest logit) below which a margin counts as active.
ACTIVE_RTOL = 1e-6


@dataclass(frozen=True, eq=False)
class ImplicitBiasLimit:
    """The limit of gradient descent on the NTP loss, for any data.

    Built by :func:`implicit_bias_limit`; see its documentation.

    Attributes
    ----------
    finite_component : ndarray of shape (n_tokens, n_features)
        ``W~``, the minimizer in ``G`` of the cross-entropy restricted to the
        effective supports (``W*`` when the data are compatible and separable).
    max_margin_solution : ndarray of shape (n_tokens, n_features) or None
        ``U~``: minimum-norm decoder with equal logits on every ``S~_j`` and
        margin at least one on ``T`` (``W^mm`` when separable); None when
        ``T`` is empty.
    margin_direction : ndarray of shape (n_tokens, n_features) or None
        ``U~ / ||U~||``.
    margin : float or None
        ``1 / ||U~||``, the largest margin on ``T`` of a unit-norm direction.
    loss_infimum : float
        ``L* = CE~(W~) = inf_W CE(W)`` (nats); ``L* >= H``.
    entropy : float
        The entropy ``H``.
    separable_pairs : ndarray of bool, shape (n_contexts, n_tokens)
        ``T``, in the context order of ``aggregate_contexts``.
    effective_support : ndarray of bool, shape (n_contexts, n_tokens)
        ``S~``: the supports plus the off-support pairs outside ``T``.
    is_compatible : bool
        Whether the log-odds equations have an exact solution (Definition 1).
    is_separable : bool
        Whether ``T`` is every off-support pair (Definition 2).
    compatibility_residual : float
        Largest log-odds equation violation of the least-squares solution in
        ``F`` (evidence of incompatibility; that solution is not a limit).
    rank : int
        Numerical rank of the embedding matrix ``H``.
    certificate : dict
        ``"stationarity"``: ``||grad CE~(W~)||_F / sqrt(sum_j pi_j ||h_j||^2)``
        (at most ``1e-8``); ``"kkt_violation"``: of ``U~`` (at most ``1e-8``,
        0 when ``T`` is empty); ``"farkas_bound"``: largest margin a unit
        direction of the cone can have on a pair outside ``T``, relative to
        ``max_j ||h_j||`` (at most ``1e-6``, unless the LP is optimal);
        ``"separable_pairs_lp"``: ``"optimal"`` when ``T`` comes from the
        linear program solved to optimality, which certifies its maximality by
        itself (the Farkas bound is weak when some ``pi_j q~_jv`` is tiny, as
        on real corpora), ``"not needed"``, or why it failed.
    status : str
        ``"certified"``, or which part is not and by how much.
    timings : dict
        Seconds spent on each part.
    """

    finite_component: np.ndarray = field(repr=False)
    max_margin_solution: np.ndarray | None = field(repr=False)
    margin_direction: np.ndarray | None = field(repr=False)
    margin: float | None
    loss_infimum: float
    entropy: float
    separable_pairs: np.ndarray = field(repr=False)
    effective_support: np.ndarray = field(repr=False)
    is_compatible: bool
    is_separable: bool
    compatibility_residual: float
    rank: int
    certificate: dict
    status: str
    timings: dict = field(repr=False)
    data: NTPData = field(repr=False)
    subspace: DataSubspace = field(repr=False)

    @property
    def certified(self):
        """Whether every part of the limit holds its certificate."""
        return self.status == "certified"

    @cached_property
    def effective_subspace(self):
        """``G``, with ``project``, ``coordinates`` and ``distances`` like :class:`DataSubspace`.

        ``F`` itself when separable. When every effective support is the
        whole vocabulary (no separable pair), ``G`` is the set of ``A H`` with
        zero-sum columns, projected onto without its ``m (V - 1)`` generators.
        """
        if self.is_separable:
            return self.subspace
        if self.effective_support.all():
            return CenteredRowSpace(self.data.embeddings, self.rank)
        return DataSubspace(with_support(self.data, self.effective_support))


class CenteredRowSpace:
    """The span of ``(e_z - e_z') h_j^T`` over all token pairs and contexts.

    It is ``{W : the tokens' rows sum to zero, rows in the row space of H}``,
    so ``P(W) = (I - 11^T / V) W B B^T`` with ``B`` an orthonormal basis of
    the row space, and ``(I - 11^T / V) W B`` are orthonormal coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._limit import CenteredRowSpace
    >>> G = CenteredRowSpace(np.array([[1.0, 0.0]]), rank=1)
    >>> G.project(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([[-1.,  0.],
           [ 1.,  0.]])
    """

    def __init__(self, H, rank):
        self.basis = la.svd(np.asarray(H, dtype=np.float64), full_matrices=False)[2][:rank].T

    def coordinates(self, W):
        """Orthonormal coordinates ``(I - 11^T / V) W B`` of ``P_G(W)``, flattened."""
        C = np.asarray(W, dtype=np.float64) @ self.basis
        return (C - C.mean(axis=0)).ravel()

    def project(self, W):
        """Orthogonal projection onto ``G``."""
        return self.coordinates(W).reshape(len(W), -1) @ self.basis.T

    def distances(self, coordinates, W_ref):
        """``||P_G(W_k) - W_ref||`` for many ``W_k`` given by their coordinates."""
        return np.linalg.norm(np.atleast_2d(coordinates) - self.coordinates(W_ref), axis=1)


def implicit_bias_limit(X, y=None, sample_weight=None, *, method="auto", verbose=0):
    """The limit of gradient descent on the NTP loss, on any data.

    ``W_k ~ W~ + ||P_perp W_k|| U~ / ||U~||`` with ``CE(W_k) -> L*``: the
    paper's ``(W*, W^mm, H)`` when the data are NTP_H-compatible and
    NTP-separable, the effective-support limit otherwise (see the theory
    section "Beyond separability").

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or NTPData
        Context embeddings (identical rows are one context), or aggregated data.
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights.
    method : {"auto", "lp"}, default="auto"
        How ``T`` is found: ``"auto"`` skips the linear program when ``H``
        has full row rank (then ``T`` is every off-support pair) and when the
        minimizer of the loss certifies that no pair is separable (then
        ``T`` is empty); ``"lp"`` always solves it.
    verbose : int, default=0
        Print the time of each part when positive.

    Returns
    -------
    limit : ImplicitBiasLimit
        ``W~``, ``U~``, ``L*``, ``T``, ``S~`` and their certificates; check
        ``limit.status`` (``"certified"`` or what is not).

    Raises
    ------
    SeparablePairsError
        If the linear program for ``T`` fails (its HiGHS status is named).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import implicit_bias_limit
    >>> X = np.array([[1.0], [2.0]])  # h_2 = 2 h_1 with disjoint supports
    >>> limit = implicit_bias_limit(X, [0, 1])
    >>> limit.is_separable, limit.max_margin_solution is None, limit.status
    (False, True, 'certified')
    >>> round(limit.loss_infimum, 4), limit.entropy  # L* > H = 0
    (0.642, 0.0)
    >>> limit.effective_support.tolist()
    [[True, True], [True, True]]
    """
    if method not in ("auto", "lp"):
        raise ValueError(f"method must be 'auto' or 'lp', got {method!r}.")
    data = as_ntp_data(X, y, sample_weight)
    timings = {}
    start = time.perf_counter()
    rank = embedding_rank(np.asarray(data.embeddings, dtype=np.float64))[1]
    subspace = DataSubspace(data)
    W_star, residual = subspace.log_odds_solution()
    is_compatible = bool(subspace.is_exact(residual))
    timings["finite_component"] = time.perf_counter() - start

    start = time.perf_counter()
    T, probe, lp = _separable_pairs(data, rank, method, W_star)
    effective = data.support_mask | ~T
    is_separable = bool(np.array_equal(T, ~data.support_mask))
    timings["separable_pairs"] = time.perf_counter() - start

    start = time.perf_counter()
    loss, W, grad_norm = probe if not T.any() and probe else _finite_part(
        data, effective, W_star)
    timings["finite_component"] += time.perf_counter() - start
    start = time.perf_counter()
    U, kkt = _max_margin_solution(data, effective, T)
    timings["max_margin_solution"] = time.perf_counter() - start
    certificate = {
        "stationarity": grad_norm / max(loss.scale, np.finfo(float).tiny),
        "kkt_violation": kkt,
        "farkas_bound": _farkas_bound(data, loss, W, T, grad_norm),
        "separable_pairs_lp": lp,
    }
    if verbose:
        print("implicit_bias_limit: " + ", ".join(
            f"{name} {seconds:.3g} s" for name, seconds in timings.items()), flush=True)
    norm = None if U is None else float(np.linalg.norm(U))
    return ImplicitBiasLimit(
        finite_component=W, max_margin_solution=U,
        margin_direction=None if U is None else U / norm,
        margin=None if U is None else 1.0 / norm,
        loss_infimum=loss.value(W), entropy=data.entropy,
        separable_pairs=T, effective_support=effective,
        is_compatible=is_compatible, is_separable=is_separable,
        compatibility_residual=residual, rank=rank, certificate=certificate,
        status=_status(certificate), timings=timings, data=data, subspace=subspace,
    )


def _finite_part(data, effective, W_star):
    """``(loss, W~, ||grad||_F)`` for the effective supports, from ``W*`` (in ``F``, so in ``G``)."""
    loss = RestrictedLoss(data, effective)
    W, grad_norm = W_star, float(np.linalg.norm(loss.gradient(W_star)))
    if grad_norm > STATIONARITY_RTOL * loss.scale:
        W, grad_norm = loss.minimize(W_star)
    return loss, W, grad_norm


def _separable_pairs(data, rank, method, W_star):
    """``(T, probe, lp)``: the separable pairs, the finite part for ``T`` empty
    when it was computed (``(loss, W, ||grad||)`` or None), and the LP's status.

    With rank-deficient embeddings ``T`` is often empty. Then ``CE`` itself
    has a minimizer, and the Farkas bound at it shows that no off-support
    pair is separable: ``T`` is found without the linear program. When some
    pair is separable, Newton diverges along it and the bound fails; then the
    LP decides. If the LP fails, ``T`` is left empty and the status says so.
    """
    empty = np.zeros_like(data.support_mask)
    if not (~data.support_mask).any() or (rank == data.n_contexts and method == "auto"):
        return ~data.support_mask, None, "not needed"
    probe = None
    if method == "auto":
        loss = RestrictedLoss(data, np.ones_like(data.support_mask))
        probe = (loss, *loss.minimize(W_star, max_iter=50))
        if (probe[2] <= STATIONARITY_RTOL * loss.scale
                and _farkas_bound(data, loss, probe[1], empty, probe[2]) <= FARKAS_RTOL):
            return empty, probe, "not needed"
    try:
        return separable_pairs(data, rank, always_solve=True), probe, "optimal"
    except SeparablePairsError as exc:
        if probe is None:
            raise
        return empty, probe, f"failed: {exc}"


def _max_margin_solution(data, effective, T):
    """``(U~, KKT violation)``; ``(None, 0.0)`` when ``T`` is empty.

    ``ntp_svm`` finds the solution; its support vectors (active margins) then
    give the exact dual matrix by the generator-form polish, whose KKT
    violation certifies it.
    """
    if not T.any():
        return None, 0.0
    effective_data = with_support(data, effective)
    U = ntp_svm(effective_data)
    off = T.T
    _, slack, scale = _constraint_residuals(U, effective_data)
    active = off & (slack <= ACTIVE_RTOL * scale)
    A = _generator_polish(effective_data, None, off, active)
    return A @ np.asarray(data.embeddings, dtype=np.float64), kkt_violation(A, effective_data)


def _farkas_bound(data, loss, W, T, grad_norm):
    """Largest margin of a unit direction of the cone on a pair outside ``T``.

    For ``U`` in the cone, stationarity gives
    ``sum_j pi_j sum_{v in S~_j minus S_j} q~_jv margin_jv(U) = -<U, grad CE~(W~)>``
    with nonnegative terms, so ``margin_jv(U) <= ||grad||_F / (pi_j q~_jv)``.
    Relative to ``max_j ||h_j||``; 0 when every off-support pair is in ``T``.
    """
    outside = loss.mask & ~data.support_mask
    if not outside.any():
        return 0.0
    q = loss.softmax(W)
    j, v = np.nonzero(outside)
    with np.errstate(divide="ignore", over="ignore"):  # q~ underflows: no bound
        bound = np.max(grad_norm / (loss.pi[j] * q[j, v]))
    h_max = float(np.max(np.linalg.norm(loss.H, axis=1)))
    return float(bound / h_max) if h_max > 0 else 0.0


def _status(certificate):
    limits = {"stationarity": STATIONARITY_RTOL, "kkt_violation": KKT_ATOL,
              "farkas_bound": FARKAS_RTOL}
    names = {"stationarity": "finite component W~ (stationarity",
             "kkt_violation": "max-margin solution U~ (KKT violation",
             "farkas_bound": "separable pairs T (Farkas bound"}
    if certificate["separable_pairs_lp"] == "optimal":
        del limits["farkas_bound"]
    failed = [f"{names[key]} {certificate[key]:.2g} > {limit:g})"
              for key, limit in limits.items() if not certificate[key] <= limit]
    if certificate["separable_pairs_lp"].startswith("failed"):
        failed.append(f"separable pairs T (LP {certificate['separable_pairs_lp']})")
    return "certified" if not failed else "uncertified: " + "; ".join(failed)
