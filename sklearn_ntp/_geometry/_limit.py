"""The effective-support limit ``(T, W~, U~, L*)`` of any data: :func:`implicit_bias_limit`.

Beyond the paper's two conditions, effective supports give the infimum
``L* = inf CE`` (which gradient descent's loss reaches on any data) and the
candidates ``W~`` and ``U~`` for where its iterates go: proved when ``T`` is
empty, conjectured otherwise (docs, "Beyond separability"). Every part is
computed in orthonormal coordinates of the contexts' column space
(:mod:`._basis`), so it does not depend on the features' units:

1. ``T``, the separable off-support pairs: every off-support pair when ``H``
   has full row rank or the NTP-SVM of the data is feasible; none when the
   Farkas bounds certify that (:mod:`._pair_bounds`); else by one LP
   (:mod:`._separable_pairs`), or, when it is too large, by a guess that the
   Farkas bounds and ``U~`` verify (:func:`_verified_guess`);
2. ``S~_j = S_j`` plus the off-support tokens of ``j`` outside ``T``, and the
   subspace ``G`` their in-support differences span;
3. ``W~``, the minimizer in ``G`` of the cross-entropy restricted to ``S~``
   (:mod:`~sklearn_ntp._loss._restricted`), with value ``L* = inf CE``;
4. ``U~``, the NTP-SVM of the effective supports (ties on ``S~``, margin one
   on ``T``), solved by :func:`~sklearn_ntp.implicit_bias.ntp_svm`.

Each part carries its certificate: an error bound for ``W~`` and ``L*``
(:mod:`._error_bounds`), the KKT conditions of ``U~``, and a Farkas bound
showing that no direction of the cone has a margin above a reported
resolution on a pair outside ``T`` (from a stationary point, without an LP).
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property

import numpy as np

from .._data._dask import as_gathered_ntp_data
from .._data._ntp_data import NTPData, with_support
from .._exceptions import CertificationError, NotNTPSeparableError
from .._loss._restricted import STATIONARITY_RTOL, RestrictedLoss
from ._basis import BasisStatus, ContextBasis, context_basis, orthonormal_data
from ._error_bounds import finite_part_error
from ._pair_bounds import FARKAS_RTOL, farkas_bounds, pair_bounds, unresolved_pairs
from ._separable_pairs import SeparablePairsError, lp_size, separable_pairs
from ._subspace import CenteredRowSpace, DataSubspace, project_on_subspace
from ._svm import EAGER_LP_VARIABLES, _choose_methods, solve_ntp_svm
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
#: Variables (``n_tokens * n_contexts``) up to which the LP for ``T`` runs
#: before the Farkas bounds.
TINY_LP_VARIABLES = 5_000
#: Guesses of ``T`` tried before giving up.
GUESS_ROUNDS = 6
#: Newton steps of each minimization of ``CE~`` (quadratic convergence: a
#: few dozen reach round-off; the rest is margin for flat directions).
NEWTON_MAX_ITER = 200
#: Largest certified error bound of ``W~`` (Frobenius norm in orthonormal
#: coordinates, which bounds every logit's), relative to ``max(1, ||W~||)``.
FINITE_PART_ERROR_RTOL = 1e-7
#: Largest change of an in-support logit difference of ``W~`` caused by
#: expressing it in the features' coordinates, relative to ``max(1, max |logit|)``.
FEATURE_MAP_RTOL = 1e-7


@dataclass(frozen=True, eq=False)
class ImplicitBiasLimit:
    """The effective-support limit of the NTP loss: ``T``, ``W~``, ``U~`` and ``L*``.

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
        ``L* = CE~(W~) = inf_W CE(W)`` (nats); ``L* >= H``. When the limit is
        not certified, the value attained by the computed limit: an upper
        bound on ``inf CE`` (see ``loss_infimum_bounds``).
    loss_infimum_bounds : tuple of float
        ``(lower, upper)`` with ``lower <= inf_W CE(W) <= upper``: within
        ``certificate["loss_infimum_error"]`` of each other when certified,
        both widened by the first-order change of ``L*`` that the basis's
        ``certificate["span_error"]`` allows (round-off for well-conditioned
        features); otherwise ``lower`` is the entropy unless the separable
        pairs and the error bound of ``W~`` hold.
    entropy : float
        The entropy ``H``.
    separable_pairs : ndarray of bool, shape (n_contexts, n_tokens)
        ``T``, in the context order of ``aggregate_contexts``.
    effective_support : ndarray of bool, shape (n_contexts, n_tokens)
        ``S~``: the supports plus the off-support pairs outside ``T``.
    undecided_pairs : ndarray of bool, shape (n_contexts, n_tokens)
        Pairs outside ``T`` whose Farkas bound exceeds the margin resolution
        ``1e-5`` (so neither proven separable nor proven below the
        resolution); empty when certified.
    is_separable : bool
        Whether ``T`` is every off-support pair (Definition 2).
    rank : int
        Dimension of the column space of ``H`` (at the resolution
        ``certificate["span_resolution"]``).
    certificate : dict
        Every quantity is measured in orthonormal coordinates of the contexts
        (``H = Q B^T``, ``Q^T Q = I``), so it is the same under any invertible
        change of features:

        - ``"finite_component_error"``: a proven bound on ``||W~ B - M||_F``
          for the returned ``M`` (every logit of ``W~`` on the effective
          supports is known to twice that, plus about ``sqrt(2)
          span_error ||M||_2`` for the basis's own accuracy, below), from the
          gradient and a lower
          bound on the curvature of ``CE~`` on ``G`` (``inf`` when no bound
          could be computed, with ``"finite_component_refusal"`` saying why);
        - ``"loss_infimum_error"``: a proven bound on ``CE~(W~) - L*``;
        - ``"stationarity"``: ``||grad CE~||_F / sqrt(sum_j pi_j ||z_j||^2)``;
        - ``"feature_map_error"``: the change of ``W~``'s in-support logit
          differences when it is expressed in the features' coordinates,
          relative to ``max(1, max |logit|)`` (large only when the features
          themselves are badly conditioned);
        - ``"kkt_violation"``: largest residual of ``U~``'s certificate
          (relative infeasibility at most ``1e-8``, duality gap at most
          ``1e-6``; 0 when ``T`` is empty) -- ``U~`` is a minimum-norm solution
          in the features' own metric, where gradient descent runs;
        - ``"farkas_bound"``: the margin resolution: no unit direction of the
          cone has a margin above it on a pair outside ``T``, relative to
          ``max_j ||z_j||``; margins below it are treated as zero;
        - ``"span_resolution"``, ``"smallest_sine"``: sines of angles between
          feature columns and the span of the others below which a column adds
          no dimension, and the smallest kept;
        - ``"span_error"``: estimated sine of the largest angle between the
          computed orthonormal basis's span and the features' exact column
          space (the QR's backward error over the smallest singular value of
          its triangular factor): about ``eps`` over ``"smallest_sine"``;
        - ``"separable_pairs_lp"``: ``"optimal"`` when ``T`` comes from the
          linear program solved to optimality, which certifies its maximality
          by itself, ``"not needed"`` (with how ``T`` was proven), or why it
          failed.
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
    loss_infimum_bounds: tuple
    entropy: float
    separable_pairs: np.ndarray = field(repr=False)
    effective_support: np.ndarray = field(repr=False)
    undecided_pairs: np.ndarray = field(repr=False)
    is_separable: bool
    rank: int
    certificate: dict
    status: str
    timings: dict = field(repr=False)
    data: NTPData = field(repr=False)
    basis: ContextBasis = field(default=None, repr=False)
    orthonormal_finite_component: np.ndarray = field(default=None, repr=False)
    _log_odds_cache: tuple = field(default=None, repr=False)
    #: The status of every stage (basis, W~, its map, U~, T): see STATUS_MAP.
    _stage_statuses: tuple = field(default=(), repr=False)

    @cached_property
    def _compatibility(self):
        """``(F, W*, residual)`` in orthonormal coordinates, computed on first use
        (W* costs as much as the rest of the limit at corpus scale)."""
        return self._log_odds_cache or _log_odds(orthonormal_data(self.data, self.basis))

    @property
    def is_compatible(self):
        """Whether the log-odds equations have an exact solution (Definition 1)."""
        subspace, _, residual = self._compatibility
        return bool(subspace.is_exact(residual))

    @property
    def compatibility_residual(self):
        """Largest log-odds equation violation of the least-squares solution in
        ``F`` (evidence of incompatibility; that solution is not a limit)."""
        return float(self._compatibility[2])

    @property
    def subspace_dim(self):
        """Dimension of the data subspace ``F`` (None on its Krylov path)."""
        return self._compatibility[0].dim

    @property
    def certified(self):
        """Whether every part of the limit holds its certificate."""
        return all(STATUS_MAP[status] is None for status in self._stage_statuses)

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
        loss = RestrictedLoss(orthonormal_data(self.data, self.basis), self.effective_support)
        A = np.empty((self.data.n_contexts, self.data.n_tokens))
        for rows, q in loss.softmax_blocks(self.orthonormal_finite_component):
            block = A[rows]
            np.subtract(self.data.probabilities[rows].toarray(), q, out=block)
            block *= loss.pi[rows, None]
        return A.T

    @cached_property
    def subspace(self):
        """The data subspace ``F`` in the features' coordinates (:class:`DataSubspace`)."""
        return DataSubspace(self.data)

    @cached_property
    def effective_subspace(self):
        """``G``, the subspace of the effective supports (:class:`DecoderSubspace`).

        ``F`` itself (:attr:`subspace`) when separable. When every effective
        support is the whole vocabulary (no separable pair), ``G`` is the set
        of ``A H`` with zero-sum columns, projected onto without its
        ``m (V - 1)`` generators; otherwise the :class:`DataSubspace` of the
        effective supports.
        """
        if self.is_separable:
            return self.subspace
        if self.effective_support.all():
            return CenteredRowSpace(self.data.embeddings, self.rank, self.data.n_tokens)
        return DataSubspace(with_support(self.data, self.effective_support))


def implicit_bias_limit(X, y=None, sample_weight=None, *, method="auto", svm_method="auto",
                        verbose=0):
    """The effective-support limit of the NTP loss, on any data, certified.

    Gradient descent with a stable step has ``CE(W_k) -> L*`` on any data.
    When the data are NTP_H-compatible and NTP-separable, ``(W~, U~, L*)``
    are the paper's ``(W*, W^mm, H)`` and ``W_k ~ W~ + ||P_perp W_k|| U~ / ||U~||``
    (Theorem 2); when no pair is separable, ``W_k -> W~`` (proved); in
    between the same picture is conjectured and checked numerically (see
    the theory sections "Beyond separability" and "Certificates").

    ``T``, ``L*``, the in-support logits of ``W~`` and compatibility are
    computed in an orthonormal basis of the column space of ``H``: the same
    under any invertible change of features (a feature offset next to an
    intercept, units, mixing). ``U~`` is the minimum-norm solution in the
    features' own metric, where gradient descent runs.

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
        50,000 variables, ``n_tokens * (n_contexts - rank(H))``, or when the
        NTP-SVM takes its working-set method, which needs no LP on separable
        data), and when
        Farkas bounds certify that no pair is separable (then ``T`` is
        empty; they come from the minimizer of a cross-entropy with uniform
        weights, and again with the logits of its least likely pairs
        raised). Otherwise it solves the LP when it has at most 20 million
        nonzeros (about ``n_contexts * n_tokens * 2 rank(H)``); above, the
        pairs the bounds leave unresolved are a guess of ``T``, enlarged
        until the bounds of its effective supports hold and then proved by a
        certified ``U~`` (no LP at all). ``"lp"`` always solves the LP.
    svm_method : {"auto", "interior-point", "dual-cd", "cvxpy", "active-set", \
"working-set"}, default="auto"
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
    data = as_gathered_ntp_data(X, y, sample_weight)
    clock = _Stopwatch(verbose)
    with clock.part("finite_component", "orthonormal coordinates") as note:
        # T, L*, the in-support logits of W~ and compatibility depend on H only
        # through its column space: computed from an orthonormal basis of it,
        # they do not depend on the features' units, offsets or mixing.
        basis = context_basis(data.embeddings)
        unit = orthonormal_data(data, basis)
        note.append(f"rank {basis.rank} of m = {data.n_contexts} ({basis.status.value})")

    solve = _SvmSolver(basis, svm_method, verbose)
    with clock.part("separable_pairs", "separable pairs T") as note:
        svm = _SvmOnTheWay(data, solve)
        pairs = _separable_pairs(unit, basis.rank, method, svm)
        T = pairs.T
        effective = data.support_mask | ~T
        note.append(f"{int(T.sum())} of {int((~data.support_mask).sum())} off-support "
                    f"pairs ({pairs.status.value})")

    with clock.part("finite_component", "finite part W~") as note:
        # W* is W~ itself when every pair is separable; with none, the minimizer
        # of CE is unrelated to the log-odds equations, and 0 is a better start
        # (and W* is only computed if asked for: compatibility is a lazy property).
        log_odds = _log_odds(unit) if T.any() else None
        start_point = (log_odds[1] if T.any()
                       else np.zeros((data.n_tokens, unit.n_features)))
        finite = _finite_part(unit, effective, start_point)
        feature_map = _in_features(data, basis, effective, finite.M)
        note.append(f"stationarity {finite.stationarity:.2g}, "
                    f"error bound {finite.error:.2g}")
    with clock.part("max_margin_solution", "max-margin solution U~") as note:
        margin = (svm.result if svm.result is not None
                  else _max_margin_solution(data, effective, T, solve))
        note.append(f"KKT residual {margin.kkt:.2g}" if margin.U is not None
                    else margin.reason or margin.status.value)
    farkas = pairs.farkas
    if farkas is None:
        farkas = pair_bounds(finite.loss, finite.M, finite.grad_norm, data.support_mask)[1]
    pairs = pairs.with_farkas(farkas)
    undecided = np.zeros_like(T)
    if not pairs.outside_proven:
        undecided[effective & ~data.support_mask] = ~(pairs.farkas <= FARKAS_RTOL)
    stages = (finite, feature_map, margin, pairs)
    certificate = {
        **finite.certificate, **feature_map.certificate, **margin.certificate,
        **pairs.certificate, **basis.certificate,
    }
    status = public_status(stages)
    U = margin.U
    norm = None if U is None else float(np.linalg.norm(U))
    value, bounds = _loss_infimum_bounds(data, unit, basis, finite, pairs, _holds(stages))
    return ImplicitBiasLimit(
        finite_component=feature_map.W, max_margin_solution=U,
        margin_direction=None if U is None else U / norm,
        margin=None if U is None else 1.0 / norm,
        loss_infimum=value, loss_infimum_bounds=bounds, entropy=data.entropy,
        separable_pairs=T, effective_support=effective, undecided_pairs=undecided,
        is_separable=pairs.is_everything(data.support_mask), rank=basis.rank,
        certificate=certificate, status=status, timings=clock.timings, data=data,
        basis=basis, orthonormal_finite_component=finite.M, _log_odds_cache=log_odds,
        _stage_statuses=tuple(stage.status for stage in (basis, *stages)),
    )


def _log_odds(unit):
    """``(F, W*, residual)`` of the orthonormal contexts ``unit``."""
    subspace = DataSubspace(unit)
    return (subspace, *subspace.log_odds_solution())


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


# ---------------------------------------------------------------------------
# The stages and their statuses. Each stage of the limit returns a frozen
# result with a status (an Enum) and its certificate entries; the public
# ``status`` string is derived from those statuses by one map, STATUS_MAP.


class PairsStatus(Enum):
    """How the separable pairs ``T`` were decided."""

    NO_OFF_SUPPORT_PAIRS = "no off-support pair"
    FULL_ROW_RANK = "T = O: H has full row rank"
    SVM_FEASIBLE = "T = O: a certified NTP-SVM"
    FARKAS_BOUNDS = "T empty: Farkas bounds"
    LP_OPTIMAL = "linear program solved to optimality"
    VERIFIED_GUESS = "verified guess"
    #: ``T`` proven without the LP, but pairs outside it are neither proven
    #: separable nor below the margin resolution.
    UNDECIDED = "pairs outside T undecided"
    LP_FAILED = "linear program failed"
    GUESS_UNSETTLED = "guess did not settle"


class FiniteStatus(Enum):
    """Whether the error bound of ``W~`` holds."""

    CERTIFIED = "error bound within tolerance"
    NO_ERROR_BOUND = "no error bound"
    ERROR_ABOVE_TOLERANCE = "error bound above tolerance"


class FeatureMapStatus(Enum):
    """Whether ``W~`` keeps its logits when expressed in the features' coordinates."""

    ACCURATE = "logits kept"
    INACCURATE = "logits changed by the features' conditioning"


class MarginStatus(Enum):
    """Whether ``U~`` exists and holds its certificate."""

    NOT_NEEDED = "none (T empty)"
    CERTIFIED = "certified"
    REFUSED = "refused"
    KKT_ABOVE_TOLERANCE = "KKT residual above tolerance"


#: The statuses of ``T`` reached without deciding it (the LP failed).
PAIRS_FAILED = frozenset({PairsStatus.LP_FAILED, PairsStatus.GUESS_UNSETTLED})
#: The statuses of ``T`` that prove by themselves that no pair outside ``T``
#: is separable (the others rely on the Farkas bounds for that).
PAIRS_MAXIMAL = frozenset({PairsStatus.LP_OPTIMAL, PairsStatus.VERIFIED_GUESS})

#: What every status of a stage adds to the public ``status``: None when the
#: stage holds, else the clause naming it, formatted with the stage's
#: ``details`` (in the spirit of scipy's ``_linprog_highs`` status map).
STATUS_MAP = {
    BasisStatus.ZERO: None,
    BasisStatus.INDEPENDENT_CONTEXTS: None,
    BasisStatus.PIVOTED_QR: None,
    FiniteStatus.CERTIFIED: None,
    FiniteStatus.NO_ERROR_BOUND: "finite component W~ ({reason})",
    FiniteStatus.ERROR_ABOVE_TOLERANCE:
        "finite component W~ (error bound {error:.2g} > {tolerance:g} x {scale:.3g})",
    FeatureMapStatus.ACCURATE: None,
    FeatureMapStatus.INACCURATE:
        "W~ in the features' coordinates (their conditioning changes its logits by "
        "{error:.2g} relative)",
    MarginStatus.NOT_NEEDED: None,
    MarginStatus.CERTIFIED: None,
    MarginStatus.REFUSED: "max-margin solution U~ not certified: {reason}",
    MarginStatus.KKT_ABOVE_TOLERANCE:
        "max-margin solution U~ (KKT violation {kkt:.2g} > {tolerance:g})",
    PairsStatus.NO_OFF_SUPPORT_PAIRS: None,
    PairsStatus.FULL_ROW_RANK: None,
    PairsStatus.SVM_FEASIBLE: None,
    PairsStatus.FARKAS_BOUNDS: None,
    PairsStatus.LP_OPTIMAL: None,
    PairsStatus.VERIFIED_GUESS: None,
    PairsStatus.UNDECIDED:
        "separable pairs T (Farkas bound {farkas_bound:.2g} > {tolerance:g}: some pairs "
        "outside T are undecided)",
    PairsStatus.LP_FAILED: "separable pairs T (LP failed: {reason})",
    PairsStatus.GUESS_UNSETTLED: "separable pairs T (LP failed: {reason})",
}
#: ``certificate["separable_pairs_lp"]`` for each status of ``T``.
LP_ENTRY = {
    PairsStatus.NO_OFF_SUPPORT_PAIRS: "not needed",
    PairsStatus.FULL_ROW_RANK: "not needed",
    PairsStatus.SVM_FEASIBLE: "not needed",
    PairsStatus.FARKAS_BOUNDS: "not needed",
    PairsStatus.UNDECIDED: "not needed",
    PairsStatus.LP_OPTIMAL: "optimal",
    PairsStatus.VERIFIED_GUESS: "verified guess",
    PairsStatus.LP_FAILED: "failed: {reason}",
    PairsStatus.GUESS_UNSETTLED: "failed: {reason}",
}


def _holds(stages):
    """Whether every stage's status holds (maps to no clause)."""
    return all(STATUS_MAP[stage.status] is None for stage in stages)


def public_status(stages):
    """``"certified"``, or ``"uncertified: "`` and the clause of every stage that is not."""
    clauses = [STATUS_MAP[stage.status].format(**stage.details) for stage in stages
               if STATUS_MAP[stage.status] is not None]
    return "uncertified: " + "; ".join(clauses) if clauses else "certified"


@dataclass(frozen=True)
class _SeparablePairs:
    """``T`` with how it was decided, and the Farkas bounds of the pairs
    outside it (:func:`._pair_bounds.farkas_bounds`) once known."""

    T: np.ndarray
    status: PairsStatus
    farkas: np.ndarray | None = None
    reason: str = ""

    def is_everything(self, support_mask):
        """Whether ``T`` is every off-support pair (Definition 2)."""
        return bool(np.array_equal(self.T, ~support_mask))

    @property
    def outside_proven(self):
        """Whether the status alone proves that no pair outside ``T`` is separable."""
        return self.status in PAIRS_MAXIMAL

    @property
    def farkas_bound(self):
        """The margin resolution: the largest Farkas bound of a pair outside ``T``."""
        return float(np.max(self.farkas, initial=0.0))

    def with_farkas(self, farkas):
        """The same ``T`` with the bounds ``farkas``; a ``T`` proven without
        the LP becomes :attr:`PairsStatus.UNDECIDED` when they exceed the resolution."""
        pairs = replace(self, farkas=farkas)
        if (self.status not in PAIRS_FAILED | PAIRS_MAXIMAL
                and not pairs.farkas_bound <= FARKAS_RTOL):
            pairs = replace(pairs, status=PairsStatus.UNDECIDED)
        return pairs

    @property
    def certificate(self):
        return {"farkas_bound": self.farkas_bound,
                "separable_pairs_lp": LP_ENTRY[self.status].format(reason=self.reason)}

    @property
    def details(self):
        return {"reason": self.reason, "farkas_bound": self.farkas_bound,
                "tolerance": FARKAS_RTOL}


@dataclass(frozen=True)
class _FinitePart:
    """``W~`` in orthonormal coordinates with its certificate (:mod:`._error_bounds`)."""

    loss: RestrictedLoss
    M: np.ndarray
    grad_norm: float
    error: float
    loss_error: float
    reason: str

    @property
    def stationarity(self):
        """``||grad CE~||_F`` relative to its scale ``sqrt(sum_j pi_j ||z_j||^2)``."""
        return self.grad_norm / max(self.loss.scale, np.finfo(float).tiny)

    @property
    def scale(self):
        """``max(1, ||W~||)``, the scale of the error bound."""
        return max(1.0, float(np.linalg.norm(self.M)))

    @property
    def status(self):
        if self.reason:
            return FiniteStatus.NO_ERROR_BOUND
        if not self.error <= FINITE_PART_ERROR_RTOL * self.scale:
            return FiniteStatus.ERROR_ABOVE_TOLERANCE
        return FiniteStatus.CERTIFIED

    @property
    def certificate(self):
        return {"stationarity": self.stationarity, "finite_component_error": self.error,
                "loss_infimum_error": self.loss_error,
                "finite_component_refusal": self.reason}

    @property
    def details(self):
        return {"reason": self.reason, "error": self.error, "scale": self.scale,
                "tolerance": FINITE_PART_ERROR_RTOL}


@dataclass(frozen=True)
class _FeatureMap:
    """``W~`` in the features' coordinates, and the relative change of its logits."""

    W: np.ndarray
    error: float

    @property
    def status(self):
        return (FeatureMapStatus.ACCURATE if self.error <= FEATURE_MAP_RTOL
                else FeatureMapStatus.INACCURATE)

    @property
    def certificate(self):
        return {"feature_map_error": self.error}

    @property
    def details(self):
        return {"error": self.error}


@dataclass(frozen=True)
class _MarginPart:
    """``U~`` with its largest KKT residual, or None with why (``reason``)."""

    U: np.ndarray | None
    kkt: float
    reason: str = ""

    @property
    def status(self):
        if self.reason:
            return MarginStatus.REFUSED
        if self.U is None:
            return MarginStatus.NOT_NEEDED
        if not self.kkt <= GAP_RTOL:
            return MarginStatus.KKT_ABOVE_TOLERANCE
        return MarginStatus.CERTIFIED

    @property
    def certificate(self):
        return {"kkt_violation": self.kkt, "max_margin_refusal": self.reason}

    @property
    def details(self):
        return {"reason": self.reason.rstrip("."), "kkt": self.kkt, "tolerance": GAP_RTOL}


def _finite_part(unit, effective, M0, max_iter=NEWTON_MAX_ITER):
    """``W~`` on the orthonormal contexts ``unit``, from ``M0`` in ``G``.

    Newton-CG to the stationarity :data:`FINITE_PART_RTOL`; when the error
    bound that this gradient gives is still above :data:`FINITE_PART_ERROR_RTOL`
    (small curvature on ``G``: contexts of tiny weight, rare tokens), Newton
    goes on to round-off, which the bound then divides by the curvature.
    """
    loss = RestrictedLoss(unit, effective)
    M, grad_norm = loss.minimize(M0, max_iter=max_iter, tol=FINITE_PART_RTOL)
    error, loss_error, reason = finite_part_error(loss, M, grad_norm)
    if not error <= FINITE_PART_ERROR_RTOL * max(1.0, float(np.linalg.norm(M))):
        M, grad_norm = loss.minimize(M, max_iter=max_iter, tol=0.0)
        error, loss_error, reason = finite_part_error(loss, M, grad_norm)
    return _FinitePart(loss, M, grad_norm, error, loss_error, reason)


def _in_features(data, basis, effective, M):
    """:class:`_FeatureMap`: ``W~`` in the features' coordinates, from ``M = W~ B``.

    The minimum-norm decoder with the logits of ``M`` lies in ``G`` when every
    effective support is the whole vocabulary (``G`` is then every centred
    matrix with rows in the row space of ``H``); otherwise its projection onto
    ``G`` is (:func:`._subspace.project_on_subspace`), with the same logits on the effective
    supports. ``error`` is the largest change of a logit difference on
    ``S~_j`` that the change of coordinates caused, relative to
    ``max(1, max |logit|)``: it stays at round-off unless the features
    themselves are badly conditioned.
    """
    W = basis.to_features(M)
    if not effective.all():
        W = project_on_subspace(with_support(data, effective), W)
    H = np.asarray(data.embeddings, dtype=np.float64)
    target = basis.Q @ M.T
    change = np.where(effective, H @ W.T - target, np.nan)
    spread = np.nanmax(change, axis=1) - np.nanmin(change, axis=1)
    scale = max(1.0, float(np.max(np.abs(target), initial=0.0)))
    return _FeatureMap(W, float(np.max(spread, initial=0.0)) / scale)


def _separable_pairs(unit, rank, method, svm):
    """:class:`_SeparablePairs` of the orthonormal contexts ``unit``: ``T``,
    how it was decided, and the Farkas bounds of the pairs outside ``T`` when
    they were computed on the way (:func:`._pair_bounds.farkas_bounds`).

    With rank-deficient embeddings ``T`` is often empty: the Farkas bounds
    of every off-support pair then show it without the linear program.
    When some pair is separable, the minimizer diverges along it and its
    bound fails; then the LP decides, or, when the LP is too large, the
    pairs left unresolved are a guess that :func:`_verified_guess` checks
    both ways. If the LP fails, ``T`` is left empty and the status says so.
    """
    empty, off = np.zeros_like(unit.support_mask), ~unit.support_mask
    if not off.any():
        return _SeparablePairs(off, PairsStatus.NO_OFF_SUPPORT_PAIRS)
    if rank == unit.n_contexts and method == "auto":
        return _SeparablePairs(off, PairsStatus.FULL_ROW_RANK)
    everything = np.ones_like(unit.support_mask)
    small_lp = unit.n_tokens * (unit.n_contexts - rank) <= EAGER_LP_VARIABLES
    if method == "auto" and (small_lp or svm.solves_without_lp(unit)):
        # Classification data are often separable, where the minimizers behind
        # the Farkas bounds diverge: a small Farkas LP decides whether T = O
        # for the price of one NTP-SVM, and the working-set method needs no
        # LP unless the data are not separable (then a large LP is left to the
        # paths below). A few Newton steps first settle most data that are not
        # separable at all, on which that LP can be slow.
        _, bounds = farkas_bounds(unit, everything, QUICK_NEWTON_STEPS, rebalance=False)
        if np.all(bounds <= FARKAS_RTOL):
            return _SeparablePairs(empty, PairsStatus.FARKAS_BOUNDS, bounds)
        if svm.decides(unit, farkas_lp=small_lp):
            return _SeparablePairs(off, PairsStatus.SVM_FEASIBLE)
    bounds = None
    # A tiny LP costs less than the Newton steps of the bounds (iris: 10 ms
    # against 180 ms); they are computed only should it fail.
    tiny_lp = (unit.n_tokens * unit.n_contexts <= TINY_LP_VARIABLES
               and lp_size(unit, rank) <= LP_MAX_NONZEROS)
    if method == "auto" and not tiny_lp:
        bounds, unresolved = _bounds_of_every_pair(unit)
        if not unresolved.any():
            return _SeparablePairs(empty, PairsStatus.FARKAS_BOUNDS, bounds)
        if lp_size(unit, rank) > LP_MAX_NONZEROS:
            return _verified_guess(unit, unresolved, svm.solve)
    try:
        return _SeparablePairs(separable_pairs(unit, rank, always_solve=True),
                               PairsStatus.LP_OPTIMAL)
    except SeparablePairsError as exc:
        if method != "auto":
            raise
        if bounds is None:
            bounds, unresolved = _bounds_of_every_pair(unit)
            if not unresolved.any():
                return _SeparablePairs(empty, PairsStatus.FARKAS_BOUNDS, bounds)
        return _SeparablePairs(empty, PairsStatus.LP_FAILED, bounds, str(exc))


def _bounds_of_every_pair(unit):
    """``(bounds, unresolved)``: the Farkas bounds with every pair effective,
    and the pairs they leave unresolved (none: ``T`` is empty)."""
    outside, bounds = farkas_bounds(unit, np.ones_like(unit.support_mask))
    return bounds, unresolved_pairs(outside, bounds)


def _verified_guess(unit, T, solve):
    """:class:`_SeparablePairs` as :func:`_separable_pairs`, from a guess of ``T``.

    A guess is certified by two checks: the Farkas bounds of the pairs
    outside it show that none of them is separable, and a certified NTP-SVM
    of the effective supports (ties on ``S~``, margin one on ``T``) that every
    pair in it is. A pair outside the guess that the bounds leave unresolved
    (its probability vanishes as Newton diverges along it) joins the guess; a
    pair of the guess on which a Farkas certificate of the NTP-SVM is
    negative leaves it (once the bounds hold, the cone with ties on ``S~`` is
    the cone itself, so the certificate shows that its margin is zero).
    Every pair left outside ``T`` is proven non-separable by one of the two
    certificates (the status is :attr:`PairsStatus.VERIFIED_GUESS`).
    """
    refuted = np.zeros_like(T)  # by Farkas certificates: never separable
    for _ in range(GUESS_ROUNDS):
        effective = unit.support_mask | ~T
        outside, bounds = farkas_bounds(unit, effective)
        unresolved = unresolved_pairs(outside, bounds) & ~refuted
        if unresolved.any():
            T = T | unresolved
            continue
        try:
            solve(with_support(unit, effective))
        except NotNTPSeparableError as exc:
            A = exc.certificate.T
            refuted |= T & (A < -FEASIBILITY_RTOL * np.abs(A).max())
            T = T & ~refuted
            continue
        except CertificationError:
            break
        return _SeparablePairs(T, PairsStatus.VERIFIED_GUESS, bounds)
    return _SeparablePairs(T, PairsStatus.GUESS_UNSETTLED, reason=(
        f"the separable pairs did not settle in {GUESS_ROUNDS} rounds, and the linear "
        "program is too large"))


class _SvmSolver:
    """``(U, certificate)`` of :func:`solve_ntp_svm` for contexts of the data,
    with the Gram factor of the basis whenever they share its embeddings."""

    def __init__(self, basis, method, verbose):
        self.gram, self.method, self.verbose = basis.gram, method, verbose

    def __call__(self, data, farkas_lp=True):
        gram = self.gram
        if gram is not None and not gram.belongs_to(data.embeddings):
            gram = None  # orthonormal contexts: not the embeddings of the factor
        return solve_ntp_svm(data, method=self.method, verbose=self.verbose, gram=gram,
                             farkas_lp=farkas_lp)


class _SvmOnTheWay:
    """Decides whether ``T = O`` by a certified NTP-SVM, keeping ``U~`` if found.

    Feasibility does not depend on the coordinates, and a certified solution
    in the features' own metric has every margin at least
    ``1 - FEASIBILITY_RTOL``: it proves ``T = O`` and is ``U~`` itself. When
    the features' metric does not give one, the orthonormal contexts decide.
    """

    def __init__(self, data, solve):
        self.data, self.solve, self.result = data, solve, None

    def solves_without_lp(self, unit):
        """Whether the NTP-SVM of ``unit`` starts with the working-set or the
        active-set method, which run the Farkas LP only on data that are not
        separable."""
        return _choose_methods(self.solve.method, unit)[0] in ("working-set", "active-set")

    def decides(self, unit, farkas_lp=True):
        """Whether a certified NTP-SVM shows that every off-support pair is
        separable (``farkas_lp``: as in :func:`._svm.solve_ntp_svm`)."""
        for candidate in (self.data, unit):
            try:
                U, certificate = self.solve(candidate, farkas_lp=farkas_lp)
            except NotNTPSeparableError:
                return False
            except CertificationError:
                continue
            if candidate is self.data:
                self.result = _MarginPart(U, _kkt(certificate))
            return True
        return False


def _kkt(certificate):
    """Largest residual of an NTP-SVM certificate."""
    return max(certificate.primal, certificate.dual, certificate.gap)


def _max_margin_solution(data, effective, T, solve):
    """:class:`_MarginPart`: ``U~``, or None when ``T`` is empty.

    ``U~`` is the NTP-SVM of the effective supports; :func:`ntp_svm` returns
    it only with its certificate holding, whose largest residual (relative
    infeasibility, duality gap) is reported. A refusal leaves ``U~`` unknown
    (KKT residual ``inf``), and the status quotes why. ``T`` is proven by then,
    so the refusal is about ``U~`` alone (the minimum-norm problem of the
    features' metric), never about which pairs are separable.
    """
    if not T.any():
        return _MarginPart(None, 0.0)
    try:
        U, certificate = solve(with_support(data, effective))
    except (CertificationError, NotNTPSeparableError) as exc:
        return _MarginPart(None, np.inf, str(exc))
    return _MarginPart(U, _kkt(certificate))


def _loss_infimum_bounds(data, unit, basis, finite, pairs, certified):
    """``(value, (lower, upper))``: the loss infimum and bounds around ``L* = inf CE``.

    ``CE~(W~)`` is attained in the limit when the pairs of ``T`` are
    separable, so it is an upper bound once ``T`` is proven (else the full
    cross-entropy at ``W~`` is); it is ``L*`` up to the certified
    ``loss_infimum_error`` when the pairs outside ``T`` are proven
    non-separable too. Otherwise only the entropy bounds ``L*`` from below.
    Both bounds are widened by what the basis's span error moves ``L*``
    (:func:`_span_sensitivity`).
    """
    T_proven = pairs.status not in PAIRS_FAILED
    value = finite.loss.value(finite.M)
    if not T_proven:
        value = RestrictedLoss(unit, np.ones_like(unit.support_mask)).value(finite.M)
    span = _span_sensitivity(finite, basis.span_error)
    outside_proven = pairs.outside_proven or pairs.farkas_bound <= FARKAS_RTOL
    lower = (value - finite.loss_error - span
             if certified or (T_proven and outside_proven and np.isfinite(finite.loss_error))
             else data.entropy)
    return value, (float(max(data.entropy, lower)), float(value + span))


def _span_sensitivity(finite, span_error):
    """First-order change of ``L*`` when every context moves by ``sqrt(2) span_error``.

    The computed basis spans the contexts' column space up to an angle of
    sine ``span_error`` (:attr:`._basis.ContextBasis.span_error`): after the
    best rotation each ``z_j`` moves by at most ``sqrt(2)`` times that, and
    at the minimizer (envelope theorem) ``dL*/dz_j = pi_j M~^T (q_j - p_j)``.
    """
    if span_error == 0.0:
        return 0.0
    loss, M = finite.loss, finite.M
    total = 0.0
    for rows, q in loss.softmax_blocks(M):
        # (q_j - p_j)^T M~ without a dense p: P is sparse.
        moved = q @ M - loss.data.probabilities[rows] @ M
        total += float(loss.pi[rows] @ np.linalg.norm(moved, axis=1))
    return np.sqrt(2.0) * span_error * total
