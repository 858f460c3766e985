"""The Zipfian generator: its distributional claims, checked against scipy's laws."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from sklearn_ntp.datasets import make_zipf_ntp_data

GPT2_VOCAB = 50257


@pytest.fixture(scope="module")
def large_sample():
    """20,000 contexts over GPT-2's vocabulary: about 130,000 next-token draws."""
    return make_zipf_ntp_data(20_000, GPT2_VOCAB, 8, random_state=0)


def test_shapes_rows_and_supports(large_sample):
    X, Y, w = large_sample
    assert X.shape == (20_000, 8) and X.dtype == np.float64
    assert sp.issparse(Y) and Y.format == "csr" and Y.shape == (20_000, GPT2_VOCAB)
    assert Y.has_sorted_indices
    assert_allclose(np.asarray(Y.sum(axis=1)).ravel(), 1.0, rtol=1e-12)
    assert np.all(Y.data > 0)
    sizes = np.diff(Y.indptr)
    assert sizes.min() >= 1 and sizes.max() <= 1000
    # Each row is an empirical distribution of w_j draws: w_j Y_j are whole counts.
    counts = Y.multiply(w[:, None]).tocsr()
    assert_allclose(counts.data, np.round(counts.data), atol=1e-9)
    assert np.all(w >= sizes)


def test_pooled_token_frequencies_follow_zipf(large_sample):
    _, Y, w = large_sample
    counts = Y.T @ w  # pooled next-token counts over all draws
    # Wald's identity: the expected count of token z is p_z times the number of draws.
    p = stats.zipfian(1.1, GPT2_VOCAB).pmf(np.arange(1, GPT2_VOCAB + 1))
    n = w.sum()
    head = slice(0, 20)  # counts of a few hundred at least: 5 standard deviations is tight
    assert_allclose(counts[head], n * p[head], atol=5 * np.sqrt(n * p[head]).max())
    # The rank-frequency slope of the head, on a log-log scale.
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert slope == pytest.approx(-1.1, abs=0.05)


def test_support_sizes_follow_the_truncated_power_law(large_sample):
    _, Y, _ = large_sample
    sizes = np.diff(Y.indptr)
    law = stats.zipfian(2.0, 1000)
    for s in (1, 2, 3, 10):
        # The binomial proportion within 5 standard deviations.
        q = law.pmf(s)
        assert np.mean(sizes == s) == pytest.approx(q, abs=5 * np.sqrt(q * (1 - q) / sizes.size))
    tail = law.sf(100)
    assert np.mean(sizes > 100) == pytest.approx(tail, abs=5 * np.sqrt(tail / sizes.size))


def test_max_support_and_exponents_are_honoured():
    _, Y, _ = make_zipf_ntp_data(500, 30, 4, max_support=30, support_exponent=0.5,
                                 random_state=1)
    sizes = np.diff(Y.indptr)
    assert sizes.max() == 30  # flat enough a law reaches the whole vocabulary
    _, Y, _ = make_zipf_ntp_data(500, 100, 4, max_support=5, random_state=1)
    assert np.diff(Y.indptr).max() <= 5


def test_embeddings_are_scaled_gaussians():
    X, _, _ = make_zipf_ntp_data(4000, 10, 50, random_state=0)
    assert np.mean(np.sum(X**2, axis=1)) == pytest.approx(1.0, abs=0.02)
    assert stats.kstest(X.ravel() * np.sqrt(50), "norm").pvalue > 1e-3


def test_reproducible_and_float32():
    first = make_zipf_ntp_data(300, 1000, 6, random_state=3)
    second = make_zipf_ntp_data(300, 1000, 6, random_state=np.random.RandomState(3))
    for a, b in zip(first, second):
        assert_array_equal(a.toarray() if sp.issparse(a) else a,
                           b.toarray() if sp.issparse(b) else b)
    X32, Y32, w32 = make_zipf_ntp_data(300, 1000, 6, dtype=np.float32, random_state=3)
    assert X32.dtype == np.float32 and Y32.dtype == np.float32
    assert_allclose(X32, first[0], rtol=1e-6)
    assert_array_equal(w32, first[2])
    assert not np.array_equal(make_zipf_ntp_data(300, 1000, 6, random_state=4)[2], first[2])


def test_memory_is_proportional_to_the_nonzeros():
    # A dense (2000, 50257) float64 array would take 800 MB.
    tracemalloc.start()
    try:
        _, Y, _ = make_zipf_ntp_data(2000, GPT2_VOCAB, 16, random_state=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6
    assert Y.nnz < 50_000


@pytest.mark.parametrize("kwargs, message", [
    ({"n_contexts": 0}, "n_contexts must be an integer >= 1"),
    ({"vocab_size": 1}, "vocab_size must be an integer >= 2"),
    ({"n_features": 2.0}, "n_features must be an integer >= 1"),
    ({"max_support": 11}, "max_support=11 exceeds vocab_size=10"),
    ({"max_support": 0}, "max_support must be an integer >= 1"),
    ({"exponent": 0.0}, "exponent must be a positive finite number"),
    ({"exponent": np.inf}, "exponent must be a positive finite number"),
    ({"support_exponent": -1}, "support_exponent must be a positive finite number"),
    ({"dtype": np.int64}, "dtype must be np.float32 or np.float64"),
    ({"dtype": "nonsense"}, "dtype must be np.float32 or np.float64"),
])
def test_bad_input(kwargs, message):
    arguments = {"n_contexts": 5, "vocab_size": 10, "n_features": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_zipf_ntp_data(**arguments)
