"""The stages of the implicit-bias limit: typed statuses, one status map, one
Gram factor per data set, the public type of ``effective_subspace``, the
HiGHS status map, and a limit handed to ``fit`` explicitly."""

from functools import cached_property

import numpy as np
import pytest
from _cases import non_separable, partially_separable
from scipy.optimize import linprog

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp._geometry._basis import BasisStatus
from sklearn_ntp._geometry._limit import (
    LP_ENTRY,
    STATUS_MAP,
    FeatureMapStatus,
    FiniteStatus,
    MarginStatus,
    PairsStatus,
    _FeatureMap,
    _FinitePart,
    _MarginPart,
    _SeparablePairs,
    public_status,
)
from sklearn_ntp._geometry._subspace import CenteredRowSpace
from sklearn_ntp._linalg._gram import GramFactor
from sklearn_ntp._linalg._highs import HIGHS_STATUS, highs_message
from sklearn_ntp.implicit_bias import (
    DataSubspace,
    DecoderSubspace,
    aggregate_contexts,
    implicit_bias_limit,
)

T = np.array([[False, True]])


def _finite(error=0.0, reason=""):
    return _FinitePart(loss=None, M=np.zeros((2, 1)), grad_norm=0.0, error=error,
                       loss_error=0.0, reason=reason)


#: (stage result, its status, the clause it adds to the public status).
STAGES = [
    (_finite(), FiniteStatus.CERTIFIED, None),
    (_finite(reason="no curvature bound"), FiniteStatus.NO_ERROR_BOUND,
     "finite component W~ (no curvature bound)"),
    (_finite(error=0.5), FiniteStatus.ERROR_ABOVE_TOLERANCE,
     "finite component W~ (error bound 0.5 > 1e-07 x 1)"),
    (_FeatureMap(None, 0.0), FeatureMapStatus.ACCURATE, None),
    (_FeatureMap(None, 0.25), FeatureMapStatus.INACCURATE,
     "W~ in the features' coordinates (their conditioning changes its logits by 0.25 "
     "relative)"),
    (_FeatureMap(None, np.nan), FeatureMapStatus.INACCURATE,
     "W~ in the features' coordinates (their conditioning changes its logits by nan "
     "relative)"),
    (_MarginPart(None, 0.0), MarginStatus.NOT_NEEDED, None),
    (_MarginPart(np.ones((2, 1)), 1e-9), MarginStatus.CERTIFIED, None),
    (_MarginPart(None, np.inf, "Refused."), MarginStatus.REFUSED,
     "max-margin solution U~ not certified: Refused"),
    (_MarginPart(np.ones((2, 1)), 0.01), MarginStatus.KKT_ABOVE_TOLERANCE,
     "max-margin solution U~ (KKT violation 0.01 > 1e-06)"),
    *[(_SeparablePairs(T, status, np.zeros(1)), status, None)
      for status in (PairsStatus.NO_OFF_SUPPORT_PAIRS, PairsStatus.FULL_ROW_RANK,
                     PairsStatus.SVM_FEASIBLE, PairsStatus.FARKAS_BOUNDS,
                     PairsStatus.LP_OPTIMAL, PairsStatus.VERIFIED_GUESS)],
    (_SeparablePairs(T, PairsStatus.UNDECIDED, np.array([0.5])), PairsStatus.UNDECIDED,
     "separable pairs T (Farkas bound 0.5 > 1e-05: some pairs outside T are undecided)"),
    (_SeparablePairs(T, PairsStatus.LP_FAILED, np.zeros(1), "HiGHS gave up"),
     PairsStatus.LP_FAILED, "separable pairs T (LP failed: HiGHS gave up)"),
    (_SeparablePairs(T, PairsStatus.GUESS_UNSETTLED, np.zeros(1), "no settling"),
     PairsStatus.GUESS_UNSETTLED, "separable pairs T (LP failed: no settling)"),
]


def test_the_status_map_covers_every_status_of_every_stage():
    statuses = {s for enum in (BasisStatus, FiniteStatus, FeatureMapStatus, MarginStatus,
                               PairsStatus) for s in enum}
    assert set(STATUS_MAP) == statuses
    assert set(LP_ENTRY) == set(PairsStatus)
    assert {status for _, status, _ in STAGES} | set(BasisStatus) == statuses


@pytest.mark.parametrize("stage, status, clause", STAGES,
                         ids=[f"{s.__class__.__name__}-{s.name}" for _, s, _ in STAGES])
def test_each_stage_status_maps_to_its_public_clause(stage, status, clause):
    assert stage.status is status
    expected = "certified" if clause is None else f"uncertified: {clause}"
    assert public_status([stage]) == expected


def test_clauses_of_several_stages_are_joined_in_stage_order():
    stages = [_finite(reason="a"), _FeatureMap(None, 0.0), _MarginPart(None, np.inf, "b")]
    assert public_status(stages) == ("uncertified: finite component W~ (a); "
                                     "max-margin solution U~ not certified: b")


def test_farkas_bounds_above_the_resolution_leave_T_undecided_only_without_the_lp():
    above = np.array([0.0, 1e-3])
    for status in (PairsStatus.FULL_ROW_RANK, PairsStatus.FARKAS_BOUNDS):
        assert _SeparablePairs(T, status).with_farkas(above).status is PairsStatus.UNDECIDED
        assert _SeparablePairs(T, status).with_farkas(above / 1e3).status is status
    for status in (PairsStatus.LP_OPTIMAL, PairsStatus.VERIFIED_GUESS, PairsStatus.LP_FAILED):
        assert _SeparablePairs(T, status).with_farkas(above).status is status


def _statuses(limit):
    return {type(status): status for status in limit._stage_statuses}


def test_real_inputs_reach_their_stage_statuses():
    # H with full row rank: T = O without an LP, every stage certified.
    limit = implicit_bias_limit(*partially_separable(d=30, m=20))
    assert limit.certified and limit.status == "certified"
    # Nearly identical contexts that need different tokens: no curvature bound for W~.
    X, y = np.array([[1.0, 0.0], [1.0, 1e-9], [0.0, 1.0]]), [0, 1, 2]
    limit = implicit_bias_limit(X, y)
    assert _statuses(limit)[FiniteStatus] is FiniteStatus.NO_ERROR_BOUND
    assert not limit.certified
    assert limit.status.startswith("uncertified: finite component W~ (no curvature bound")
    # Not separable at all: T empty by the Farkas bounds, U~ not needed.
    limit = implicit_bias_limit(*non_separable())
    statuses = _statuses(limit)
    assert statuses[PairsStatus] is PairsStatus.FARKAS_BOUNDS
    assert statuses[MarginStatus] is MarginStatus.NOT_NEEDED
    assert statuses[BasisStatus] is BasisStatus.PIVOTED_QR
    assert limit.certificate["separable_pairs_lp"] == "not needed"


def _time_limited_lp():
    """A real HiGHS result with status 1 (no time to solve)."""
    return linprog([1.0, 1.0], A_ub=[[-1.0, -1.0]], b_ub=[-1.0], method="highs",
                   options={"time_limit": 0.0})


def test_a_failed_lp_is_its_own_status(monkeypatch):
    import sklearn_ntp._geometry._separable_pairs as module

    monkeypatch.setattr(module, "linprog", lambda *args, **kwargs: _time_limited_lp())
    H, P = partially_separable()  # one context twice another: the LP decides T
    limit = implicit_bias_limit(H, P)
    assert _statuses(limit)[PairsStatus] is PairsStatus.LP_FAILED
    assert limit.certificate["separable_pairs_lp"].startswith("failed: ")
    assert "separable pairs T (LP failed: " in limit.status and not limit.certified
    assert "iteration or time limit reached" in limit.status


def _count_products(monkeypatch):
    """Record which GramFactor forms ``H H^T`` or factors it (not the rescaled ones)."""
    calls = []
    for name in ("matrix", "cholesky"):
        compute = getattr(GramFactor, name).func

        def counted(self, compute=compute, name=name):
            calls.append((name, self))
            return compute(self)

        prop = cached_property(counted)
        prop.__set_name__(GramFactor, name)
        monkeypatch.setattr(GramFactor, name, prop)
    return calls


@pytest.mark.parametrize("independent", [True, False])
def test_the_gram_factor_is_computed_once_per_data_set(monkeypatch, independent):
    """A wide H: independent contexts (Q = I, W~ mapped back through the factor),
    or one context twice another (the pivoted QR decides the rank, and the
    NTP-SVM's Farkas LP decides it again, from the same factor)."""
    calls = _count_products(monkeypatch)
    H, P = partially_separable(m=40, d=60)
    if independent:
        H[1] = H[0] + 1.0
    data = aggregate_contexts(H, P)
    limit = implicit_bias_limit(data, svm_method="dual-cd")
    assert limit.certified and limit.max_margin_solution is not None, limit.status
    gram = limit.basis.gram
    assert limit.basis.status is (BasisStatus.INDEPENDENT_CONTEXTS if independent
                                  else BasisStatus.PIVOTED_QR)
    # One product and one factorization, both of the basis' factor: the map
    # back to the features, the NTP-SVM and its certificate reuse them.
    assert sorted(name for name, _ in calls) == ["cholesky", "matrix"]
    assert all(owner is gram for _, owner in calls)
    np.testing.assert_allclose(gram.matrix, data.embeddings @ data.embeddings.T)
    if independent:
        np.testing.assert_allclose(gram.cholesky @ gram.cholesky.T, gram.matrix,
                                   rtol=1e-12, atol=1e-12 * np.abs(gram.matrix).max())
    else:  # h_1 = 2 h_0: H H^T is singular
        assert gram.cholesky is None or gram.pivot_ratio < 1e-12


def test_a_rescaled_gram_factor_is_that_of_the_rescaled_embeddings():
    rng = np.random.default_rng(0)
    H = rng.standard_normal((5, 8))
    gram = GramFactor(H)
    gram.cholesky  # noqa: B018 (formed before rescaling, then divided)
    scaled = gram.rescaled(H / 4.0, 4.0)
    fresh = GramFactor(H / 4.0)
    np.testing.assert_allclose(scaled.matrix, fresh.matrix, rtol=1e-14)
    np.testing.assert_allclose(scaled.cholesky, fresh.cholesky, rtol=1e-12)
    assert scaled.belongs_to(scaled.H) and not scaled.belongs_to(H / 4.0)


@pytest.mark.parametrize("case, expected", [
    ("separable", DataSubspace),
    ("no separable pair", CenteredRowSpace),
    ("some separable pairs", DataSubspace),
])
def test_effective_subspace_is_a_public_decoder_subspace(case, expected):
    H, P = {"separable": lambda: partially_separable(d=30, m=20),
            "no separable pair": non_separable,
            "some separable pairs": partially_separable}[case]()
    if case == "separable":
        H[1] = H[0] + 1.0
    limit = implicit_bias_limit(H, P)
    G = limit.effective_subspace
    assert isinstance(G, DecoderSubspace) and type(G) is expected
    # The same subspace as the generators of the effective supports span.
    full = DataSubspace(_with_probabilities(limit.data, limit.effective_support))
    W = np.random.default_rng(0).standard_normal(limit.finite_component.shape)
    np.testing.assert_allclose(G.project(W), full.project(W), atol=1e-8 * np.linalg.norm(W))
    np.testing.assert_allclose(G.project_orthogonal(W) + G.project(W), W, atol=1e-12)
    assert G.coordinate_map(W)(W) == pytest.approx(G.coordinates(W))


def _with_probabilities(data, support):
    """Contexts of ``data`` with uniform probabilities on ``support`` (a reference
    built from the public aggregation, not from the limit's own helper)."""
    P = support / support.sum(axis=1, keepdims=True)
    return aggregate_contexts(data.embeddings, P)


def test_every_highs_status_reads_as_its_sentence():
    assert HIGHS_STATUS == {0: "optimal", 1: "iteration or time limit reached",
                            2: "reported infeasible", 3: "reported unbounded",
                            4: "numerical difficulties"}
    results = {
        0: linprog([1.0], bounds=[(0, 1)], method="highs"),
        1: _time_limited_lp(),
        2: linprog([1.0], A_ub=[[1.0]], b_ub=[-1.0], bounds=[(0, None)], method="highs"),
        3: linprog([-1.0], bounds=[(0, None)], method="highs"),
    }
    for status, result in results.items():
        assert result.status == status
        assert highs_message(result) == f"{HIGHS_STATUS[status]} ({result.message})"


def test_fit_takes_a_precomputed_limit_explicitly():
    X, y = np.eye(2), [0, 1]
    limit = implicit_bias_limit(X, y)
    clf = NTPLinearClassifier(max_iter=10).fit(X, y, implicit_bias_limit=limit)
    assert clf.finite_component_ is limit.finite_component
    fresh = NTPLinearClassifier(max_iter=10).fit(X, y)
    assert fresh.finite_component_ is not limit.finite_component
    np.testing.assert_allclose(fresh.finite_component_, limit.finite_component)
    with pytest.raises(ValueError, match="implicit_bias_limit"):
        NTPLinearClassifier(max_iter=10).fit(2 * X, y, implicit_bias_limit=limit)
