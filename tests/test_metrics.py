"""Metrics against independent computations: log_loss, scipy's entropies, hand grouping."""

from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
from _reference import naive_ntp_svm, random_ntp_problem
from scipy.spatial.distance import cosine
from scipy.special import rel_entr, softmax, xlogy
from scipy.stats import entropy
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, make_scorer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from sklearn_ntp.implicit_bias import data_subspace, log_odds_solution, ntp_svm
from sklearn_ntp.metrics import (
    entropy_lower_bound,
    excess_ntp_loss,
    log_odds_error,
    margin_alignment,
    neg_excess_ntp_loss_scorer,
    neg_ntp_cross_entropy_scorer,
    neg_out_of_support_mass_scorer,
    ntp_cross_entropy,
    ntp_margin,
    out_of_support_mass,
)

PREDICTION_METRICS = [ntp_cross_entropy, excess_ntp_loss, out_of_support_mass, log_odds_error]
UNIFORM = [[0.5, 0.5]] * 2


def hand_grouped(X, Y, w):
    """Distinct rows of X with weight pi_j, distribution p_j and their row indices (pure Python)."""
    rows = defaultdict(list)
    for i, x in enumerate(map(tuple, X)):
        if w[i] > 0:
            rows[x].append(i)
    total = sum(w)
    groups = []
    for idx in rows.values():
        weight = sum(w[i] for i in idx)
        p = sum(w[i] * Y[i] for i in idx) / weight
        groups.append((weight / total, p, idx))
    return groups


def one_hot(labels, n_tokens):
    return np.eye(n_tokens)[labels]


@pytest.fixture
def repeated():
    """Hard labels of 5 contexts repeated 40 times, weights, and per-context predictions."""
    rng = np.random.default_rng(0)
    contexts = rng.standard_normal((5, 3))
    which = rng.integers(0, 5, size=40)
    X = contexts[which]
    y = rng.integers(0, 4, size=40)
    w = rng.uniform(0.5, 2.0, size=40)
    proba = softmax(rng.standard_normal((5, 4)), axis=1)[which]
    return X, y, w, proba


def random_soft(rng, n, n_tokens, support_size):
    Y = np.zeros((n, n_tokens))
    for row in Y:
        support = rng.choice(n_tokens, size=support_size, replace=False)
        row[support] = rng.dirichlet(np.ones(support_size))
    return Y


# ---------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_equals_log_loss_for_hard_labels(repeated, weighted):
    _, y, w, proba = repeated
    sw = w if weighted else None
    expected = log_loss(y, proba, sample_weight=sw)
    assert ntp_cross_entropy(y, proba, sample_weight=sw) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_with_string_labels_and_unseen_class():
    y = np.array(["b", "c", "b"])
    proba = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    labels = ["c", "a", "b"]  # sorted inside: columns are a, b, c
    expected = log_loss(y, proba, labels=sorted(labels))
    assert ntp_cross_entropy(y, proba, labels=labels) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_of_soft_targets_is_the_weighted_mean_row_loss():
    rng = np.random.default_rng(1)
    Y = random_soft(rng, 30, 6, 3)
    Q = softmax(rng.standard_normal((30, 6)), axis=1)
    w = rng.uniform(0, 1, 30)
    expected = np.average(-xlogy(Y, Q).sum(axis=1), weights=w)
    assert ntp_cross_entropy(Y, Q, sample_weight=w) == pytest.approx(expected, rel=1e-12)
    assert ntp_cross_entropy(sp.csr_matrix(Y), Q, sample_weight=w) == pytest.approx(
        expected, rel=1e-12)


def test_binary_positive_column_is_accepted_for_two_tokens():
    rng = np.random.default_rng(2)
    Y = random_soft(rng, 10, 2, 2)
    q = rng.uniform(0.05, 0.95, size=10)
    Q = np.column_stack([1 - q, q])
    expected = np.mean(-xlogy(Y, Q).sum(axis=1))
    assert ntp_cross_entropy(Y, q) == pytest.approx(expected, rel=1e-12)
    y = rng.integers(0, 2, size=10)
    assert ntp_cross_entropy(y, q) == pytest.approx(log_loss(y, q), rel=1e-12)
    X = rng.integers(0, 3, size=(10, 1))
    for metric in PREDICTION_METRICS[1:]:
        assert metric(y, q, X=X) == pytest.approx(metric(y, Q, X=X), abs=1e-15)


def test_zero_probability_on_a_target_token_is_clipped_like_log_loss():
    y = [0, 1]
    proba = np.array([[1.0, 0.0], [1.0, 0.0]])
    value = ntp_cross_entropy(y, proba)
    assert np.isfinite(value)
    assert value == pytest.approx(log_loss(y, proba), rel=1e-9)
    assert value == pytest.approx(-np.log(np.finfo(np.float64).eps) / 2, rel=1e-9)
    proba32 = proba.astype(np.float32)
    assert ntp_cross_entropy(y, proba32) == pytest.approx(log_loss(y, proba32), rel=1e-6)


# ------------------------------------------------------- entropy and excess loss


def test_entropy_and_excess_against_hand_grouping(repeated):
    X, y, w, proba = repeated
    Y = one_hot(y, 4)
    groups = hand_grouped(X, Y, w)
    H = sum(pi * entropy(p) for pi, p, _ in groups)
    kl = sum(pi * rel_entr(p, proba[idx[0]]).sum() for pi, p, idx in groups)
    assert entropy_lower_bound(y, X=X, sample_weight=w) == pytest.approx(H, rel=1e-12)
    assert excess_ntp_loss(y, proba, X=X, sample_weight=w) == pytest.approx(kl, rel=1e-10)
    ce = ntp_cross_entropy(y, proba, sample_weight=w)
    assert ce >= H
    assert ce - H == pytest.approx(kl, rel=1e-10)


@pytest.mark.parametrize("sparse", [False, True])
def test_entropy_of_soft_targets_against_hand_grouping(sparse):
    rng = np.random.default_rng(20)
    which = rng.integers(0, 6, size=30)
    X = rng.standard_normal((6, 2))[which]
    Y = random_soft(rng, 30, 5, 2)  # rows of one context differ: merging widens supports
    w = rng.uniform(0, 2, size=30)
    y_true = sp.csr_matrix(Y) if sparse else Y
    H = sum(pi * entropy(p) for pi, p, _ in hand_grouped(X, Y, w))
    assert entropy_lower_bound(y_true, X=X, sample_weight=w) == pytest.approx(H, rel=1e-12)
    # Without X, each row is a context of weight w_i / sum(w).
    rows = np.average(entropy(Y, axis=1), weights=w)
    assert entropy_lower_bound(y_true, sample_weight=w) == pytest.approx(rows, rel=1e-12)


def test_entropy_of_string_labels_and_unit_weights():
    X = np.array([[0.0], [0.0], [0.0], [1.0], [1.0]])
    y = np.array(["if", "x", "x", "(", "x"])
    # Context 0: p = (1/3, 2/3) with weight 3/5; context 1: (1/2, 1/2) with 2/5.
    H = 0.6 * entropy([1, 2]) + 0.4 * entropy([1, 1])
    assert entropy_lower_bound(y, X=X) == pytest.approx(H, rel=1e-12)
    assert entropy_lower_bound(list(y)) == 0.0  # one token per row


@pytest.mark.parametrize("kind", ["hard", "soft", "sparse"])
@pytest.mark.parametrize("grouped", [False, True])
def test_excess_is_cross_entropy_minus_entropy_bound(kind, grouped):
    rng = np.random.default_rng(21)
    which = rng.integers(0, 8, size=50)
    X = rng.standard_normal((8, 3))[which]
    proba = softmax(rng.standard_normal((8, 4)), axis=1)[which]  # a model of X
    y = {"hard": rng.integers(0, 4, size=50),
         "soft": random_soft(rng, 50, 4, 3),
         "sparse": sp.csr_matrix(random_soft(rng, 50, 4, 2))}[kind]
    w = rng.uniform(0.1, 2.0, size=50)
    contexts = X if grouped else None
    H = entropy_lower_bound(y, X=contexts, sample_weight=w)
    ce = ntp_cross_entropy(y, proba, sample_weight=w)
    excess = excess_ntp_loss(y, proba, X=contexts, sample_weight=w)
    assert 0 <= H <= ce
    assert excess == pytest.approx(ce - H, rel=1e-10, abs=1e-13)


def test_without_X_every_row_is_its_own_context(repeated):
    _, y, w, proba = repeated
    # Hard labels row by row: zero entropy, so the excess is the whole cross-entropy.
    expected = ntp_cross_entropy(y, proba, sample_weight=w)
    assert excess_ntp_loss(y, proba, sample_weight=w) == pytest.approx(expected, rel=1e-12)


def test_predictions_are_averaged_within_a_context():
    X = np.array([[0.0], [0.0], [1.0]])
    Y = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    Q = np.array([[0.6, 0.2, 0.2], [0.2, 0.4, 0.4], [0.1, 0.1, 0.8]])
    w = np.array([1.0, 3.0, 2.0])
    q0 = (Q[0] + 3 * Q[1]) / 4
    expected = (4 * rel_entr(Y[0], q0).sum() + 2 * rel_entr(Y[2], Q[2]).sum()) / 6
    assert excess_ntp_loss(Y, Q, X=X, sample_weight=w) == pytest.approx(expected, rel=1e-12)
    assert out_of_support_mass(Y, Q, X=X, sample_weight=w) == pytest.approx(
        (4 * q0[2] + 2 * 0.2) / 6, rel=1e-12)


@pytest.mark.parametrize("metric", PREDICTION_METRICS[1:])
def test_integer_weights_equal_repeated_rows(repeated, metric):
    X, y, _, proba = repeated
    counts = np.arange(40) % 3  # includes zero weights
    repeat = np.repeat(np.arange(40), counts)
    weighted = metric(y, proba, X=X, sample_weight=counts)
    assert weighted == pytest.approx(metric(y[repeat], proba[repeat], X=X[repeat]), rel=1e-10)


def test_excess_is_a_nonnegative_weighted_kl_on_soft_targets():
    rng = np.random.default_rng(3)
    Y = random_soft(rng, 25, 7, 4)
    Q = softmax(3 * rng.standard_normal((25, 7)), axis=1)
    w = rng.uniform(0, 2, 25)
    expected = np.average(entropy(Y, Q, axis=1), weights=w)
    excess = excess_ntp_loss(sp.csr_matrix(Y), Q, sample_weight=w)
    assert excess > 0
    assert excess == pytest.approx(expected, rel=1e-10)
    assert excess_ntp_loss(Y, Y) == pytest.approx(0.0, abs=1e-15)


# ---------------------------------------------------------- out-of-support mass


def test_out_of_support_mass_against_hand_grouping(repeated):
    X, y, w, proba = repeated
    groups = hand_grouped(X, one_hot(y, 4), w)
    expected = sum(pi * proba[idx[0]][p == 0].sum() for pi, p, idx in groups)
    assert out_of_support_mass(y, proba, X=X, sample_weight=w) == pytest.approx(
        expected, rel=1e-12)
    # Without X each hard label is its own support: mass outside = 1 - q_{y_i}.
    expected_rows = np.average(1 - proba[np.arange(40), y], weights=w)
    assert out_of_support_mass(y, proba, sample_weight=w) == pytest.approx(
        expected_rows, rel=1e-12)


# --------------------------------------------------------------- log-odds error


def brute_force_log_odds_error(P, Q):
    worst = 0.0
    for p, q in zip(P, Q):
        S = np.flatnonzero(p > 0)
        for z in S:
            for zp in S:
                gap = np.log(q[z] / q[zp]) - np.log(p[z] / p[zp])
                worst = max(worst, abs(gap))
    return worst


def test_log_odds_error_against_brute_force():
    rng = np.random.default_rng(4)
    P = random_soft(rng, 20, 6, 3)
    Q = softmax(rng.standard_normal((20, 6)), axis=1)
    assert log_odds_error(P, Q) == pytest.approx(brute_force_log_odds_error(P, Q), rel=1e-12)


def test_predictions_of_the_finite_component_have_exact_log_odds():
    # Theorem 2: W* + any multiple of W^mm reproduces p on the supports.
    H, P = random_ntp_problem(np.random.default_rng(5), 8, 6, 12, 3)
    W_star, W_mm = log_odds_solution(H, P), ntp_svm(H, P)
    errors, excess, outside = [], [], []
    for scale in (0.0, 5.0, 20.0):
        Q = softmax(H @ (W_star + scale * W_mm).T, axis=1)
        errors.append(log_odds_error(P, Q, X=H))
        excess.append(excess_ntp_loss(P, Q, X=H))
        outside.append(out_of_support_mass(P, Q, X=H))
    np.testing.assert_allclose(errors, 0.0, atol=1e-8)
    assert excess[0] > excess[1] > excess[2] > 0
    assert outside[0] > outside[1] > outside[2] > 0
    assert log_odds_error(P, softmax(H @ W_mm.T, axis=1)) > 0.1


# ------------------------------------------------------------------- NTP margin


def brute_force_margin(W, H, P):
    gaps = [(W[z] - W[v]) @ h
            for h, p in zip(H, P)
            for z in np.flatnonzero(p > 0) for v in np.flatnonzero(p == 0)]
    return min(gaps) if gaps else np.inf


def test_margin_on_a_hand_made_example():
    X = np.eye(2)
    Y = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    W = np.array([[3.0, 0.0], [1.0, 0.0], [0.0, 2.5]])
    # context 1: min(3, 1) - 0 = 1; context 2: 2.5 - max(0, 0) = 2.5
    assert ntp_margin(W, X, Y) == 1.0
    assert ntp_margin(-W, X, Y) == -3.0


def test_margin_against_brute_force_and_scaling():
    H, P = random_ntp_problem(np.random.default_rng(6), 7, 5, 4, 2)
    W = np.random.default_rng(7).standard_normal((5, 4))
    assert ntp_margin(W, H, P) == pytest.approx(brute_force_margin(W, H, P), rel=1e-12)
    assert ntp_margin(3 * W, H, P) == pytest.approx(3 * ntp_margin(W, H, P), rel=1e-12)


def test_max_margin_solution_has_unit_margin_and_is_optimal():
    H, P = random_ntp_problem(np.random.default_rng(8), 6, 5, 8, 2)
    W_naive = naive_ntp_svm(H, P)[0]
    assert ntp_margin(W_naive, H, P) == pytest.approx(1.0, abs=1e-6)
    W_mm = ntp_svm(H, P)
    best = 1 / np.linalg.norm(W_mm)
    assert ntp_margin(W_mm / np.linalg.norm(W_mm), H, P) == pytest.approx(best, rel=1e-8)
    # No unit-norm matrix in F-perp does better.
    F = data_subspace(H, P)
    rng = np.random.default_rng(9)
    for _ in range(50):
        D = F.project_orthogonal(W_mm + 0.3 * rng.standard_normal(W_mm.shape))
        assert ntp_margin(D / np.linalg.norm(D), H, P) <= best + 1e-10


def test_margin_is_infinite_without_out_of_support_tokens():
    X = np.eye(2)
    Y = np.array([[0.5, 0.5], [0.25, 0.75]])
    assert ntp_margin(np.ones((2, 2)), X, Y) == np.inf


def test_margin_ignores_contexts_of_zero_weight():
    X = np.eye(2)
    y = [0, 1]
    W = np.array([[1.0, 1.0], [0.0, 0.0]])  # context 2 (label 1) has margin -1
    assert ntp_margin(W, X, y) == -1.0
    assert ntp_margin(W, X, y, sample_weight=[1.0, 0.0]) == 1.0


# ------------------------------------------------------------- margin alignment


def test_alignment_is_the_frobenius_cosine():
    rng = np.random.default_rng(10)
    W, R = rng.standard_normal((2, 5, 3))
    expected = 1 - cosine(W.ravel(), R.ravel())
    assert margin_alignment(W, R) == pytest.approx(expected, rel=1e-12)
    assert margin_alignment(R, W) == pytest.approx(expected, rel=1e-12)
    assert margin_alignment(7 * W, 0.1 * R) == pytest.approx(expected, rel=1e-12)
    assert margin_alignment(W, W) == 1.0
    assert margin_alignment(W, -W) == -1.0


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "y_prob, match",
    [
        ([[0.5, 0.6], [0.5, 0.5]], "sum to 1"),
        ([[1.5, -0.5], [0.5, 0.5]], r"\[0, 1\]"),
        ([[np.nan, 0.5], [0.5, 0.5]], "NaN"),
        ([[1.0], [1.0]], "at least two columns"),
        ([[[0.5, 0.5]], [[0.5, 0.5]]], "y_prob must be 1-D or 2-D"),
        ([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], "y_true has 2 rows but y_prob has 3"),
        ([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]], "y_true has 2 distinct tokens"),
        ([0.2, 0.3, 0.5], "y_true has 2 rows but y_prob has 3"),
    ],
)
@pytest.mark.parametrize("metric", PREDICTION_METRICS)
def test_bad_predictions_raise(metric, y_prob, match):
    with pytest.raises(ValueError, match=match):
        metric([0, 1], y_prob)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"y_true": [0, 0], "y_prob": UNIFORM}, "y_true has 1 distinct tokens"),
        ({"y_true": 0, "y_prob": [[0.5, 0.5]]}, "y_true.* must be an array-like"),
        ({"y_true": [0, 1], "y_prob": [0.5, 0.5], "labels": [0, 1, 2]}, "labels has 3"),
        ({"y_true": [0, 3], "y_prob": UNIFORM, "labels": [0, 1]}, "Invalid y_true.*not in"),
        ({"y_true": [[0.5, 0.5, 0.0]] * 2, "y_prob": UNIFORM}, "Invalid y_true.*columns"),
        ({"y_true": [[0.5, 0.6]] * 2, "y_prob": UNIFORM}, "Invalid y_true.*sum to 1"),
        ({"y_true": [[1.5, -0.5]] * 2, "y_prob": UNIFORM}, "Invalid y_true.*nonnegative"),
        ({"y_true": [0, 1], "y_prob": UNIFORM, "sample_weight": [1.0]}, "sample_weight"),
        ({"y_true": [0, 1], "y_prob": UNIFORM, "sample_weight": [-1, 1]}, "sample_weight"),
        ({"y_true": [0, 1], "y_prob": UNIFORM, "sample_weight": [0, 0]}, "sample_weight"),
    ],
)
@pytest.mark.parametrize("metric", PREDICTION_METRICS)
def test_bad_targets_labels_and_weights_raise(metric, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metric(**kwargs)


@pytest.mark.parametrize("metric", PREDICTION_METRICS[1:])
@pytest.mark.parametrize("X, match", [(np.zeros((3, 1)), "X has 3 rows but y_true has 2"),
                                      ([[np.inf], [0.0]], "X")])
def test_bad_contexts_raise(metric, X, match):
    with pytest.raises(ValueError, match=match):
        metric([0, 1], UNIFORM, X=X)


@pytest.mark.parametrize("kwargs, match", [
    ({"y_true": 0}, "y_true.* must be an array-like"),
    ({"y_true": [0]}, "Invalid y_true.*two tokens"),
    ({"y_true": [[0.5, 0.6]] * 2}, "Invalid y_true.*sum to 1"),
    ({"y_true": [[1.5, -0.5]] * 2}, "Invalid y_true.*nonnegative"),
    ({"y_true": [0, 1], "X": np.zeros((3, 1))}, "X has 3 rows but y_true has 2"),
    ({"y_true": [0, 1], "X": [[np.inf], [0.0]]}, "X"),
    ({"y_true": [0, 1], "sample_weight": [1.0]}, "sample_weight"),
    ({"y_true": [0, 1], "sample_weight": [0, 0]}, "sample_weight"),
])
def test_entropy_bound_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        entropy_lower_bound(**kwargs)


def test_entropy_bound_takes_X_by_keyword_only():
    # Unlike sklearn_ntp.implicit_bias.entropy_lower_bound(X, y, sample_weight).
    with pytest.raises(TypeError):
        entropy_lower_bound(np.eye(2), [0, 1])


@pytest.mark.parametrize("W, match", [(np.zeros((2, 2)), r"W must have shape \(3, 2\)"),
                                      (np.full((3, 2), np.nan), "W contains NaN"),
                                      (np.zeros(6), "W must be a 2-D")])
def test_margin_rejects_bad_decoders(W, match):
    with pytest.raises(ValueError, match=match):
        ntp_margin(W, np.eye(2), [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize(
    "W, W_ref, match",
    [(np.ones((2, 3)), np.ones((3, 2)), "shape"),
     (np.zeros((2, 2)), np.ones((2, 2)), "W is the zero matrix"),
     (np.ones((2, 2)), np.zeros((2, 2)), "W_ref is the zero matrix"),
     (np.ones((2, 2)), np.full((2, 2), np.inf), "W_ref contains infinity"),
     (np.ones(4), np.ones(4), "W must be a 2-D")],
)
def test_alignment_rejects_bad_matrices(W, W_ref, match):
    with pytest.raises(ValueError, match=match):
        margin_alignment(W, W_ref)


# ---------------------------------------------------------------------- scorers


class SmoothedMean(ClassifierMixin, BaseEstimator):
    """Predicts the weighted mean target row everywhere, mixed with the uniform law."""

    def __init__(self, smoothing=0.0):
        self.smoothing = smoothing

    def fit(self, X, y, sample_weight=None):
        Y = np.asarray(y, dtype=float)
        self.classes_ = np.arange(Y.shape[1])
        mean = np.average(Y, axis=0, weights=sample_weight)
        self.proba_ = (1 - self.smoothing) * mean + self.smoothing / Y.shape[1]
        return self

    def predict_proba(self, X):
        return np.tile(self.proba_, (len(X), 1))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def soft_problem(n_tokens, seed=11):
    """20 distinct contexts repeated 3 times each, with soft targets."""
    rng = np.random.default_rng(seed)
    X = np.repeat(rng.standard_normal((20, 2)), 3, axis=0)
    Y = np.repeat(random_soft(rng, 20, n_tokens, min(2, n_tokens)), 3, axis=0)
    return X, Y


def by_hand_cv_scores(make_model, X, Y, w=None):
    """Per-fold (-CE, -excess, -outside mass) by hand grouping, for KFold(3, shuffle)."""
    w = np.ones(len(X)) if w is None else w
    scores = []
    for train, test in KFold(3, shuffle=True, random_state=0).split(X):
        Q = make_model().fit(X[train], Y[train]).predict_proba(X[test])
        groups = hand_grouped(X[test], Y[test], w[test])
        ce = np.average(-xlogy(Y[test], Q).sum(axis=1), weights=w[test])
        kl = sum(pi * rel_entr(p, Q[idx[0]]).sum() for pi, p, idx in groups)
        outside = sum(pi * Q[idx[0]][p == 0].sum() for pi, p, idx in groups)
        scores.append((-ce, -kl, -outside))
    return np.array(scores)


SCORERS = [neg_ntp_cross_entropy_scorer, neg_excess_ntp_loss_scorer,
           neg_out_of_support_mass_scorer]
CV = KFold(3, shuffle=True, random_state=0)


@pytest.mark.parametrize("n_tokens", [2, 5])
def test_scorers_in_cross_val_score_with_soft_targets(n_tokens):
    X, Y = soft_problem(n_tokens)
    expected = by_hand_cv_scores(lambda: SmoothedMean(0.2), X, Y)
    for k, scorer in enumerate(SCORERS):
        scores = cross_val_score(SmoothedMean(0.2), X, Y, scoring=scorer, cv=CV)
        np.testing.assert_allclose(scores, expected[:, k], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("n_tokens", [2, 4])
def test_scorers_select_the_best_smoothing_in_grid_search(n_tokens):
    X, Y = soft_problem(n_tokens, seed=12)
    grid = [0.0, 0.3, 0.9]
    search = GridSearchCV(SmoothedMean(), {"smoothing": grid}, cv=CV,
                          scoring={"ce": neg_ntp_cross_entropy_scorer,
                                   "excess": neg_excess_ntp_loss_scorer},
                          refit="excess").fit(X, Y)
    by_hand = np.array([by_hand_cv_scores(lambda s=s: SmoothedMean(s), X, Y).mean(axis=0)
                        for s in grid])
    np.testing.assert_allclose(search.cv_results_["mean_test_ce"], by_hand[:, 0], rtol=1e-10)
    np.testing.assert_allclose(search.cv_results_["mean_test_excess"], by_hand[:, 1],
                               rtol=1e-10)
    assert search.best_params_ == {"smoothing": grid[int(np.argmax(by_hand[:, 1]))]}


@pytest.mark.parametrize("n_classes", [2, 3])
def test_scorers_with_logistic_regression_on_hard_labels(n_classes):
    rng = np.random.default_rng(13)
    X = np.repeat(rng.standard_normal((15, 2)), 4, axis=0)
    y = rng.integers(0, n_classes, size=60)
    clf = LogisticRegression().fit(X, y)
    proba = clf.predict_proba(X)
    assert neg_ntp_cross_entropy_scorer(clf, X, y) == pytest.approx(
        -log_loss(y, proba), rel=1e-12)
    groups = hand_grouped(X, one_hot(y, n_classes), np.ones(60))
    kl = sum(pi * rel_entr(p, proba[idx[0]]).sum() for pi, p, idx in groups)
    assert neg_excess_ntp_loss_scorer(clf, X, y) == pytest.approx(-kl, rel=1e-10)
    scores = cross_val_score(LogisticRegression(), X, y, cv=CV,
                             scoring=neg_excess_ntp_loss_scorer)
    assert scores.shape == (3,) and np.all(scores < 0)


def test_metric_works_in_make_scorer_for_binary_classifiers():
    # make_scorer hands a binary classifier's scorer the positive column only.
    rng = np.random.default_rng(14)
    X, y = rng.standard_normal((40, 2)), rng.choice(["no", "yes"], size=40)
    clf = LogisticRegression().fit(X, y)
    scorer = make_scorer(ntp_cross_entropy, greater_is_better=False,
                         response_method="predict_proba")
    assert scorer(clf, X, y) == pytest.approx(-log_loss(y, clf.predict_proba(X)), rel=1e-12)
    Y = random_soft(rng, 40, 2, 2)
    soft = SmoothedMean(0.1).fit(X, Y)
    assert scorer(soft, X, Y) == pytest.approx(neg_ntp_cross_entropy_scorer(soft, X, Y),
                                               rel=1e-12)


def test_scorers_receive_sample_weight_through_metadata_routing():
    rng = np.random.default_rng(15)
    X = np.repeat(rng.standard_normal((12, 2)), 3, axis=0)
    y = rng.integers(0, 3, size=36)
    w = rng.uniform(0.1, 3.0, size=36)
    with config_context(enable_metadata_routing=True):
        scores = cross_val_score(
            LogisticRegression().set_fit_request(sample_weight=False), X, y, cv=CV,
            scoring=neg_excess_ntp_loss_scorer.set_score_request(sample_weight=True),
            params={"sample_weight": w})
    expected = []
    for train, test in CV.split(X):
        Q = LogisticRegression().fit(X[train], y[train]).predict_proba(X[test])
        groups = hand_grouped(X[test], one_hot(y[test], 3), w[test])
        expected.append(-sum(pi * rel_entr(p, Q[idx[0]]).sum() for pi, p, idx in groups))
    np.testing.assert_allclose(scores, expected, rtol=1e-10)


def test_set_score_request_leaves_the_ready_made_scorer_unchanged():
    requesting = neg_out_of_support_mass_scorer.set_score_request(sample_weight=True)
    assert requesting is not neg_out_of_support_mass_scorer
    with config_context(enable_metadata_routing=True):
        assert requesting.get_metadata_routing().score.requests == {"sample_weight": True}
        assert neg_out_of_support_mass_scorer.get_metadata_routing().score.requests == {
            "sample_weight": None}


def test_scorer_reprs():
    assert [repr(s) for s in SCORERS] == [
        "neg_ntp_cross_entropy_scorer", "neg_excess_ntp_loss_scorer",
        "neg_out_of_support_mass_scorer"]


@pytest.mark.slow
def test_grid_search_over_the_learning_rate_of_the_ntp_classifier():
    from sklearn_ntp import NTPLinearClassifier

    X, Y = soft_problem(4, seed=16)
    rates = [0.05, 1.0]

    def model(rate):
        return NTPLinearClassifier(learning_rate=rate, max_iter=50,
                                   compute_implicit_bias=False)

    search = GridSearchCV(model(0.5), {"learning_rate": rates}, cv=CV, n_jobs=2,
                          scoring=neg_excess_ntp_loss_scorer).fit(X, Y)
    by_hand = [by_hand_cv_scores(lambda r=r: model(r), X, Y)[:, 1].mean() for r in rates]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], by_hand, rtol=1e-8)
    assert search.best_params_ == {"learning_rate": 1.0}


# ---------------------------------------------------------------- scale invariance


@pytest.mark.parametrize("scale", [1e200, 1e-170, 1e300, 1e-300, 2.0**-1074 * 2**60])
def test_margin_alignment_is_invariant_to_any_positive_scale(scale):
    rng = np.random.default_rng(0)
    W, W_ref = rng.standard_normal((2, 4, 3))
    expected = 1.0 - cosine(W.ravel(), W_ref.ravel())  # scipy, at unit scale
    assert margin_alignment(W * scale, W_ref) == pytest.approx(expected, rel=1e-12)
    assert margin_alignment(W, W_ref * scale) == pytest.approx(expected, rel=1e-12)
    assert margin_alignment(W * scale, W * scale) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("w_scale, h_scale", [(1e300, 1.0), (1e300, 10.0), (1e150, 1e150),
                                              (1e-300, 1e-10), (1e-150, 1e150)])
def test_ntp_margin_is_exact_at_extreme_scales(w_scale, h_scale):
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    Y = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    W = np.array([[1.0, -1.0], [2.0, -0.5], [-1.0, 1.0]])
    # By hand at unit scale: context 0 worst in-support logit over token 2's;
    # context 1, token 2 over the best of tokens 0 and 1.
    logits = X @ W.T
    unit = min(logits[0, :2].min() - logits[0, 2], logits[1, 2] - logits[1, :2].max())
    margin = ntp_margin(W * w_scale, X * h_scale, Y)
    assert np.isfinite(margin)
    assert margin == pytest.approx(unit * w_scale * h_scale, rel=1e-12)


def test_ntp_margin_that_overflows_float64_is_an_error():
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    W = np.array([[1e308, 0.0], [-1e308, 0.0]])  # margin 2e308 > float64 max
    with pytest.raises(ValueError, match="margin of W overflows"):
        ntp_margin(W, X, Y)


def test_ntp_margin_with_overflowing_logits_is_the_exact_gap():
    from fractions import Fraction

    X, Y = np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]])
    W = np.array([[1e308, 1e308], [1e308, 9e307]])  # both logits beyond float64
    exact = sum(map(Fraction, W[0])) - sum(map(Fraction, W[1]))  # 1e307, by hand
    # Rounding of logits of 2e308 allows an error of a few eps * 2e308.
    assert ntp_margin(W, X, Y) == pytest.approx(float(exact), rel=1e-14)
