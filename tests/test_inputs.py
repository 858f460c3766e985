"""Inputs users have: sparse X, DataFrame targets, dense synthetic targets, float32.

Every sparse result is compared with the same computation on the dense array
(which the rest of the suite checks against independent references).
"""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.model_selection import cross_val_score

from sklearn_ntp import NTPLinearClassifier, NTPSeparabilityChecker
from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import aggregate_contexts, check_ntp_separability


@pytest.fixture(scope="module")
def one_hot_contexts():
    """Bag-of-words-like rows: 8 distinct sparse contexts, each repeated, in d = 12."""
    rng = np.random.default_rng(0)
    base = rng.poisson(0.4, size=(8, 12)).astype(float)
    base[:, 0] += 1.0  # no empty context: all distinct
    rows = rng.integers(8, size=80)
    X = base[rows]
    y = rng.integers(4, size=80)
    return X, y, rng.uniform(0.5, 2.0, size=80)


def messy_csr(X):
    """CSR with duplicate entries, explicit zeros and unsorted indices, same values."""
    coo = sp.coo_matrix(X)
    rows = np.r_[coo.row, coo.row, coo.row[:5]]
    cols = np.r_[coo.col, coo.col, coo.col[:5]]
    data = np.r_[coo.data / 2, coo.data / 2, np.zeros(5)]
    order = np.random.default_rng(1).permutation(rows.size)
    M = sp.csr_matrix((data[order], (rows[order], cols[order])), shape=X.shape)
    M.has_sorted_indices = False
    return M


@pytest.mark.parametrize("to_sparse", [sp.csr_matrix, sp.csc_matrix, sp.csr_array,
                                       messy_csr])
def test_sparse_aggregation_equals_dense(one_hot_contexts, to_sparse):
    X, y, w = one_hot_contexts
    S = to_sparse(X)
    before = [arr.copy() for arr in (S.data, S.indices, S.indptr)]
    dense, sparse = aggregate_contexts(X, y, w), aggregate_contexts(S, y, w)
    np.testing.assert_array_equal(sparse.embeddings, dense.embeddings)
    np.testing.assert_array_equal(sparse.context_index, dense.context_index)
    np.testing.assert_allclose(sparse.weights, dense.weights, rtol=1e-15)
    assert abs(sparse.probabilities - dense.probabilities).max() < 1e-15
    for arr, old in zip((S.data, S.indices, S.indptr), before):
        np.testing.assert_array_equal(arr, old)  # the caller's matrix is untouched


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_sparse_fit_and_predictions_equal_dense(one_hot_contexts, fit_intercept):
    X, y, w = one_hot_contexts
    params = {"fit_intercept": fit_intercept, "max_iter": 200}
    dense = NTPLinearClassifier(**params).fit(X, y, sample_weight=w)
    for S in (sp.csr_matrix(X), sp.csc_matrix(X)):
        sparse = NTPLinearClassifier(**params).fit(S, y, sample_weight=w)
        for name in ("coef_", "intercept_", "finite_component_", "loss_curve_"):
            np.testing.assert_allclose(getattr(sparse, name), getattr(dense, name),
                                       rtol=1e-10, atol=1e-12)
        for method in ("predict_proba", "decision_function", "predict_log_proba"):
            np.testing.assert_allclose(getattr(sparse, method)(S),
                                       getattr(dense, method)(X), rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(sparse.predict(S), dense.predict(X))
        assert sparse.score(S, y, w) == pytest.approx(dense.score(X, y, w), rel=1e-12)


def test_sparse_geometry_equals_dense():
    X, Y, w = make_ntp_data(n_contexts=12, vocab_size=5, n_features=15, support_size=3,
                            n_sequences=200, random_state=0)
    X[np.abs(X) < 0.8] = 0.0
    dense = check_ntp_separability(X, Y, w)
    sparse = check_ntp_separability(sp.csr_matrix(X), Y, w)
    assert sparse.is_separable and dense.is_separable
    np.testing.assert_allclose(sparse.max_margin_solution, dense.max_margin_solution,
                               atol=1e-10)
    np.testing.assert_allclose(sparse.finite_component, dense.finite_component, atol=1e-10)
    checker = NTPSeparabilityChecker().fit(sp.csc_matrix(X), Y, sample_weight=w)
    assert checker.margin_ == pytest.approx(dense.margin, rel=1e-10)
    assert sp.issparse(checker.transform(sp.csr_matrix(X)))


def test_dataframe_columns_become_the_tokens():
    X, Y, w = make_ntp_data(n_contexts=10, vocab_size=4, n_features=12, support_size=2,
                            n_sequences=100, random_state=1, sparse_targets=False)
    names = ["the", "cat", "sat", "mat"]
    frame = pd.DataFrame(Y, columns=names)
    clf = NTPLinearClassifier(max_iter=100).fit(X, frame, sample_weight=w)
    assert list(clf.classes_) == names
    array_fit = NTPLinearClassifier(max_iter=100).fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(clf.coef_, array_fit.coef_)
    assert set(clf.predict(X)) <= set(names)
    # Scoring reads the columns by name, in any order.
    shuffled = frame[["mat", "the", "sat", "cat"]]
    assert clf.score(X, shuffled, w) == pytest.approx(array_fit.score(X, Y, w))
    with pytest.raises(ValueError, match="columns of y"):
        clf.score(X, frame.rename(columns={"mat": "rug"}), w)


@pytest.mark.parametrize("names", [["a", "a", "b"], [0, 1, 1]])
def test_duplicate_dataframe_columns_are_refused(names):
    """Column names are the tokens: a repeated name would make ``predict`` ambiguous."""
    frame = pd.DataFrame(np.full((4, 3), 1 / 3), columns=names)
    X = np.eye(4)
    duplicate = repr(names[1])
    for call in (lambda: NTPLinearClassifier(max_iter=3).fit(X, frame),
                 lambda: aggregate_contexts(X, frame),
                 lambda: check_ntp_separability(X, frame)):
        with pytest.raises(ValueError, match=rf"y has duplicate column names \[{duplicate}\]"):
            call()
    fitted = NTPLinearClassifier(max_iter=3, compute_implicit_bias=False)
    fitted.fit(X, frame.set_axis(["a", "b", "c"], axis=1))
    with pytest.raises(ValueError, match="y has duplicate column names"):
        fitted.score(X, frame.set_axis(["a", "b", "b"], axis=1))


def test_dense_synthetic_targets_work_with_cross_val_score():
    X, Y, w = make_ntp_data(random_state=0)
    _, dense, w_dense = make_ntp_data(random_state=0, sparse_targets=False)
    assert isinstance(dense, np.ndarray)
    np.testing.assert_array_equal(dense, Y.toarray())
    np.testing.assert_array_equal(w, w_dense)
    scores = cross_val_score(NTPLinearClassifier(max_iter=50, compute_implicit_bias=False),
                             X, dense, cv=3)
    assert scores.shape == (3,) and np.all(scores < 0)  # mean log-likelihoods
    with pytest.raises(ValueError, match="sparse_targets"):
        make_ntp_data(sparse_targets="no")


@pytest.mark.parametrize("to_matrix", [np.asarray, sp.csr_matrix])
def test_float32_stays_float32(one_hot_contexts, to_matrix):
    X, y, w = one_hot_contexts
    X32 = to_matrix(X.astype(np.float32))
    clf = NTPLinearClassifier(fit_intercept=True, max_iter=100).fit(X32, y, sample_weight=w)
    assert clf.coef_.dtype == clf.intercept_.dtype == np.float32
    assert clf.predict_proba(X32).dtype == np.float32
    clf64 = NTPLinearClassifier(fit_intercept=True, max_iter=100).fit(X, y, sample_weight=w)
    assert clf.learning_rate_ == pytest.approx(clf64.learning_rate_, rel=1e-6)
    np.testing.assert_allclose(clf.coef_, clf64.coef_, atol=1e-4)
