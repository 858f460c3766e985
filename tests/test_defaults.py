"""Out of the box: the default NTPLinearClassifier on scikit-learn's own data sets.

References: the majority-class rate (what "learns something" must beat) and
LogisticRegression's cross-validated accuracy in the same pipeline.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntp import NTPLinearClassifier

LOADERS = [load_iris, load_wine, load_breast_cancer,
           pytest.param(load_digits, marks=pytest.mark.slow)]  # 1797 contexts


@pytest.mark.parametrize("load", LOADERS, ids=lambda f: f.__name__[5:])
def test_defaults_on_raw_data_never_diverge_and_learn(load):
    X, y = load(return_X_y=True)
    # The geometry (W*, W^mm) of wine's raw features (scales 0.1 to 1000) and of
    # digits' 1797 contexts costs minutes: not what is tested here.
    params = {"compute_implicit_bias": False} if load in (load_wine, load_digits) else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = NTPLinearClassifier(**params).fit(X, y)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert clf.stop_reason_ != "diverged"
    assert np.all(np.diff(clf.loss_curve_) <= 1e-12)  # the auto gd step is a descent step
    majority = np.bincount(y).max() / len(y)
    assert np.mean(clf.predict(X) == y) > majority + 0.2


@pytest.mark.parametrize("load", LOADERS, ids=lambda f: f.__name__[5:])
def test_raw_cv_accuracy_matches_logistic_regression_defaults(load):
    """Raw features (wine's run from 0.1 to 1680): the "auto" step rescales the
    columns, as LogisticRegression users expect (plain GD reached 0.64 on wine)."""
    X, y = load(return_X_y=True)
    ntp = NTPLinearClassifier(fit_intercept=True, compute_implicit_bias=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # LogisticRegression's max_iter
        reference = cross_val_score(LogisticRegression(), X, y, cv=5).mean()
    accuracy = cross_val_score(ntp, X, y, cv=5, scoring="accuracy").mean()
    assert accuracy >= reference - 0.03


@pytest.mark.parametrize("load", LOADERS, ids=lambda f: f.__name__[5:])
def test_standardized_cv_accuracy_matches_logistic_regression(load):
    X, y = load(return_X_y=True)
    ntp = make_pipeline(StandardScaler(), NTPLinearClassifier(
        fit_intercept=True, compute_implicit_bias=False))
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    accuracy = cross_val_score(ntp, X, y, cv=5, scoring="accuracy").mean()
    reference = cross_val_score(logreg, X, y, cv=5, scoring="accuracy").mean()
    assert accuracy >= reference - 0.03


def iris_search(grid, action):
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(make_pipeline(StandardScaler(), NTPLinearClassifier(
        fit_intercept=True, compute_implicit_bias=False)), grid, cv=5, scoring="accuracy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(action)
        search.fit(X, y)
    return search, caught


def test_grid_search_with_defaults_emits_no_warning():
    search, caught = iris_search({"ntplinearclassifier__solver": ["gd", "ngd", "adam"]},
                                 "always")
    assert caught == []
    assert search.best_score_ > 0.9


def test_a_diverging_candidate_warns_with_the_same_text_in_every_fold():
    """The text names the candidate's step and no fold-dependent number."""
    _, caught = iris_search({"ntplinearclassifier__learning_rate": [100.0, "auto"]},
                            "always")
    messages = {str(w.message) for w in caught}
    assert len(caught) == 5 and len(messages) == 1  # the 5 folds of learning_rate=100
    assert "learning_rate=100" in messages.pop()


def test_non_separable_data_emit_no_warning():
    """Iris with an intercept is not NTP-separable: a normal outcome, described by
    the general limit, not a failure to warn about."""
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = StandardScaler().fit_transform(X)
        clf = NTPLinearClassifier(fit_intercept=True).fit(X, y)
    assert caught == []
    # Only setosa is linearly separable from the rest: the limit's direction,
    # on [x, 1], separates exactly that class.
    U = clf.margin_direction_
    assert U.shape == (3, 5) and np.linalg.norm(U) == pytest.approx(1.0)
    gap = np.c_[X, np.ones(len(X))] @ (U[0] - U[1])
    assert np.all(gap[y == 0] > 0) and np.all(gap[y != 0] < 0)
