"""The general limit of gradient descent, against independent formulations.

Every quantity is recomputed here over the full V x d variable: the separable
pairs ``T`` by an explicit LP (scipy), ``U~`` by a cvxpy QP, ``W~`` and ``L*``
by scipy's BFGS over an explicit orthonormal basis of ``G`` (Kronecker rows),
and the behaviour of gradient descent by a plain numpy loop.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _cases import (
    CASES,
    forbid_the_lp,
    incompatible_separable,
    non_separable,
    partially_separable,
    partially_separable_low_rank,
)
from _reference import (
    assert_limit_equals,
    basis_of_G,
    ce,
    explicit_finite_part,
    explicit_limit,
    explicit_max_margin,
    explicit_separable_pairs,
)

from sklearn_ntp import NTPLinearClassifier, NTPSeparabilityWarning
from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import (
    SeparablePairsError,
    check_ntp_separability,
    implicit_bias_limit,
    log_odds_solution,
    ntp_svm,
)


# --------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", CASES)
def test_limit_matches_independent_formulations(name):
    H, P = CASES[name]()
    pi = np.full(H.shape[0], 1.0 / H.shape[0])
    limit = implicit_bias_limit(H, P)
    assert limit.status == "certified", limit.status
    # The library orders contexts like aggregate_contexts: reorder the test's data.
    order = np.lexsort(H.T[::-1])
    H, P = H[order], P[order]

    T = explicit_separable_pairs(H, P)
    np.testing.assert_array_equal(limit.separable_pairs, T)
    off = P == 0
    assert limit.is_separable == bool(np.array_equal(T, off))
    mask = (P > 0) | (off & ~T)
    np.testing.assert_array_equal(limit.effective_support, mask)

    W, value, B = explicit_finite_part(H, P, pi, mask)
    assert limit.loss_infimum == pytest.approx(value, abs=1e-9)
    np.testing.assert_allclose(limit.finite_component, W, atol=1e-5)
    # W~ lies in G.
    W_lib = limit.finite_component.ravel()
    np.testing.assert_allclose(B.T @ (B @ W_lib), W_lib, atol=1e-8)
    # The projection used for tracking is P_G.
    W_any = np.random.default_rng(0).standard_normal(W.shape)
    np.testing.assert_allclose(limit.effective_subspace.project(W_any),
                               (B.T @ (B @ W_any.ravel())).reshape(W.shape), atol=1e-8)

    if not T.any():
        assert limit.max_margin_solution is None and limit.margin is None
        # T empty: the loss attains L* at W~ itself.
        assert ce(limit.finite_component, H, P, pi) == pytest.approx(value, abs=1e-9)
        return
    U = explicit_max_margin(H, P, mask, T)
    np.testing.assert_allclose(limit.max_margin_solution, U, atol=1e-5 * np.abs(U).max())
    assert limit.margin == pytest.approx(1 / np.linalg.norm(U), rel=1e-6)
    # L* is the infimum of CE: approached along W~ + c U~ (and never beaten).
    far = ce(limit.finite_component + 40 * limit.margin_direction / limit.margin, H, P, pi)
    assert value - 1e-12 <= far < value + 1e-6


def test_incompatible_finite_part_is_not_least_squares():
    H, P = incompatible_separable()
    limit = implicit_bias_limit(H, P)
    assert limit.is_separable and not limit.is_compatible
    assert limit.loss_infimum > limit.entropy + 1e-3
    W_ls = log_odds_solution(H, P, allow_inexact=True)
    assert np.linalg.norm(limit.finite_component - W_ls) > 1e-2


def test_compatible_separable_data_reduce_to_the_paper():
    X, Y, w = make_ntp_data(random_state=0)
    limit = implicit_bias_limit(X, Y, w)
    assert limit.is_compatible and limit.is_separable and limit.certified
    assert limit.loss_infimum == pytest.approx(limit.entropy, abs=1e-8)
    np.testing.assert_allclose(limit.finite_component, log_odds_solution(X, Y, w), atol=1e-8)
    np.testing.assert_allclose(limit.max_margin_solution, ntp_svm(X, Y, w), atol=1e-8)


@pytest.mark.parametrize("name", CASES)
def test_limit_is_invariant_to_token_labels_and_duplicated_rows(name):
    H, P = CASES[name]()
    limit = implicit_bias_limit(H, P)
    perm = np.random.default_rng(1).permutation(P.shape[1])
    permuted = implicit_bias_limit(H, P[:, perm])
    np.testing.assert_array_equal(permuted.separable_pairs, limit.separable_pairs[:, perm])
    np.testing.assert_allclose(permuted.finite_component, limit.finite_component[perm],
                               atol=1e-7)
    assert permuted.loss_infimum == pytest.approx(limit.loss_infimum, abs=1e-10)
    # Every row twice, with half the weight each: the same distinct contexts.
    doubled = implicit_bias_limit(np.r_[H, H], np.r_[P, P])
    np.testing.assert_allclose(doubled.finite_component, limit.finite_component, atol=1e-7)
    assert doubled.loss_infimum == pytest.approx(limit.loss_infimum, abs=1e-10)
    for other in (permuted, doubled):
        if limit.max_margin_solution is None:
            assert other.max_margin_solution is None
    if limit.max_margin_solution is not None:
        np.testing.assert_allclose(permuted.max_margin_solution,
                                   limit.max_margin_solution[perm], atol=1e-7)
        np.testing.assert_allclose(doubled.max_margin_solution, limit.max_margin_solution,
                                   atol=1e-7)


@pytest.mark.slow
def test_long_gradient_descent_approaches_the_limit():
    H, P = partially_separable()
    order = np.lexsort(H.T[::-1])
    H, P = H[order], P[order]
    pi = np.full(H.shape[0], 1.0 / H.shape[0])
    limit = implicit_bias_limit(H, P)
    B = basis_of_G(H, limit.effective_support)
    W_t, U = limit.finite_component, limit.margin_direction
    W = np.zeros_like(W_t)
    target = (P * pi[:, None]).T @ H
    Hw = H * pi[:, None]
    for _ in range(100_000):
        Z = H @ W.T
        Z -= Z.max(axis=1, keepdims=True)
        np.exp(Z, out=Z)
        Z /= Z.sum(axis=1, keepdims=True)
        W -= 0.5 * (Z.T @ Hw - target)
    excess = ce(W, H, P, pi) - limit.loss_infimum
    P_G = (B.T @ (B @ W.ravel())).reshape(W.shape)
    D = W - W_t
    assert 0 < excess < 1e-4
    assert np.linalg.norm(P_G - W_t) < 3e-3
    assert np.vdot(D, U) / np.linalg.norm(D) > 0.985


def test_estimator_converges_by_tol_on_non_separable_data():
    H, P = non_separable()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NTPSeparabilityWarning)
        clf = NTPLinearClassifier(learning_rate=0.5, tol=1e-6, max_iter=50_000).fit(H, P)
    assert clf.stop_reason_ == "tol" and clf.converged_
    limit = implicit_bias_limit(H, P)
    assert clf.loss_infimum_ == limit.loss_infimum
    assert clf.loss_curve_[-1] - clf.loss_infimum_ <= 1e-6
    np.testing.assert_allclose(clf.finite_component_, limit.finite_component)
    assert clf.history_["subspace_error"][-1] < 1e-2


def test_estimator_tracks_the_general_limit():
    H, P = partially_separable()
    clf = NTPLinearClassifier(learning_rate=0.5, max_iter=2000, tol=0.0,
                              history_every=100).fit(H, P)
    limit = implicit_bias_limit(H, P)
    W = clf.coef_
    B = basis_of_G(limit.data.embeddings, limit.effective_support)
    P_G = (B.T @ (B @ W.ravel())).reshape(W.shape)
    h = clf.history_
    assert h["subspace_error"][-1] == pytest.approx(
        np.linalg.norm(P_G - limit.finite_component), rel=1e-6)
    D = W - limit.finite_component
    assert h["corrected_alignment"][-1] == pytest.approx(
        np.vdot(D, limit.margin_direction) / np.linalg.norm(D), rel=1e-9)
    assert clf.loss_infimum_ == pytest.approx(limit.loss_infimum)


def test_report_and_checker_carry_the_limit():
    H, P = partially_separable()
    report = check_ntp_separability(H, P)
    limit = report.limit
    assert report.loss_infimum == limit.loss_infimum > report.entropy
    assert report.n_separable_pairs == limit.separable_pairs.sum() < report.n_off_support_pairs
    np.testing.assert_array_equal(report.effective_support_sizes,
                                  limit.effective_support.sum(axis=1))
    assert report.finite_component is limit.finite_component
    assert report.margin == limit.margin
    text = str(report)
    assert "loss infimum L*" in text and "effective supports" in text
    assert f"{report.n_separable_pairs} of {report.n_off_support_pairs}" in text


def test_lp_failure_is_an_error_not_a_verdict(monkeypatch):
    import sklearn_ntp._geometry._separable_pairs as module

    def failing(*args, **kwargs):
        class Result:
            status, message, x = 4, "numerical difficulties", None
        return Result()

    monkeypatch.setattr(module, "linprog", failing)
    H, P = partially_separable()
    with pytest.raises(SeparablePairsError, match="numerical difficulties"):
        implicit_bias_limit(H, P, method="lp")
    # With the probe for T empty at hand, the failure becomes the status.
    limit = implicit_bias_limit(H, P)
    assert not limit.certified and "LP failed" in limit.status
    assert "numerical difficulties" in limit.status


def test_lp_path_agrees_with_the_full_rank_shortcut():
    X, Y, w = make_ntp_data(n_contexts=10, vocab_size=5, n_features=12, support_size=2,
                            n_sequences=100, random_state=0)
    auto, lp = implicit_bias_limit(X, Y, w), implicit_bias_limit(X, Y, w, method="lp")
    np.testing.assert_array_equal(auto.separable_pairs, lp.separable_pairs)
    assert auto.is_separable
    with pytest.raises(ValueError, match="method"):
        implicit_bias_limit(X, Y, w, method="simplex")
    # Without separable pairs the LP is skipped too: the minimizer of CE proves T empty.
    H, P = non_separable()
    auto, lp = implicit_bias_limit(H, P), implicit_bias_limit(H, P, method="lp")
    assert not auto.separable_pairs.any() and not lp.separable_pairs.any()
    np.testing.assert_allclose(auto.finite_component, lp.finite_component, atol=1e-9)


def test_inputs_are_not_modified():
    H, P = partially_separable()
    H0, P0 = H.copy(), sp.csr_matrix(P)
    data0 = P0.data.copy()
    implicit_bias_limit(H, P0)
    np.testing.assert_array_equal(H, H0)
    np.testing.assert_array_equal(P0.data, data0)


@pytest.mark.parametrize("case", [partially_separable, partially_separable_low_rank])
def test_separable_pairs_do_not_depend_on_the_scale_of_features(case):
    """An invertible change of features keeps every logit pattern, hence T (checked
    against the explicit LP on the unscaled data), even when the scales of the
    columns span twelve orders of magnitude."""
    H, P = case()
    scales = np.logspace(-6, 6, H.shape[1])
    limit = implicit_bias_limit(H * scales, P)
    order = np.lexsort(H.T[::-1])
    expected = explicit_separable_pairs(H[order], P[order])
    np.testing.assert_array_equal(limit.separable_pairs, expected)
    # The loss infimum is a property of the logit patterns too.
    assert limit.loss_infimum == pytest.approx(implicit_bias_limit(H, P).loss_infimum,
                                               rel=1e-7)


@pytest.mark.parametrize("case", [*CASES.values(), partially_separable_low_rank])
def test_separable_pairs_without_the_lp_are_certified_by_the_limit(case, monkeypatch):
    """With the LP too large, T is guessed from the Farkas bounds and certified
    by them and U~ alone: the same T, L*, W~ and U~ as the explicit formulations."""
    H, P = case()
    order = np.lexsort(H.T[::-1])
    T, loss_infimum, W, U = explicit_limit(H[order], P[order])
    forbid_the_lp(monkeypatch)
    limit = implicit_bias_limit(H, P)
    assert_limit_equals(limit, T, loss_infimum, W, U)
    assert limit.certificate["separable_pairs_lp"] in ("not needed", "verified guess")


def test_named_svm_paths_give_the_same_limit():
    H, P = partially_separable()
    auto = check_ntp_separability(H, P)
    for svm_method in ["cvxpy", "dual-cd"]:
        named = check_ntp_separability(H, P, svm_method=svm_method)
        np.testing.assert_array_equal(named.limit.separable_pairs, auto.limit.separable_pairs)
        np.testing.assert_allclose(named.max_margin_solution, auto.max_margin_solution,
                                   atol=1e-6 * np.abs(auto.max_margin_solution).max())
    lp = check_ntp_separability(H, P, method="lp")
    np.testing.assert_array_equal(lp.limit.separable_pairs, auto.limit.separable_pairs)
    with pytest.raises(ValueError, match="svm_method"):
        implicit_bias_limit(H, P, svm_method="simplex")


def test_verbose_reports_each_part_as_it_ends(capsys):
    H, P = partially_separable()
    limit = implicit_bias_limit(H, P, verbose=1)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("implicit_bias_limit:")]
    labels = ["orthonormal coordinates", "separable pairs T", "finite part W~",
              "max-margin solution U~"]
    assert [line.split(": ")[1].split(" in ")[0] for line in lines] == labels
    assert f"{int(limit.separable_pairs.sum())} of " in lines[1]
    assert set(limit.timings) == {"finite_component", "separable_pairs", "max_margin_solution"}
    implicit_bias_limit(H, P)
    assert capsys.readouterr().out == ""
