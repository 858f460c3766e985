"""Input validation: one path per kind of input, inputs never modified.

Values are checked against independent computations (scipy's entropy,
per-token counts by hand, scikit-learn's log_loss).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import entropy as scipy_entropy
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import log_loss

from sklearn_ntp import (
    NTPLinearClassifier,
    NTPSeparabilityChecker,
    NTPSeparabilityWarning,
)
from sklearn_ntp.implicit_bias import (
    aggregate_contexts,
    check_ntp_separability,
    entropy_lower_bound,
    implicit_bias_limit,
    log_odds_solution,
    ntp_loss,
    ntp_svm,
)
from sklearn_ntp.metrics import (
    entropy_lower_bound as metrics_entropy_lower_bound,
)
from sklearn_ntp.metrics import excess_ntp_loss, ntp_cross_entropy, ntp_margin

X3 = np.eye(3)
P3 = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def csr_with_explicit_zeros():
    """``P3`` with a stored zero in row 0 and unsorted column indices in row 2."""
    return sp.csr_matrix((np.array([0.5, 0.0, 0.5, 1.0, 1.0]), np.array([1, 2, 0, 1, 2]),
                          np.array([0, 3, 4, 5])), shape=(3, 3))


def _snapshot(Y):
    return Y.data.copy(), Y.indices.copy(), Y.indptr.copy()


ENTRY_POINTS = {
    "aggregate_contexts": lambda Y: aggregate_contexts(X3, Y),
    "fit": lambda Y: NTPLinearClassifier(max_iter=3).fit(X3, Y),
    "score": lambda Y: NTPLinearClassifier(max_iter=3, compute_implicit_bias=False)
    .fit(X3, P3).score(X3, Y),
    "check_ntp_separability": lambda Y: check_ntp_separability(X3, Y),
    "checker": lambda Y: NTPSeparabilityChecker().fit(X3, Y),
    "ntp_cross_entropy": lambda Y: ntp_cross_entropy(Y, P3 * 0.9 + 0.1 / 3),
    "entropy_lower_bound": lambda Y: entropy_lower_bound(Y, X=X3),
    "ntp_svm": lambda Y: ntp_svm(X3, Y),
}


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_csr_targets_with_explicit_zeros_are_not_rewritten(name):
    Y = csr_with_explicit_zeros()
    before = _snapshot(Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ENTRY_POINTS[name](Y)
    for old, new in zip(before, _snapshot(Y)):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_read_only_inputs_are_accepted(name):
    Y = csr_with_explicit_zeros()
    Y = sp.csr_matrix(_read_only(_snapshot(Y)), shape=Y.shape)
    assert not Y.data.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ENTRY_POINTS[name](Y)


def _read_only(arrays):
    data, indices, indptr = (a.copy() for a in arrays)
    for a in (data, indices, indptr):
        a.flags.writeable = False
    return data, indices, indptr


def test_fit_on_aggregated_data_which_is_read_only():
    data = aggregate_contexts(X3[[0, 0, 1, 2]], [0, 1, 1, 2])
    assert not data.probabilities.data.flags.writeable
    clf = NTPLinearClassifier(max_iter=5, compute_implicit_bias=False)
    clf.fit(data.embeddings, data.probabilities, sample_weight=data.weights)
    assert clf.n_iter_ == 5
    expected = log_loss([0, 1, 1, 2], clf.predict_proba(X3[[0, 0, 1, 2]]), labels=[0, 1, 2])
    assert -clf.score(data.embeddings, data.probabilities, data.weights) == pytest.approx(
        expected, rel=1e-12)


def test_classes_are_copied_never_frozen():
    classes = np.array(["a", "b", "c"])
    data = aggregate_contexts(np.eye(2), ["a", "c"], classes=classes)
    assert classes.flags.writeable
    assert not data.classes.flags.writeable
    clf = NTPLinearClassifier(max_iter=2, compute_implicit_bias=False).fit(np.eye(2), ["a", "b"])
    assert clf.classes_.flags.writeable


def test_classes_in_any_order_fix_the_columns():
    data = aggregate_contexts(np.array([[0.0], [1.0], [1.0]]), ["a", "b", "a"],
                              classes=["b", "a"])
    np.testing.assert_array_equal(data.classes, ["b", "a"])
    # Context 0.0 is followed by a (column 1); context 1.0 by b and a.
    np.testing.assert_allclose(data.probabilities.toarray(), [[0.0, 1.0], [0.5, 0.5]])


@pytest.mark.parametrize("classes, match", [
    (["a", "a", "b"], "duplicate"),
    (["a"], "at least two"),
    ([["a", "b"]], "1-D"),
    ([1, 2], "not in classes|incomparable"),
])
def test_invalid_classes_are_named(classes, match):
    with pytest.raises(ValueError, match=match):
        aggregate_contexts(np.eye(2), ["a", "b"], classes=classes)


# ------------------------------------------------------------ subnormal probabilities


@pytest.mark.parametrize("tiny", [1e-310, 5e-324])
def test_subnormal_probabilities_give_the_finite_entropy(tiny):
    P = np.array([[1.0 - tiny, tiny], [0.0, 1.0]])
    data = aggregate_contexts(np.eye(2), P)
    # -p log p by hand, in Python floats: finite for every subnormal p.
    expected = 0.5 * -(tiny * np.log(tiny))
    assert np.isfinite(data.entropy)
    assert data.entropy == pytest.approx(expected, rel=1e-9, abs=1e-323)
    assert data.entropy == pytest.approx(0.5 * scipy_entropy(P[0]), abs=1e-300)


def test_subnormal_probabilities_do_not_stop_the_fit_at_iteration_zero():
    P = np.array([[1.0 - 1e-310, 1e-310], [0.0, 1.0]])
    # The curvature of the loss along the log-odds of a 1e-310 probability is
    # about 1e-310: no gradient bounds W~'s error there, and the limit says so.
    with pytest.warns(NTPSeparabilityWarning, match="curvature bound"):
        clf = NTPLinearClassifier(max_iter=20, tol=1e-3).fit(np.eye(2), P)
    assert clf.n_iter_ > 0 and np.any(clf.coef_ != 0)
    # converged_ means the excess loss really is below tol.
    excess = excess_ntp_loss(P, clf.predict_proba(np.eye(2)), X=np.eye(2))
    assert clf.converged_ == (excess <= 1e-3)


# ------------------------------------------------------------------ entropy_lower_bound


def test_entropy_lower_bound_is_one_function_with_one_signature():
    assert entropy_lower_bound is metrics_entropy_lower_bound
    X = np.array([[1.0], [1.0], [2.0]])
    data = aggregate_contexts(X, ["a", "b", "a"])
    expected = 2 / 3 * np.log(2)
    assert entropy_lower_bound(["a", "b", "a"], X=X) == pytest.approx(expected, rel=1e-12)
    assert entropy_lower_bound(data) == pytest.approx(expected, rel=1e-12)


def test_entropy_lower_bound_of_aggregated_data_refuses_other_targets():
    data = aggregate_contexts(np.eye(2), [0, 1])
    with pytest.raises(TypeError):
        entropy_lower_bound(data, [0, 0])  # the old (X, y) order: never ignored
    with pytest.raises(ValueError, match="X and sample_weight must be None"):
        entropy_lower_bound(data, X=np.eye(2))


@pytest.mark.parametrize("func", [ntp_svm, log_odds_solution, check_ntp_separability])
def test_aggregated_data_with_other_targets_is_an_error(func):
    data = aggregate_contexts(np.eye(2), [0, 1])
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        func(data, [1, 0])


def test_ntp_margin_of_aggregated_data_refuses_weights():
    data = aggregate_contexts(np.eye(2), [0, 1])
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        ntp_margin(np.eye(2), data, sample_weight=[1.0, 2.0])


# ------------------------------------------------------------------------ messages


@pytest.mark.parametrize("scale", [1e155, 1e200, 1e300])
def test_huge_finite_embeddings_are_refused_as_such(scale):
    for call in (lambda: aggregate_contexts(np.eye(2) * scale, [0, 1]),
                 lambda: NTPLinearClassifier().fit(np.eye(2) * scale, [0, 1]),
                 lambda: ntp_loss(np.zeros((2, 2)), np.eye(2) * scale, [0, 1])):
        with pytest.raises(ValueError, match="X has entries up to .*overflow") as info:
            call()
        assert "infs or NaNs" not in str(info.value)


def test_single_column_targets_are_labels_everywhere():
    y = np.array([[0], [1], [1]])
    with pytest.warns(DataConversionWarning):
        data = aggregate_contexts(np.eye(3), y)
    np.testing.assert_array_equal(data.classes, [0, 1])
    with pytest.warns(DataConversionWarning):
        clf = NTPLinearClassifier(max_iter=2, compute_implicit_bias=False).fit(np.eye(3), y)
    np.testing.assert_array_equal(clf.classes_, [0, 1])


@pytest.mark.parametrize("w, match", [
    (["a", "b"], "Invalid sample_weight"),
    ([1.0, -1.0], "Invalid sample_weight: Negative"),
    ([[1.0, 1.0]], "Invalid sample_weight"),
])
def test_sample_weight_errors_name_the_argument(w, match):
    with pytest.raises(ValueError, match=match):
        aggregate_contexts(np.eye(2), [0, 1], sample_weight=w)
    with pytest.raises(ValueError, match=match):
        ntp_cross_entropy([0, 1], [[0.5, 0.5]] * 2, sample_weight=w)


def test_predictions_whose_logits_overflow_are_refused():
    clf = NTPLinearClassifier(max_iter=50, compute_implicit_bias=False)
    clf.fit(np.eye(2), [0, 1])
    X = np.array([[1e308, -1e308]])  # finite, but X @ coef_.T is not
    for method in (clf.predict_proba, clf.predict_log_proba, clf.predict,
                   clf.decision_function):
        with pytest.raises(ValueError, match="X has entries up to 1e\\+308: its logits"):
            method(X)


@pytest.mark.parametrize("kind", ["labels", pytest.param("soft", marks=pytest.mark.slow)])
def test_as_many_tokens_as_contexts_is_not_taken_for_regression(kind):
    """One context per token is ordinary next-token data, not a regression target.

    scikit-learn's ``check_classification_targets`` warns that such ``y``
    "could represent a regression problem"; no entry point may.
    """
    rng = np.random.default_rng(0)
    m = 30  # scikit-learn warns above 20 samples with more than half distinct labels
    X = rng.normal(size=(m, m + 5))
    y = rng.permutation(m) if kind == "labels" else rng.dirichlet(np.ones(m), size=m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = NTPLinearClassifier(solver="lbfgs", alpha=1e-2).fit(X, y)
        clf.score(X, y)
        check_ntp_separability(X, y)
        ntp_cross_entropy(y, clf.predict_proba(X))
    assert len(clf.classes_) == m


def test_continuous_labels_are_still_refused():
    """Non-integral float labels are a regression target, refused as by scikit-learn."""
    y = np.random.default_rng(0).normal(size=30)
    for call in (lambda: NTPLinearClassifier(max_iter=3).fit(np.eye(30), y),
                 lambda: aggregate_contexts(np.eye(30), y)):
        with pytest.raises(ValueError, match="Invalid y: Unknown label type: continuous"):
            call()


@pytest.mark.parametrize("y", [[[0.5, 0.5], [1.0]], [[1.0, 0.0], "a"]])
def test_ragged_targets_are_named(y):
    with pytest.raises(ValueError, match="Invalid y"):
        aggregate_contexts(np.eye(2), y)


def test_half_precision_is_refused_not_upcast():
    """float16 has an 11-bit significand: a clear error at every entry point."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 3, 20)
    half = X.astype(np.float16)
    match = r"X is float16: half precision is not supported.*float32"
    for call in (lambda: NTPLinearClassifier(max_iter=2).fit(half, y),
                 lambda: NTPSeparabilityChecker().fit(half, y),
                 lambda: aggregate_contexts(half, y),
                 lambda: implicit_bias_limit(half, y)):
        with pytest.raises(ValueError, match=match):
            call()
    model = NTPLinearClassifier(max_iter=2, compute_implicit_bias=False).fit(X, y)
    for method in (model.predict, model.predict_proba, model.decision_function,
                   lambda X: model.score(X, y)):
        with pytest.raises(ValueError, match=match):
            method(half)
    checker = NTPSeparabilityChecker().fit(X, y)
    with pytest.raises(ValueError, match=match):
        checker.transform(half)


def test_bfloat16_tensors_are_refused():
    torch = pytest.importorskip("torch")
    X = torch.zeros((4, 2), dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="X is bfloat16: half precision"):
        aggregate_contexts(X, [0, 1, 0, 1])
