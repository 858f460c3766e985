"""NTPLinearClassifier against independent computations.

References: a plain-numpy gradient-descent loop, the explicit Kronecker
log-odds system (W*, P_F), a cvxpy NTP-SVM (W^mm), scikit-learn's
LogisticRegression on expanded (context, token) rows and the Crammer-Singer
LinearSVC.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _reference import (
    cross_entropy,
    kronecker_log_odds_solution,
    kronecker_projection,
    naive_ntp_svm,
    random_ntp_problem,
)
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_ntp import NTPLinearClassifier, NTPSeparabilityWarning


def cosine(A, B):
    return float(np.vdot(A, B) / (np.linalg.norm(A) * np.linalg.norm(B)))


def numpy_gd(H, P, pi, eta, n_iter, keep=()):
    """GD on CE from W = 0 with its own log-softmax; returns losses, W and saved iterates."""
    W = np.zeros((P.shape[1], H.shape[1]))
    losses, saved = [], {}
    for k in range(n_iter + 1):
        Z = H @ W.T
        log_q = Z - logsumexp(Z, axis=1, keepdims=True)
        losses.append(-np.sum(pi[:, None] * P * log_q))
        if k in keep:
            saved[k] = W
        if k < n_iter:
            W = W - eta * ((np.exp(log_q) - P) * pi[:, None]).T @ H
    return np.array(losses), W, saved


@pytest.fixture(scope="module")
def paper_problem():
    """App. A.2 construction: m=50 contexts, V=10, d=60 > m, S_j=6, with W*, W^mm."""
    rng = np.random.default_rng(0)
    H, P = random_ntp_problem(rng, 50, 10, 60, 6)
    pi = rng.dirichlet(5 * np.ones(50))
    W_mm, *_ = naive_ntp_svm(H, P)
    return H, P, pi, kronecker_log_odds_solution(H, P), W_mm


def fit_paper(paper_problem, **params):
    H, P, pi, *_ = paper_problem
    clf = NTPLinearClassifier(max_iter=10_000, tol=0.0, **params)
    return clf.fit(H, P, sample_weight=pi)


def at(history, name, k):
    return history[name][np.flatnonzero(history["iteration"] == k)[0]]


CHECKPOINTS = (100, 1000, 10_000)


@pytest.mark.slow
def test_gd_matches_a_numpy_loop_and_tracks_the_implicit_bias(paper_problem):
    H, P, pi, W_star, W_mm = paper_problem
    losses, W, saved = numpy_gd(H, P, pi, 0.5, 10_000, keep=CHECKPOINTS)
    clf = fit_paper(paper_problem, solver="gd", learning_rate=0.5)

    assert clf.n_iter_ == 10_000
    np.testing.assert_allclose(clf.loss_curve_, losses, rtol=0, atol=1e-9)
    np.testing.assert_allclose(clf.coef_, W, rtol=0, atol=1e-9)
    np.testing.assert_allclose(clf.finite_component_, W_star, atol=1e-8)
    np.testing.assert_allclose(clf.margin_direction_, W_mm / np.linalg.norm(W_mm), atol=1e-5)

    h = clf.history_
    assert len({len(v) for v in h.values()}) == 1
    assert h["iteration"][-1] == 10_000 and np.all(h["iteration"][:-1] % 10 == 0)
    for k in CHECKPOINTS:
        Wk = saved[k]
        assert at(h, "alignment", k) == pytest.approx(cosine(Wk, W_mm), abs=1e-6)
        assert at(h, "corrected_alignment", k) == pytest.approx(
            cosine(Wk - W_star, W_mm), abs=1e-6)
        assert at(h, "subspace_error", k) == pytest.approx(
            np.linalg.norm(kronecker_projection(H, P, Wk) - W_star), rel=1e-8)
        assert at(h, "loss", k) == pytest.approx(losses[k], rel=1e-12)
        assert at(h, "norm", k) == pytest.approx(np.linalg.norm(Wk), rel=1e-12)
    assert_implicit_bias_trends(h, clf.entropy_)


def assert_implicit_bias_trends(history, entropy, floor=0.0):
    """Theorem 2: CE -> H, ||W|| grows, alignments -> 1, P_F(W_k) -> W*.

    A constant-step method approaches ``W*`` only down to a distance set by its
    step, where its iterates wander with the machine's rounding: there the
    subspace error need only stay below ``floor``.
    """
    excess = [at(history, "loss", k) - entropy for k in CHECKPOINTS]
    norm = [at(history, "norm", k) for k in CHECKPOINTS]
    align = [at(history, "alignment", k) for k in CHECKPOINTS]
    corrected = [at(history, "corrected_alignment", k) for k in CHECKPOINTS]
    error = [at(history, "subspace_error", k) for k in CHECKPOINTS]
    assert excess[0] > excess[1] > excess[2] > 0
    assert norm[0] < norm[1] < norm[2]
    assert align[0] < align[1] < align[2] and align[2] > 0.9
    assert corrected[2] > 0.9
    assert error[0] > error[1] and error[2] < max(error[1], floor)


@pytest.mark.parametrize("params", [
    {"solver": "ngd", "learning_rate": 0.01},
    {"solver": "adam", "learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.99},
], ids=["ngd", "adam"])
@pytest.mark.slow
def test_ngd_and_adam_show_the_same_implicit_bias(paper_problem, params):
    H, P, pi, W_star, W_mm = paper_problem
    clf = fit_paper(paper_problem, **params)
    # From about 1000 steps on, Adam at this step wanders with ||P_F(W_k) - W*||
    # between 0.003 and 0.015, and the value at a given step depends on rounding
    # (at 1000 and 10,000 steps, either can be the larger): no order between them.
    assert_implicit_bias_trends(clf.history_, clf.entropy_, floor=0.03)
    # Faster than GD (paper App. A.2): closer to W^mm after the same budget.
    assert cosine(clf.coef_, W_mm) > 0.93
    assert clf.loss_curve_[-1] == pytest.approx(cross_entropy(clf.coef_, H, P, pi), rel=1e-12)


@pytest.mark.slow
def test_ridge_path_follows_theorem_1(paper_problem):
    H, P, pi, W_star, W_mm = paper_problem
    align, error = [], []
    for alpha in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]:
        clf = NTPLinearClassifier(solver="lbfgs", alpha=alpha, tol=1e-6, max_iter=5000,
                                  compute_implicit_bias=False)
        clf.fit(H, P, sample_weight=pi)
        align.append(cosine(clf.coef_, W_mm))
        error.append(np.linalg.norm(kronecker_projection(H, P, clf.coef_) - W_star))
    assert np.all(np.diff(align) > 0) and align[-1] > 0.95
    assert np.all(np.diff(error) < 0) and error[-1] < 0.1 * error[0]


def expanded_rows(H, P, pi):
    """One (context, token) row per nonzero p_jz, weighted pi_j p_jz."""
    j, z = np.nonzero(P)
    return H[j], z, pi[j] * P[j, z]


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_ridge_matches_logistic_regression_on_expanded_rows(solver):
    rng = np.random.default_rng(1)
    H, P = random_ntp_problem(rng, 30, 6, 8, 3)
    pi = rng.dirichlet(np.ones(30))
    alpha = 1e-2
    X, z, w = expanded_rows(H, P, pi)
    # sklearn minimizes sum_i w_i loss_i + ||W||^2 / (2C); here sum_i w_i = 1.
    lr = LogisticRegression(C=1 / alpha, fit_intercept=False, tol=1e-12, max_iter=10_000)
    lr.fit(X, z, sample_weight=w)
    # L-BFGS-B stalls near ||grad|| = 5e-8 at machine precision: ask for 1e-7.
    clf = NTPLinearClassifier(solver=solver, alpha=alpha, learning_rate=1.0,
                              tol=1e-7 if solver == "lbfgs" else 1e-9,
                              max_iter=100_000, compute_implicit_bias=False)
    clf.fit(H, sp.csr_matrix(P), sample_weight=pi)
    assert clf.converged_
    np.testing.assert_allclose(clf.coef_, lr.coef_, atol=1e-5)
    # The ridge minimizer is centered: the gradient rows of CE sum to zero.
    np.testing.assert_allclose(clf.coef_.sum(axis=0), 0, atol=1e-10)


def test_one_hot_ngd_direction_approaches_crammer_singer_svm():
    rng = np.random.default_rng(3)
    H = rng.standard_normal((20, 30))
    y = rng.integers(0, 5, size=20)
    svc = LinearSVC(multi_class="crammer_singer", fit_intercept=False, C=1e6,
                    max_iter=100_000, tol=1e-10).fit(H, y)
    cosines = [
        cosine(NTPLinearClassifier(solver="ngd", learning_rate=0.01, max_iter=n, tol=0,
                                   compute_implicit_bias=False).fit(H, y).coef_, svc.coef_)
        for n in CHECKPOINTS
    ]
    assert cosines[0] < cosines[1] < cosines[2] and cosines[2] > 0.99


@pytest.fixture
def small_problem():
    rng = np.random.default_rng(5)
    H, P = random_ntp_problem(rng, 6, 5, 8, 2)
    return H, P


def test_predictions_are_the_softmax_of_the_logits(small_problem):
    H, P = small_problem
    clf = NTPLinearClassifier(max_iter=50).fit(H, P)
    Z = H @ clf.coef_.T
    np.testing.assert_allclose(clf.decision_function(H), Z)
    log_q = Z - logsumexp(Z, axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_log_proba(H), log_q, atol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(H), np.exp(log_q), atol=1e-12)
    np.testing.assert_array_equal(clf.predict(H), np.argmax(Z, axis=1))
    np.testing.assert_array_equal(clf.classes_, np.arange(5))
    assert clf.n_features_in_ == 8


def test_score_is_the_mean_log_likelihood_of_hard_and_soft_targets(small_problem):
    H, P = small_problem
    clf = NTPLinearClassifier(max_iter=30).fit(H, P)
    w = np.arange(1.0, 7.0)
    log_q = clf.predict_log_proba(H)
    soft = np.sum(w[:, None] * P * log_q) / w.sum()
    assert clf.score(H, P, sample_weight=w) == pytest.approx(soft, rel=1e-12)
    labels = np.array([0, 4, 2, 2, 1, 3])
    hard = np.mean(log_q[np.arange(6), labels])
    assert clf.score(H, labels) == pytest.approx(hard, rel=1e-12)
    assert clf.score(H, P) <= -clf.entropy_


def test_string_labels_and_their_score():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]] * 2)
    y = np.array(["cat", "dog", "eel", "dog", "dog", "eel"])
    clf = NTPLinearClassifier(max_iter=20, compute_implicit_bias=False).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "eel"])
    assert set(clf.predict(X)) <= {"cat", "dog", "eel"}
    with pytest.raises(ValueError, match="not in classes"):
        clf.score(X, ["cat", "dog", "fox", "dog", "dog", "eel"])
    with pytest.raises(ValueError, match="columns"):
        clf.score(X, np.full((6, 4), 0.25))


def test_sample_weights_equal_repeated_rows_and_aggregated_soft_rows():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 3))
    y = rng.integers(0, 3, size=8)
    counts = np.array([1, 2, 3, 1, 1, 4, 2, 1])
    params = dict(max_iter=200, learning_rate=1.0, compute_implicit_bias=False)
    weighted = NTPLinearClassifier(**params).fit(X, y, sample_weight=counts)
    repeated = NTPLinearClassifier(**params).fit(np.repeat(X, counts, axis=0),
                                                 np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-12)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, atol=1e-12)

    # Raw pairs of one context == one soft row with the empirical distribution.
    X2, y2 = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]]), np.array([0, 0, 1, 2, 2])
    soft = np.array([[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]])
    raw = NTPLinearClassifier(**params).fit(X2, y2)
    agg = NTPLinearClassifier(**params).fit(np.eye(2), soft, sample_weight=[4, 1])
    np.testing.assert_allclose(raw.coef_, agg.coef_, atol=1e-12)


def test_compute_implicit_bias_false_keeps_a_short_history(small_problem):
    H, P = small_problem
    clf = NTPLinearClassifier(max_iter=25, history_every=7,
                              compute_implicit_bias=False).fit(H, P)
    assert set(clf.history_) == {"iteration", "loss", "norm"}
    np.testing.assert_array_equal(clf.history_["iteration"], [0, 7, 14, 21, 25])
    assert clf.finite_component_ is None and clf.margin_direction_ is None
    assert clf.loss_curve_.shape == (26,)
    np.testing.assert_allclose(clf.history_["loss"], clf.loss_curve_[[0, 7, 14, 21, 25]])


def test_alpha_zero_stops_at_the_excess_loss_tolerance(small_problem):
    H, P = small_problem
    clf = NTPLinearClassifier(learning_rate=0.5, tol=1e-2, max_iter=10_000).fit(H, P)
    excess = clf.loss_curve_ - clf.entropy_
    assert clf.converged_ and clf.stop_reason_ == "tol"
    assert excess[-1] <= 1e-2 < excess[-2]
    assert len(excess) == clf.n_iter_ + 1


def test_non_separable_data_are_described_without_warning():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    y = rng.integers(0, 3, size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NTPSeparabilityWarning)
        clf = NTPLinearClassifier(max_iter=20).fit(X, y)
    assert clf.margin_direction_ is None  # no separable pair: GD converges
    assert clf.loss_infimum_ > clf.entropy_
    assert np.all(np.isnan(clf.history_["alignment"]))
    assert np.all(np.isfinite(clf.history_["subspace_error"]))


def test_full_supports_have_no_margin_direction_and_converge():
    Y = np.array([[0.5, 0.5], [0.2, 0.8]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", NTPSeparabilityWarning)
        clf = NTPLinearClassifier(learning_rate=5.0, max_iter=3000).fit(np.eye(2), Y)
    assert clf.margin_direction_ is None
    assert clf.loss_infimum_ == pytest.approx(clf.entropy_, abs=1e-12)
    np.testing.assert_allclose(clf.predict_proba(np.eye(2)), Y, atol=1e-2)


def test_init_options_and_warm_start(small_problem):
    H, P = small_problem
    shape = (5, 8)
    lecun = NTPLinearClassifier(init="lecun", max_iter=0, random_state=0).fit(H, P)
    expected = np.random.RandomState(0).standard_normal(shape) / np.sqrt(8)
    np.testing.assert_allclose(lecun.coef_, expected)
    assert lecun.n_iter_ == 0 and lecun.loss_curve_.shape == (1,)

    W0 = np.arange(40.0).reshape(shape) / 100
    given = NTPLinearClassifier(init=W0, max_iter=0).fit(H, P)
    np.testing.assert_array_equal(given.coef_, W0)
    assert given.coef_ is not W0

    # Two warm-started halves = one run (GD has no state besides W).
    whole = NTPLinearClassifier(max_iter=40, tol=0).fit(H, P)
    half = NTPLinearClassifier(max_iter=20, tol=0, warm_start=True).fit(H, P)
    np.testing.assert_allclose(half.fit(H, P).coef_, whole.coef_, atol=1e-14)
    with pytest.raises(ValueError, match="warm_start"):
        half.fit(H[:, :4], P)
    with pytest.raises(ValueError, match="tokens of the previous fit"):
        half.fit(H, np.arange(6) % 5 + 10)


def test_float32_input_is_fitted_in_float32(small_problem):
    H, P = small_problem
    params = dict(solver="adam", learning_rate=0.05, max_iter=200, tol=0)
    f64 = NTPLinearClassifier(**params).fit(H, P)
    f32 = NTPLinearClassifier(**params).fit(H.astype(np.float32), P)
    assert f32.coef_.dtype == np.float32
    assert f32.predict_proba(H.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(f32.coef_, f64.coef_, rtol=1e-3, atol=1e-3)
    lbfgs = NTPLinearClassifier(solver="lbfgs", alpha=0.1, tol=1e-3)
    assert lbfgs.fit(H.astype(np.float32), P).coef_.dtype == np.float32


@pytest.mark.parametrize("alpha, learning_rate", [(0.0, 1e8), (1.0, 1e3)])
def test_too_large_learning_rate_stops_with_a_warning_and_finite_coef(
        small_problem, alpha, learning_rate):
    H, P = small_problem
    clf = NTPLinearClassifier(alpha=alpha, learning_rate=learning_rate, max_iter=500,
                              compute_implicit_bias=False)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        clf.fit(H, P)
    assert clf.stop_reason_ == "diverged" and not clf.converged_
    assert np.all(np.isfinite(clf.coef_)) and np.all(np.isfinite(clf.loss_curve_))
    assert clf.loss_curve_[-1] == pytest.approx(
        cross_entropy(clf.coef_, H, P, np.full(6, 1 / 6))
        + alpha / 2 * np.sum(clf.coef_ ** 2), rel=1e-10)


def test_huge_logits_stay_finite(small_problem):
    H, P = small_problem
    W0 = np.random.default_rng(0).standard_normal((5, 8))
    W0 *= 1e6 / np.abs(H @ W0.T).max()
    clf = NTPLinearClassifier(init=W0, solver="ngd", learning_rate=1e3, max_iter=100,
                              compute_implicit_bias=False).fit(H, P)
    assert np.all(np.isfinite(clf.coef_))
    assert clf.loss_curve_[0] == pytest.approx(cross_entropy(W0, H, P, np.full(6, 1 / 6)))
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    proba = clf.predict_proba(100 * H)
    assert np.all(np.isfinite(clf.predict_log_proba(100 * H)))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_alpha_positive_not_converged_warns(small_problem):
    H, P = small_problem
    for solver in ["gd", "lbfgs"]:
        with pytest.warns(ConvergenceWarning, match="did not converge"):
            NTPLinearClassifier(solver=solver, alpha=1e-3, max_iter=3, tol=1e-12).fit(H, P)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        NTPLinearClassifier(alpha=0.0, max_iter=3, compute_implicit_bias=False).fit(H, P)


def test_verbose_prints_progress(small_problem, capsys):
    H, P = small_problem
    NTPLinearClassifier(max_iter=100, verbose=1).fit(H, P)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11
    assert all("excess loss" in line and "||W||" in line and "alignment" in line
               for line in lines)
    assert lines[-1].split()[1:3] == ["100/100", "(100%)"]


def test_unfitted_and_mismatched_inputs(small_problem):
    H, P = small_problem
    clf = NTPLinearClassifier()
    for method in ["predict", "predict_proba", "predict_log_proba", "decision_function"]:
        with pytest.raises(NotFittedError):
            getattr(clf, method)(H)
    with pytest.raises(NotFittedError):
        clf.score(H, P)
    clf.set_params(max_iter=5).fit(H, P)
    with pytest.raises(ValueError, match="features"):
        clf.predict(H[:, :3])


@pytest.mark.parametrize("params", [
    {"learning_rate": 0.0}, {"learning_rate": -1.0}, {"solver": "newton"}, {"alpha": -1.0},
    {"batch_size": 0}, {"sampling": "pairs"}, {"step_schedule": "cosine"}, {"margin_step": 0.0},
    {"max_iter": -1}, {"tol": -1e-3}, {"init": "ones"}, {"history_every": 0},
    {"beta_1": 1.0}, {"epsilon": 0.0}, {"compute_implicit_bias": "yes"},
])
def test_invalid_parameters_raise(small_problem, params):
    H, P = small_problem
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=name):
        NTPLinearClassifier(**params).fit(H, P)


def test_bad_inputs_raise_clear_errors(small_problem):
    H, P = small_problem
    clf = NTPLinearClassifier(max_iter=5)
    with pytest.raises(ValueError, match="init"):
        NTPLinearClassifier(init=np.zeros((3, 3))).fit(H, P)
    with pytest.raises(ValueError, match="sum to 1"):
        clf.fit(H, 2 * P)
    negative = P.copy()
    negative[0] = [1.2, -0.2, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="nonnegative"):
        clf.fit(H, negative)
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(np.where(H > 1, np.nan, H), P)
    with pytest.raises(ValueError, match="rows"):
        clf.fit(H, P[:4])
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(H, np.linspace(0, 1, 6))
    with pytest.raises(ValueError, match="requires y"):
        clf.fit(H, None)
    with pytest.raises(ValueError, match="non-finite"):
        NTPLinearClassifier(init=np.full((5, 8), 1e308)).fit(H, P)


# ------------------------------------------------- extreme scales of X (exact invariance)

def gaussian_three_tokens():
    """20 contexts in 3-D with random labels: not separable, a finite minimizer."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 3)), rng.integers(0, 3, size=20)


@pytest.mark.parametrize("solver", ["gd", "lbfgs"])
@pytest.mark.parametrize("scale", [2.0 ** -997, 1e-300, 1e-155, 1e150])
def test_extreme_scales_fit_the_optimum_of_unit_scale(scale, solver):
    """CE(W; c X) = CE(c W; X): every scale of X has the optimum of scale 1, which
    scikit-learn's unpenalized LogisticRegression finds on X itself."""
    X, y = gaussian_three_tokens()
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no convergence warning
        clf = NTPLinearClassifier(solver=solver, fit_intercept=True, tol=1e-10,
                                  max_iter=20_000)
        clf.fit(scale * X, y)
    assert clf.converged_ and clf.n_iter_ > 0
    assert clf.margin_direction_ is None  # not separable: the minimizer is finite
    # The infimum is the minimum, whatever the scale: scikit-learn's loss there.
    minimum = -np.mean(reference.predict_log_proba(X)[np.arange(20), y])
    assert clf.loss_infimum_ == pytest.approx(minimum, rel=1e-9)
    np.testing.assert_allclose(clf.predict_proba(scale * X), reference.predict_proba(X),
                               atol=1e-4)
    np.testing.assert_array_equal(clf.predict(scale * X), reference.predict(X))
    np.testing.assert_allclose(clf.coef_ * scale, reference.coef_ - reference.coef_.mean(0),
                               atol=1e-3)


@pytest.mark.parametrize("solver", ["gd", "ngd", "adam", "sgd", "lbfgs", "accelerated"])
def test_a_power_of_two_scale_of_X_gives_exactly_the_fit_of_X(solver):
    """Scaled by 2^-997 (or 2^400), X gives the very iterates of X: coef_ scales exactly."""
    X, y = gaussian_three_tokens()
    params = {"solver": solver, "max_iter": 50, "random_state": 0, "batch_size": 4}
    unit = NTPLinearClassifier(**params).fit(X, y)
    for exponent in (-997, 400):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            scaled = NTPLinearClassifier(**params).fit(np.ldexp(X, exponent), y)
        np.testing.assert_array_equal(scaled.coef_, np.ldexp(unit.coef_, -exponent))
        np.testing.assert_array_equal(scaled.loss_curve_, unit.loss_curve_)
        assert scaled.loss_infimum_ == unit.loss_infimum_
        for key in ("alignment", "corrected_alignment"):
            np.testing.assert_array_equal(scaled.history_[key], unit.history_[key])
        np.testing.assert_array_equal(scaled.history_["norm"],
                                      np.ldexp(unit.history_["norm"], -exponent))


def test_a_given_step_on_tiny_X_is_gradient_descent_and_says_nothing_false():
    """The given step is plain GD on the given X: at scale 1e-300 it cannot move the
    logits, which stay zero; no message blames or suggests a step."""
    X, y = gaussian_three_tokens()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = NTPLinearClassifier(learning_rate=0.5, compute_implicit_bias=False,
                                  max_iter=20).fit(1e-300 * X, y)
    np.testing.assert_allclose(clf.predict_proba(1e-300 * X), 1 / 3, rtol=1e-12)
    assert clf.learning_rate_ == 0.5


def test_a_scale_whose_decoder_overflows_is_refused():
    X, y = gaussian_three_tokens()
    with pytest.raises(ValueError, match="X's column .* rescale X"):
        NTPLinearClassifier().fit(1e-306 * X, y)
    with pytest.raises(ValueError, match="X has entries up to .* rescale X"):
        NTPLinearClassifier().fit(1e300 * X, y)


# ------------------------------------------------------------ sample weights of any size

@pytest.mark.parametrize("weight", [1e308, 1e-320, 2.0 ** -1074])
def test_uniform_weights_of_any_size_give_the_fit_of_weights_one(weight):
    X, y = gaussian_three_tokens()
    ones = NTPLinearClassifier(fit_intercept=True).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = NTPLinearClassifier(fit_intercept=True).fit(X, y, np.full(20, weight))
    assert clf.n_iter_ == ones.n_iter_ > 0
    assert clf.loss_infimum_ == pytest.approx(ones.loss_infimum_, rel=1e-12)
    np.testing.assert_allclose(clf.coef_, ones.coef_, rtol=1e-10)
    assert clf.score(X, y, np.full(20, weight)) == pytest.approx(ones.score(X, y),
                                                                  rel=1e-12)


def test_weights_spanning_many_decades_fit_their_weighted_loss():
    X, y = gaussian_three_tokens()
    w = 10.0 ** np.random.default_rng(1).uniform(-150, 150, size=20)
    clf = NTPLinearClassifier(fit_intercept=True, compute_implicit_bias=False).fit(X, y, w)
    pi = w / w.sum()  # no overflow at these sizes: the reference normalizes directly
    A, P = np.c_[X, np.ones(20)], np.eye(3)[y]
    W = np.c_[clf.coef_, clf.intercept_]
    assert clf.loss_curve_[-1] == pytest.approx(cross_entropy(W, A, P, pi), rel=1e-12)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] - 0.5  # it learned the heavy rows
