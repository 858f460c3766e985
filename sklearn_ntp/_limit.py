"""The limit of gradient descent on any data: :func:`implicit_bias_limit`.

Beyond the paper's two conditions the same picture holds with effective
supports (docs, "Beyond separability"):

1. ``T``, the separable off-support pairs: every off-support pair when ``H``
   has full row rank or the NTP-SVM of the data is feasible; none when the
   Farkas bounds certify that (:mod:`._farkas_bounds`); else by one LP
   (:mod:`._separable_pairs`), or, when it is too large, by a guess that the
   Farkas bounds and ``U~`` verify (:func:`_verified_guess`);
2. ``S~_j = S_j`` plus the off-support tokens of ``j`` outside ``T``, and the
   subspace ``G`` their in-support differences span;
3. ``W~``, the minimizer in ``G`` of the cross-entropy restricted to ``S~``
   (:mod:`._restricted_loss`), with value ``L* = inf CE``;
4. ``U~``, the NTP-SVM of the effective supports (ties on ``S~``, margin one
   on ``T``), solved by :func:`~sklearn_ntp.implicit_bias.ntp_svm`.

Each part carries its certificate: stationarity of ``W~``, the KKT conditions
of ``U~``, and a Farkas bound showing that no direction of the cone separates
a pair outside ``T`` (from a stationary point, without an LP).
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property, partial

import numpy as np
import scipy.linalg as la

from ._data import NTPData, as_ntp_data, with_support
from ._farkas_bounds import FARKAS_RTOL, farkas_bounds, pair_bounds, unresolved_pairs
from ._restricted_loss import STATIONARITY_RTOL, RestrictedLoss
from ._separable_pairs import SeparablePairsError, lp_size, separable_pairs
from ._subspace import DataSubspace
from ._exceptions import CertificationError, NotNTPSeparableError
from ._svm import EAGER_LP_VARIABLES, embedding_rank, gram_factor, solve_ntp_svm
from ._svm import METHODS as SVM_METHODS
from ._svm_certificate import FEASIBILITY_RTOL, GAP_RTOL

#: Nonzeros above which the linear program for ``T`` is not built (about
#: 1.5 GiB in HiGHS); ``T`` is then guessed and verified instead.
LP_MAX_NONZEROS = 20_000_000
#: Stationarity to which ``W~`` is computed, relative to its scale: a
#: hundredth of what its certificate requires (Newton's next step would
#: reach round-off, for as much time again on real corpora).
FINITE_PART_RTOL = 1e-2 * STATIONARITY_RTOL
#: Newton steps of the Farkas bounds tried before a small NTP-SVM decides
#: whether the data are separable.
QUICK_NEWTON_STEPS = 8
#: Guesses of ``T`` tried before giving up.
GUESS_ROUNDS = 6
#: Status of ``T`` proven without the LP by :func:`_verified_guess`.
VERIFIED_GUESS = "verified guess"


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
        (at most ``1e-8``); ``"kkt_violation"``: largest residual of ``U~``'s certificate
        (relative infeasibility at most ``1e-8``, duality gap at most ``1e-6``;
        0 when ``T`` is empty); ``"farkas_bound"``: largest margin a unit
        direction of the cone can have on a pair outside ``T``, relative to
        ``max_j ||h_j||`` (at most ``1e-5``, unless the LP is optimal), from
        the reweighted stationary points that decided ``T`` or else from ``W~``;
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
    def farkas_certificate(self):
        """Dual matrix ``A`` (n_tokens, n_contexts) showing that the pairs outside ``T``
        cannot be separated, or None when the data are NTP-separable.

        ``A = -sum_j pi_j (q~_j - p_j) e_j^T`` from the stationarity of ``W~``:
        zero column sums, nonpositive off the supports (negative exactly on
        ``O \\ T``), and ``A H = -grad CE~(W~)``, zero up to the certified
        stationarity residual; the certificate of
        :class:`~sklearn_ntp.implicit_bias.NotNTPSeparableError`.
        """
        if self.is_separable:
            return None
        loss = RestrictedLoss(self.data, self.effective_support)
        q = loss.softmax(self.finite_component)
        return -((q - self.data.probabilities.toarray()) * loss.pi[:, None]).T

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


def implicit_bias_limit(X, y=None, sample_weight=None, *, method="auto", svm_method="auto",
                        verbose=0):
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
        How ``T`` is found. ``"auto"`` skips the linear program for ``T``
        when ``H`` has full row rank (then ``T`` is every off-support pair),
        when a certified NTP-SVM exists (then ``T`` is every off-support pair
        too; tried first when the Farkas LP of :func:`ntp_svm` has at most
        50,000 variables, ``n_tokens * (n_contexts - rank(H))``), and when
        Farkas bounds certify that no pair is separable (then ``T`` is
        empty; they come from the minimizer of a cross-entropy with uniform
        weights, and again with the logits of its least likely pairs
        raised). Otherwise it solves the LP when it has at most 20 million
        nonzeros (about ``n_contexts * n_tokens * 2 rank(H)``); above, the
        pairs the bounds leave unresolved are a guess of ``T``, enlarged
        until the bounds of its effective supports hold and then proved by a
        certified ``U~`` (no LP at all). ``"lp"`` always solves the LP.
    svm_method : {"auto", "interior-point", "dual-cd", "cvxpy"}, default="auto"
        Solver of every NTP-SVM on the way (``U~``), as ``method`` of
        :func:`ntp_svm`; ``"cvxpy"`` hands the row-space formulation to an
        installed cvxpy solver (Clarabel by default).
    verbose : int, default=0
        When positive, print a line as each part ends (its time and outcome),
        and pass ``verbose`` on to the NTP-SVM solvers.

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
    if svm_method not in SVM_METHODS:
        raise ValueError(f"svm_method must be one of {SVM_METHODS}, got {svm_method!r}.")
    data = as_ntp_data(X, y, sample_weight)
    clock = _Stopwatch(verbose)
    with clock.part("finite_component", "rank and W*") as note:
        # The rank on unit-RMS columns: an invertible change of features, so
        # the same rank (and the same T), but not lost to badly scaled features.
        rank = _rank(_equilibrated(data).embeddings)
        subspace = DataSubspace(data)
        W_star, residual = subspace.log_odds_solution()
        is_compatible = bool(subspace.is_exact(residual))
        note.append(f"rank {rank} of m = {data.n_contexts}, log-odds residual {residual:.2g}")

    solve = partial(solve_ntp_svm, method=svm_method, verbose=verbose)
    with clock.part("separable_pairs", "separable pairs T") as note:
        T, lp, svm, farkas = _separable_pairs(data, rank, method, solve)
        effective = data.support_mask | ~T
        is_separable = bool(np.array_equal(T, ~data.support_mask))
        note.append(f"{int(T.sum())} of {int((~data.support_mask).sum())} off-support "
                    f"pairs (LP: {lp})")

    with clock.part("finite_component", "finite part W~") as note:
        # W* is W~ itself when every pair is separable; with none, the minimizer
        # of CE is unrelated to the log-odds equations, and 0 is a better start.
        start_point = W_star if T.any() else np.zeros_like(W_star)
        loss, W, grad_norm = _finite_part(data, effective, start_point)
        stationarity = grad_norm / max(loss.scale, np.finfo(float).tiny)
        note.append(f"stationarity {stationarity:.2g}")
    with clock.part("max_margin_solution", "max-margin solution U~") as note:
        U, kkt, refusal = svm or _max_margin_solution(data, effective, T, solve)
        note.append(f"KKT residual {kkt:.2g}" if U is not None else refusal or "none (T empty)")
    if farkas is None:
        farkas = pair_bounds(loss, W, grad_norm, data.support_mask)[1]
    certificate = {
        "stationarity": stationarity,
        "kkt_violation": kkt,
        "farkas_bound": float(np.max(farkas, initial=0.0)),
        "separable_pairs_lp": lp,
        "max_margin_refusal": refusal,
    }
    norm = None if U is None else float(np.linalg.norm(U))
    return ImplicitBiasLimit(
        finite_component=W, max_margin_solution=U,
        margin_direction=None if U is None else U / norm,
        margin=None if U is None else 1.0 / norm,
        loss_infimum=loss.value(W), entropy=data.entropy,
        separable_pairs=T, effective_support=effective,
        is_compatible=is_compatible, is_separable=is_separable,
        compatibility_residual=residual, rank=rank, certificate=certificate,
        status=_status(certificate), timings=clock.timings, data=data, subspace=subspace,
    )


class _Stopwatch:
    """Seconds spent on each part (summed by key); with ``verbose``, a line
    as each part ends, with the notes the part appends."""

    def __init__(self, verbose):
        self.timings, self.verbose = {}, verbose

    @contextmanager
    def part(self, key, label):
        start, notes = time.perf_counter(), []
        yield notes
        seconds = time.perf_counter() - start
        self.timings[key] = self.timings.get(key, 0.0) + seconds
        if self.verbose:
            print(f"implicit_bias_limit: {label} in {seconds:.3g} s"
                  + "".join(f"; {note}" for note in notes), flush=True)


def _finite_part(data, effective, W0, max_iter=200):
    """``(loss, W~, ||grad||_F)``: the minimizer in ``G`` of ``CE~`` for the
    supports ``effective``, from ``W0`` in ``G`` (e.g. ``W*``, which lies in
    ``F``), to the stationarity :data:`FINITE_PART_RTOL`.

    Newton-CG on the contexts as given; when badly scaled features stop it
    short of stationarity, again on contexts with unit root-mean-square
    columns (a change of variables that keeps the logits), the result
    projected back onto ``G`` (which keeps them too).
    """
    loss = RestrictedLoss(data, effective)
    W, grad_norm = loss.minimize(W0, max_iter=max_iter, tol=FINITE_PART_RTOL)
    if grad_norm <= STATIONARITY_RTOL * loss.scale:
        return loss, W, grad_norm
    H = np.asarray(data.embeddings, dtype=np.float64)
    s = _column_scales(H)
    scaled = RestrictedLoss(replace(data, embeddings=H / s), effective)
    W_scaled = scaled.minimize(W * s, max_iter=max_iter, tol=FINITE_PART_RTOL)[0] / s
    G = (CenteredRowSpace(H, embedding_rank(H / s)[1]) if effective.all()
         else DataSubspace(with_support(data, effective)))
    W_scaled = G.project(W_scaled)
    # The lower loss, not the smaller gradient: with such features the norm
    # of the gradient hardly tells how far the loss is from its minimum.
    if loss.value(W_scaled) < loss.value(W):
        return loss, W_scaled, float(np.linalg.norm(loss.gradient(W_scaled)))
    return loss, W, grad_norm


def _separable_pairs(data, rank, method, solve):
    """``(T, lp, svm, farkas)``: the separable pairs, how ``T`` was decided
    (the LP's status), ``U~`` when it was computed on the way (as
    :func:`_max_margin_solution`), and the Farkas bounds of the pairs
    outside ``T`` when they were (:func:`._farkas_bounds.farkas_bounds`).

    With rank-deficient embeddings ``T`` is often empty: the Farkas bounds
    of every off-support pair then show it without the linear program.
    When some pair is separable, the minimizer diverges along it and its
    bound fails; then the LP decides, or, when the LP is too large, the
    pairs left unresolved are a guess that :func:`_verified_guess` checks
    both ways. If the LP fails, ``T`` is left empty and the status says so.
    """
    empty, off = np.zeros_like(data.support_mask), ~data.support_mask
    if not off.any() or (rank == data.n_contexts and method == "auto"):
        return off, "not needed", None, None
    everything = np.ones_like(data.support_mask)
    if method == "auto" and data.n_tokens * (data.n_contexts - rank) <= EAGER_LP_VARIABLES:
        # Classification data are often separable, where the minimizers behind
        # the Farkas bounds diverge: a small Farkas LP decides whether T = O
        # for the price of one NTP-SVM, which is then U~ itself. A few Newton
        # steps first settle most data that are not separable at all, on
        # which that LP can be slow.
        _, bounds = farkas_bounds(data, everything, QUICK_NEWTON_STEPS, rebalance=False)
        if np.all(bounds <= FARKAS_RTOL):
            return empty, "not needed", None, bounds
        separable, svm = _svm_decides(data, solve)
        if separable:
            return off, "not needed", svm, None
    bounds = None
    if method == "auto":
        outside, bounds = farkas_bounds(data, everything)
        unresolved = unresolved_pairs(outside, bounds)
        if not unresolved.any():
            return empty, "not needed", None, bounds
        if lp_size(data, rank) > LP_MAX_NONZEROS:
            return _verified_guess(data, unresolved, solve)
    try:
        # On the equilibrated contexts, like the rank: the same column space,
        # whose orthonormal basis the SVD then resolves to full accuracy.
        T = separable_pairs(_equilibrated(data), rank, always_solve=True)
        return T, "optimal", None, None
    except SeparablePairsError as exc:
        if bounds is None:
            raise
        return empty, f"failed: {exc}", None, bounds


def _verified_guess(data, T, solve):
    """``(T, lp, svm, farkas)`` as :func:`_separable_pairs`, from a guess of ``T``.

    A guess is certified by two checks: the Farkas bounds of the pairs
    outside it show that none of them is separable, and a certified ``U~``
    (ties on ``S~``, margin one on ``T``) that every pair in it is.
    A pair outside the guess that the bounds leave unresolved (its
    probability vanishes as Newton diverges along it) joins the guess; a
    pair of the guess on which a Farkas certificate of the NTP-SVM is
    negative leaves it (once the bounds hold, the cone with ties on ``S~`` is
    the cone itself, so the certificate shows that its margin is zero).
    A refused ``U~`` is reported in the status: the guess is then unproven.
    Every pair left outside ``T`` is proven non-separable by one of the two
    certificates (the status is :data:`VERIFIED_GUESS`).
    """
    refuted = np.zeros_like(T)  # by Farkas certificates: never separable
    for _ in range(GUESS_ROUNDS):
        effective = data.support_mask | ~T
        outside, bounds = farkas_bounds(data, effective)
        unresolved = unresolved_pairs(outside, bounds) & ~refuted
        if unresolved.any():
            T = T | unresolved
            continue
        try:
            svm = _max_margin_solution(data, effective, T, solve, refuse=(CertificationError,))
        except NotNTPSeparableError as exc:
            A = exc.certificate.T
            refuted |= T & (A < -FEASIBILITY_RTOL * np.abs(A).max())
            T = T & ~refuted
            continue
        return T, VERIFIED_GUESS, svm, bounds
    return T, (f"failed: the separable pairs did not settle in {GUESS_ROUNDS} "
               "rounds, and the linear program is too large"), None, None


def _rank(H):
    """Numerical rank of ``H``: ``m`` when ``d > m`` and the Cholesky factor of
    ``H H^T`` is definite (as :func:`ntp_svm` decides it; a third of the cost
    of the singular values), else from the singular values."""
    if H.shape[1] > H.shape[0] and gram_factor(H)[1]:
        return H.shape[0]
    return embedding_rank(H)[1]


def _equilibrated(data):
    """``data`` with unit root-mean-square feature columns (zero columns kept).

    An invertible change of features: logit patterns, ranks and the
    separable pairs are those of ``data``; norms and ``U~`` are not.
    """
    H = np.asarray(data.embeddings, dtype=np.float64)
    return replace(data, embeddings=H / _column_scales(H))


def _column_scales(H):
    """Root-mean-square of every column of ``H`` (1 for a zero column)."""
    s = np.sqrt(np.mean(H ** 2, axis=0))
    s[s == 0] = 1.0
    return s


def _svm_decides(data, solve):
    """``(separable, svm)``: whether a certified NTP-SVM shows ``T = O``, and
    (as :func:`_max_margin_solution`) ``U~`` when it is the NTP-SVM of ``data``.

    Feasibility does not depend on the scale of the features: when badly
    scaled features keep the NTP-SVM of ``data`` from its certificate, the
    equilibrated contexts decide (``U~`` is then computed on ``data`` later).
    """
    for candidate in (data, _equilibrated(data)):
        try:
            U, certificate = solve(candidate)
        except NotNTPSeparableError:
            return False, None
        except CertificationError:
            continue
        if candidate is data:
            return True, (U, max(certificate.primal, certificate.dual, certificate.gap), "")
        return True, None
    return False, None


def _max_margin_solution(data, effective, T, solve,
                         refuse=(CertificationError, NotNTPSeparableError)):
    """``(U~, KKT residual, refusal)``; ``(None, 0.0, "")`` when ``T`` is empty.

    ``U~`` is the NTP-SVM of the effective supports; :func:`ntp_svm` returns
    it only with its certificate holding, whose largest residual (relative
    infeasibility, duality gap) is reported. A refusal (the errors in
    ``refuse``; the others propagate) leaves ``U~`` unknown:
    ``(None, inf, why)``, and the status quotes why.
    """
    if not T.any():
        return None, 0.0, ""
    try:
        U, certificate = solve(with_support(data, effective))
    except refuse as exc:
        return None, np.inf, str(exc)
    return U, max(certificate.primal, certificate.dual, certificate.gap), ""


def _status(certificate):
    limits = {"stationarity": STATIONARITY_RTOL, "kkt_violation": GAP_RTOL,
              "farkas_bound": FARKAS_RTOL}
    names = {"stationarity": "finite component W~ (stationarity",
             "kkt_violation": "max-margin solution U~ (KKT violation",
             "farkas_bound": "separable pairs T (Farkas bound"}
    if certificate["separable_pairs_lp"] in ("optimal", VERIFIED_GUESS):
        del limits["farkas_bound"]
    failed = [f"{names[key]} {certificate[key]:.2g} > {limit:g})"
              for key, limit in limits.items() if not certificate[key] <= limit]
    if certificate["separable_pairs_lp"].startswith("failed"):
        failed.append(f"separable pairs T (LP {certificate['separable_pairs_lp']})")
    if certificate["max_margin_refusal"]:
        failed.append(certificate["max_margin_refusal"])
    return "certified" if not failed else "uncertified: " + "; ".join(failed)
