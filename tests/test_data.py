"""Aggregation of raw rows into distinct contexts, and every bad-input path."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_ntp.implicit_bias import aggregate_contexts


def _raw_pairs():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    y = np.array(["b", "a", "c", "b", "a", "c"])
    return X, y


def _assert_same(d1, d2):
    np.testing.assert_array_equal(d1.embeddings, d2.embeddings)
    np.testing.assert_allclose(d1.probabilities.toarray(), d2.probabilities.toarray(), atol=1e-15)
    np.testing.assert_allclose(d1.weights, d2.weights, atol=1e-15)


def test_raw_pairs_counts_and_soft_rows_agree():
    X, y = _raw_pairs()
    raw = aggregate_contexts(X, y)
    # The same data written by hand as distinct contexts, in two other forms.
    Xd = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    yd = np.array(["a", "b", "c"])
    counts = aggregate_contexts(Xd[[0, 0, 1, 2]], np.array(["b", "c", "a", "c"]),
                                sample_weight=[2, 1, 2, 1])
    soft = aggregate_contexts(Xd, np.array([[0, 2 / 3, 1 / 3], [1, 0, 0], [0, 0, 1]]),
                              sample_weight=[3, 2, 1])
    _assert_same(raw, counts)
    _assert_same(raw, soft)
    np.testing.assert_array_equal(raw.classes, yd)
    assert sp.issparse(raw.probabilities) and raw.probabilities.format == "csr"
    np.testing.assert_array_equal(raw.support_sizes, [2, 1, 1])
    np.testing.assert_array_equal(raw.context_index, [0, 1, 0, 0, 1, 2])


def test_entropy_matches_scipy():
    from scipy.stats import entropy
    X, y = _raw_pairs()
    data = aggregate_contexts(X, y)
    expected = sum(w * entropy(p) for w, p in zip(data.weights, data.probabilities.toarray()))
    assert data.entropy == pytest.approx(expected, rel=1e-14)


def test_sparse_soft_targets_and_unused_tokens():
    Y = sp.csr_matrix(np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]))
    data = aggregate_contexts(np.eye(2), Y)
    assert data.n_tokens == 4  # token 3 never occurs but stays in the vocabulary
    np.testing.assert_array_equal(data.classes, np.arange(4))


def test_zero_weight_rows_are_ignored_and_arrays_are_read_only():
    X, y = _raw_pairs()
    w = np.array([1, 1, 1, 1, 1, 0.0])
    data = aggregate_contexts(X, y, sample_weight=w)
    assert data.n_contexts == 2 and data.context_index[-1] == -1
    with pytest.raises(ValueError):
        data.embeddings[0, 0] = 5.0


@pytest.mark.parametrize("weight", [1e308, 1e-320, 3.7, 2.0 ** -1074])
def test_uniform_weights_of_any_size_give_the_data_of_weights_one(weight):
    X, y = _raw_pairs()
    ones = aggregate_contexts(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in the totals
        data = aggregate_contexts(X, y, sample_weight=np.full(len(y), weight))
    _assert_same(ones, data)
    np.testing.assert_allclose(data.weights, [3 / 6, 2 / 6, 1 / 6], rtol=1e-15)


def test_weights_spanning_three_hundred_decades_keep_their_ratios():
    X, y = _raw_pairs()
    w = np.array([1e300, 1e-10, 3e299, 1e300, 2e-10, 5e-16])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = aggregate_contexts(X, y, sample_weight=w)
    # Contexts [0, 1] (rows 0, 2, 3), [1, 0] (rows 1, 4) and [2, 2] (row 5).
    np.testing.assert_allclose(data.weights[0], 1.0, rtol=1e-15)
    # Subnormal, so with fewer digits, but there: every context keeps its weight.
    np.testing.assert_allclose(data.weights[1:], [3e-10 / 2.3e300, 5e-16 / 2.3e300],
                               rtol=1e-6)
    np.testing.assert_allclose(data.probabilities.toarray(),
                               [[0, 2 / 2.3, 0.3 / 2.3], [1, 0, 0], [0, 0, 1]], rtol=1e-14)


def test_float32_embeddings_keep_their_dtype():
    data = aggregate_contexts(np.eye(2, dtype=np.float32), [0, 1])
    assert data.embeddings.dtype == np.float32


@pytest.mark.parametrize(
    "X, y, w, match",
    [
        (np.array([[np.nan, 1.0]]), [0], None, "NaN"),
        (np.array([[np.inf, 1.0], [0, 1]]), [0, 1], None, "infinity"),
        (np.zeros((0, 2)), [], None, "0 sample"),
        (np.eye(2), [0, 1, 1], None, "y has 3 entries"),
        (np.eye(2), [1, 1], None, "single token"),
        (np.eye(2), np.array([[1.0], [1.0]]), None, "at least two tokens"),
        (np.eye(2), np.array([[0.5, 0.6], [1.0, 0.0]]), None, "sum to 1"),
        (np.eye(2), np.array([[1.5, -0.5], [1.0, 0.0]]), None, "nonnegative"),
        (np.eye(2), np.array([[np.nan, 1.0], [1.0, 0.0]]), None, "NaN"),
        (np.eye(2), np.array([[1.0, 0.0, 0.0]]), None, "rows"),
        (np.eye(2), [0, 1], [1.0, -1.0], "Invalid sample_weight: Negative values"),
        (np.eye(2), [0, 1], [0.0, 0.0], "sample_weight.*(non-zero|positive)"),
        (np.eye(2), [0, 1], [1.0], r"sample_weight.shape == \(1,\), expected \(2,\)"),
        (np.eye(2), [0, 1], [1.0, np.nan], "Input sample_weight contains NaN"),
        (np.eye(2), [0, 1], [1e300, 1e-30], r"sample_weight\[1\] = 1e-30 .* float64 cannot"),
        (np.ones(3), [0, 1, 1], None, "2D array"),
    ],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.DataConversionWarning")
def test_bad_input_raises_a_clear_error(X, y, w, match):
    with pytest.raises(ValueError, match=match):
        aggregate_contexts(X, y, sample_weight=w)


def test_labels_outside_given_classes_raise():
    with pytest.raises(ValueError, match="not in classes"):
        aggregate_contexts(np.eye(2), [0, 5], classes=np.array([0, 1]))


def test_messages_name_the_argument_and_continuous_labels_are_rejected():
    with pytest.raises(ValueError, match="Invalid X: .*0 sample"):
        aggregate_contexts(np.empty((0, 3)), [])
    with pytest.raises(ValueError, match="Invalid X: could not convert"):
        aggregate_contexts(np.array([["a", "b"], ["c", "d"]]), [0, 1])
    with pytest.raises(ValueError, match="Unknown label type"):
        aggregate_contexts(np.eye(3), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="single token '1'"):
        aggregate_contexts(np.eye(2), np.array([1, 1]))


@pytest.mark.parametrize("fact", ["support_rows", "support_mask", "context_norms"])
def test_derived_facts_are_computed_once_and_read_only(fact):
    data = aggregate_contexts(*_raw_pairs())
    first = getattr(data, fact)
    assert getattr(data, fact) is first  # cached: the same object, not a recomputation
    assert not first.flags.writeable
    with pytest.raises(ValueError):
        first[...] = 0


def test_derived_facts_equal_fresh_computations():
    rng = np.random.default_rng(0)
    Y = rng.dirichlet(np.ones(5), size=40) * (rng.random((40, 5)) < 0.6)
    Y[:, 0] += Y.sum(axis=1) == 0
    data = aggregate_contexts(rng.standard_normal((40, 3)), Y / Y.sum(axis=1, keepdims=True))
    P = data.probabilities.toarray()
    rows, columns = np.nonzero(P)  # row-major order: the CSR order of the nonzeros
    np.testing.assert_array_equal(data.support_rows, rows)
    np.testing.assert_array_equal(data.probabilities.indices, columns)
    np.testing.assert_array_equal(data.support_mask, P > 0)
    np.testing.assert_allclose(data.context_norms, np.linalg.norm(data.embeddings, axis=1),
                               rtol=1e-15)


@pytest.mark.parametrize("scale", [1e-200, 1e150])
def test_context_norms_neither_underflow_nor_overflow(scale):
    data = aggregate_contexts(np.array([[3.0, 4.0], [0.0, 0.0]]) * scale, [0, 1])
    expected = np.where(data.embeddings[:, 0] != 0, 5.0 * scale, 0.0)
    np.testing.assert_allclose(data.context_norms, expected, rtol=1e-15)
