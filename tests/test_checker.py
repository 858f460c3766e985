"""NTPSeparabilityChecker: scikit-learn conformance, failure policies, attributes, pipelines."""

import warnings

import numpy as np
import pytest
from _reference import kronecker_log_odds_solution, naive_ntp_svm, random_ntp_problem
from scipy.stats import entropy
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_ntp import NTPLinearClassifier, NTPSeparabilityChecker, NTPSeparabilityWarning
from sklearn_ntp.implicit_bias import NotNTPCompatibleError, NotNTPSeparableError


@parametrize_with_checks([NTPSeparabilityChecker()])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # Random common-check data are seldom NTP-separable in few dimensions.
        warnings.simplefilter("ignore", NTPSeparabilityWarning)
        check(estimator)


# Contexts h = 1 and h = 2 (d = 1) with next tokens 0 and 1: separability would need
# (w0 - w1) * 1 >= 1 and (w1 - w0) * 2 >= 1, i.e. w0 - w1 >= 1 and w0 - w1 <= -1/2.
NOT_SEPARABLE = (np.array([[1.0], [2.0]]), np.array([0, 1]))

# Same contexts, both supported on {0, 1}: (w0 - w1) = log 1 and 2 (w0 - w1) = log 3
# cannot both hold. Token 2 is outside both supports; with w0 = w1 = a and w2 = b
# separability needs a - b >= 1, and the least norm 2a^2 + b^2 gives a = 1/3,
# b = -2/3, ||W^mm||^2 = 2/3, margin sqrt(3/2).
NOT_COMPATIBLE = (np.array([[1.0], [2.0]]), np.array([[0.5, 0.5, 0.0], [0.75, 0.25, 0.0]]))


def test_non_separable_data_are_truly_infeasible():
    X, y = NOT_SEPARABLE
    assert naive_ntp_svm(X, np.eye(2)[y])[0] is None


def test_warns_on_non_separable_data_and_stores_the_report():
    with pytest.warns(NTPSeparabilityWarning, match="not NTP-separable"):
        checker = NTPSeparabilityChecker().fit(*NOT_SEPARABLE)
    assert checker.is_compatible_ and not checker.is_separable_
    assert np.isnan(checker.margin_)
    assert checker.max_margin_solution_ is None
    assert checker.report_.is_separable is False
    assert "NTP-separable" in str(checker.report_)


def test_raises_on_non_separable_data_after_storing_the_report():
    checker = NTPSeparabilityChecker(on_failure="raise")
    with pytest.raises(NotNTPSeparableError, match="not NTP-separable") as info:
        checker.fit(*NOT_SEPARABLE)
    assert checker.report_.is_separable is False
    # The error carries a Farkas certificate, checked here from its definition:
    # zero column sums, nonpositive off the supports with a negative total, A H = 0.
    A, data = info.value.certificate, checker.report_.limit.data
    off = ~data.support_mask.T
    H = np.asarray(data.embeddings)
    assert np.abs(A.sum(axis=0)).max() < 1e-12
    assert A[off].max() <= 0 and A[off].sum() < 0
    assert np.abs(A @ H).max() <= 1e-8 * np.abs(A[off]).sum() * np.abs(H).max()


def test_ignores_failures_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checker = NTPSeparabilityChecker(on_failure="ignore").fit(*NOT_SEPARABLE)
    assert not checker.is_separable_


def test_incompatible_but_separable_data():
    X, Y = NOT_COMPATIBLE
    with pytest.warns(NTPSeparabilityWarning, match="not NTP_H-compatible") as record:
        checker = NTPSeparabilityChecker().fit(X, Y)
    assert "not NTP-separable" not in str(record[0].message)
    assert not checker.is_compatible_ and checker.is_separable_
    assert checker.margin_ == pytest.approx(np.sqrt(1.5), rel=1e-8)
    np.testing.assert_allclose(checker.max_margin_solution_, [[1 / 3], [1 / 3], [-2 / 3]],
                               atol=1e-8)
    with pytest.raises(NotNTPCompatibleError, match="not NTP_H-compatible") as error:
        NTPSeparabilityChecker(on_failure="raise").fit(X, Y)
    assert error.value.residual > 0.1


def test_attributes_on_overparameterized_data():
    H, P = random_ntp_problem(np.random.default_rng(0), 6, 5, 9, 3)
    X, Y = np.repeat(H, 2, axis=0), np.repeat(P, 2, axis=0)
    w = np.tile([1.0, 3.0], 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checker = NTPSeparabilityChecker().fit(X, Y, sample_weight=w)
    assert checker.is_compatible_ and checker.is_separable_
    assert checker.n_contexts_ == 6 and checker.n_features_in_ == 9
    assert checker.entropy_ == pytest.approx(np.mean([entropy(p) for p in P]), rel=1e-12)
    np.testing.assert_allclose(checker.finite_component_,
                               kronecker_log_odds_solution(H, P), atol=1e-8)
    W_naive = naive_ntp_svm(H, P)[0]
    np.testing.assert_allclose(checker.max_margin_solution_, W_naive, atol=1e-5)
    assert checker.margin_ == pytest.approx(1 / np.linalg.norm(W_naive), rel=1e-5)


def test_zero_weights_remove_the_contexts_that_break_separability():
    X, y = np.array([[1.0], [2.0], [3.0]]), np.array([0, 1, 0])
    with pytest.warns(NTPSeparabilityWarning):
        assert not NTPSeparabilityChecker().fit(X, y).is_separable_
    checker = NTPSeparabilityChecker().fit(X, y, sample_weight=[1.0, 0.0, 1.0])
    assert checker.is_separable_ and checker.n_contexts_ == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transform_returns_the_input_unchanged(dtype):
    X, y = NOT_COMPATIBLE[0].astype(dtype), [0, 1]
    checker = NTPSeparabilityChecker(on_failure="ignore")
    out = checker.fit_transform(X, y)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, X)
    np.testing.assert_array_equal(checker.transform([[5.0], [1.0]]), [[5.0], [1.0]])
    with pytest.raises(ValueError, match="features"):
        checker.transform(np.ones((2, 3)))


def test_pipeline_in_front_of_classifiers():
    H, P = random_ntp_problem(np.random.default_rng(1), 5, 4, 8, 2)
    pipe = make_pipeline(NTPSeparabilityChecker(on_failure="raise"),
                         NTPLinearClassifier(max_iter=20, compute_implicit_bias=False))
    pipe.fit(H, P)
    assert pipe[0].is_separable_
    np.testing.assert_allclose(pipe.predict_proba(H), pipe[-1].predict_proba(H))

    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((30, 2)), rng.integers(0, 3, size=30)
    pipe = make_pipeline(NTPSeparabilityChecker(on_failure="ignore"), LogisticRegression())
    np.testing.assert_allclose(pipe.fit(X, y).predict_proba(X),
                               LogisticRegression().fit(X, y).predict_proba(X))
    assert list(pipe[0].get_feature_names_out()) == ["x0", "x1"]


def test_invalid_on_failure_is_rejected():
    with pytest.raises(ValueError, match="on_failure"):
        NTPSeparabilityChecker(on_failure="stop").fit(*NOT_SEPARABLE)


def test_invalid_targets_are_rejected():
    with pytest.raises(ValueError, match="sum to 1"):
        NTPSeparabilityChecker().fit(np.eye(2), [[0.5, 0.6], [1.0, 0.0]])
    with pytest.raises(ValueError, match="requires y"):
        NTPSeparabilityChecker().fit(np.eye(2), None)
