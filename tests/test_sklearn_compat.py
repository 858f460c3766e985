"""NTPLinearClassifier inside scikit-learn: estimator checks, cloning, pickling,
pipelines, grid search and cross-validation (scores recomputed by hand)."""

import pickle

import numpy as np
import pytest
from _reference import random_ntp_problem
from scipy.special import log_softmax
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_ntp import NTPLinearClassifier


@parametrize_with_checks(
    [
        NTPLinearClassifier(max_iter=50),
        NTPLinearClassifier(solver="lbfgs", alpha=1e-2, max_iter=50),
        NTPLinearClassifier(solver="adam", max_iter=50, compute_implicit_bias=False),
        NTPLinearClassifier(solver="ngd", fit_intercept=True, max_iter=50),
    ],
)
# The checks' data are low-dimensional (d < m): not NTP-separable, as reported.
@pytest.mark.filterwarnings("ignore::sklearn_ntp.NTPSeparabilityWarning")
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def soft_data():
    """60 rows: 20 distinct contexts (d=24 > m, separable) with soft targets."""
    rng = np.random.default_rng(4)
    H, P = random_ntp_problem(rng, 20, 5, 24, 3)
    return np.tile(H, (3, 1)), np.tile(P, (3, 1))


def held_out_log_likelihood(clf, X, Y):
    """Mean of sum_z Y_iz log softmax_z(x_i W^T), computed with scipy."""
    return float(np.mean(np.sum(Y * log_softmax(X @ clf.coef_.T, axis=1), axis=1)))


def test_clone_and_pickle_round_trip(soft_data):
    X, Y = soft_data
    clf = NTPLinearClassifier(init=np.ones((5, 24)) / 10, max_iter=30)
    clone_ = clone(clf)
    assert clone_.get_params()["max_iter"] == 30 and not hasattr(clone_, "coef_")
    np.testing.assert_array_equal(clone_.init, clf.init)
    clf.fit(X, Y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    for name, values in clf.history_.items():
        np.testing.assert_array_equal(restored.history_[name], values)


def test_pipeline_with_the_separability_checker(soft_data):
    from sklearn_ntp import NTPSeparabilityChecker

    X, Y = soft_data
    pipe = Pipeline([("check", NTPSeparabilityChecker()),
                     ("clf", NTPLinearClassifier(max_iter=100))]).fit(X, Y)
    alone = NTPLinearClassifier(max_iter=100).fit(X, Y)
    assert pipe.named_steps["check"].is_separable_
    np.testing.assert_allclose(pipe.predict_proba(X), alone.predict_proba(X))
    assert pipe.score(X, Y) == pytest.approx(held_out_log_likelihood(alone, X, Y))


def manual_cv(make, X, y, splits, score):
    return np.mean([score(make().fit(X[tr], y[tr]), X[te], y[te]) for tr, te in splits])


def test_grid_search_on_soft_targets_uses_the_log_likelihood(soft_data):
    X, Y = soft_data
    cv = KFold(3, shuffle=True, random_state=0)
    base = NTPLinearClassifier(max_iter=40, compute_implicit_bias=False)
    search = GridSearchCV(base, {"learning_rate": [0.05, 0.5]}, cv=cv, n_jobs=2).fit(X, Y)
    for i, lr in enumerate([0.05, 0.5]):
        expected = manual_cv(lambda lr=lr: clone(base).set_params(learning_rate=lr), X, Y,
                             cv.split(X), held_out_log_likelihood)
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(expected)
    assert search.best_params_ == {"learning_rate": 0.5}


def test_grid_search_with_the_excess_loss_scorer(soft_data):
    from sklearn_ntp.metrics import neg_excess_ntp_loss_scorer

    X, Y = soft_data
    cv = KFold(3, shuffle=True, random_state=1)
    base = NTPLinearClassifier(max_iter=40, compute_implicit_bias=False)

    def neg_excess(clf, X_test, Y_test):
        # Distinct test rows: -mean KL(y_i || q_i).
        with np.errstate(divide="ignore", invalid="ignore"):
            log_p = np.where(Y_test > 0, np.log(Y_test), 0.0)
        return held_out_log_likelihood(clf, X_test, Y_test) - np.mean(
            np.sum(Y_test * log_p, axis=1))

    search = GridSearchCV(base, {"learning_rate": [0.05, 0.5]}, cv=cv,
                          scoring=neg_excess_ntp_loss_scorer).fit(X, Y)
    for i, lr in enumerate([0.05, 0.5]):
        expected = manual_cv(lambda lr=lr: clone(base).set_params(learning_rate=lr), X, Y,
                             cv.split(X), neg_excess)
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(expected)


def test_cross_val_score_on_hard_labels():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((60, 4))
    y = rng.integers(0, 3, size=60)
    clf = NTPLinearClassifier(max_iter=30, compute_implicit_bias=False)
    scores = cross_val_score(clf, X, y, cv=5)

    def log_likelihood(fitted, X_test, y_test):
        log_q = log_softmax(X_test @ fitted.coef_.T, axis=1)
        return np.mean(log_q[np.arange(len(y_test)), y_test])

    splits = StratifiedKFold(5).split(X, y)
    expected = [log_likelihood(clone(clf).fit(X[tr], y[tr]), X[te], y[te])
                for tr, te in splits]
    np.testing.assert_allclose(scores, expected)


def test_binary_decision_function_is_the_logit_difference_and_serves_roc_auc():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 3))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(40) > 0, "b", "a")
    clf = NTPLinearClassifier(max_iter=200, compute_implicit_bias=False).fit(X, y)
    logits = X @ clf.coef_.T
    np.testing.assert_allclose(clf.decision_function(X), logits[:, 1] - logits[:, 0])
    np.testing.assert_array_equal(clf.predict(X), np.where(clf.decision_function(X) > 0, "b", "a"))
    scores = cross_val_score(NTPLinearClassifier(max_iter=200, compute_implicit_bias=False),
                             X, y, cv=StratifiedKFold(4), scoring="roc_auc")
    assert scores.mean() > 0.8  # the labels follow the first feature, up to noise
