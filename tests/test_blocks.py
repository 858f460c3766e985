"""Block-wise evaluation: any memory budget gives the answer of a single block."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from _cases import non_separable, partially_separable_low_rank
from _reference import assert_limit_equals, explicit_limit, random_ntp_problem
from scipy.special import log_softmax, softmax
from sklearn import config_context

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp._data._ntp_data import aggregate_contexts
from sklearn_ntp._loss._contract import Restriction
from sklearn_ntp._loss._cross_entropy import NTPLoss
from sklearn_ntp.implicit_bias import implicit_bias_limit
from sklearn_ntp.metrics import ntp_margin

M, V, D, S = 12, 7, 4, 3
#: Bytes a block holds per context in float64: the logits and a direction's.
ROW_BYTES = 2 * V * 8


def budget(rows):
    """The working memory (MiB) of blocks of ``rows`` contexts."""
    return rows * ROW_BYTES / 2 ** 20


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    H, P = random_ntp_problem(rng, M, V, D, S)
    data = aggregate_contexts(H, P, sample_weight=rng.dirichlet(np.ones(M)))
    return data, rng.standard_normal((V, D)), rng.standard_normal((V, D))


def restrictions(data):
    """Full supports; effective supports (the supports and a few more tokens) with offsets."""
    rng = np.random.default_rng(1)
    mask = data.support_mask | (rng.random((M, V)) < 0.3)
    rows, columns = np.nonzero(mask)
    picked = rng.choice(len(rows), size=5, replace=False)
    offsets = (rows[picked], columns[picked], rng.standard_normal(5))
    return [Restriction(), Restriction(mask, offsets)]


@pytest.mark.parametrize("restricted", [False, True])
@pytest.mark.parametrize("rows", [1, 3, 7, M])
def test_blocks_agree_with_a_single_block(problem, restricted, rows):
    data, W, E = problem
    restriction = restrictions(data)[restricted]
    whole = NTPLoss(data, np.float64, restriction=restriction, working_memory=1024)
    blocks = NTPLoss(data, np.float64, restriction=restriction, working_memory=budget(rows))
    value, grad = whole.value_and_grad(W)
    block_value, block_grad = blocks.value_and_grad(W)
    assert block_value == pytest.approx(value, rel=1e-12)
    assert blocks.value(W) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(block_grad, grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(blocks.gradient(W), grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(blocks.softmax(W), whole.softmax(W), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(blocks.hessian_product(W, E), whole.hessian_product(W, E),
                               rtol=1e-12, atol=1e-14)
    for field in ("logits", "probabilities", "log_normalizer"):
        np.testing.assert_allclose(*(stacked_points(loss, W, field) for loss in (blocks, whole)),
                                   rtol=1e-12, atol=1e-15)
    point_value = sum(point.value for point in blocks.point_blocks(W))
    assert point_value == pytest.approx(value, rel=1e-12)


def stacked_points(loss, W, field):
    """A field of :meth:`NTPLoss.point_blocks` for every context (copied before the next block)."""
    return np.concatenate([np.array(getattr(point, field)) for point in loss.point_blocks(W)])


def test_blocks_match_a_dense_reference(problem):
    data, W, _ = problem
    H, P, pi = data.embeddings, data.probabilities.toarray(), data.weights
    loss = NTPLoss(data, np.float64, working_memory=budget(5))
    Z = H @ W.T
    assert loss.value(W) == pytest.approx(-pi @ np.sum(P * log_softmax(Z, axis=1), axis=1),
                                          rel=1e-12)
    np.testing.assert_allclose(loss.softmax(W), softmax(Z, axis=1), rtol=1e-12)


def test_fit_with_a_tiny_working_memory_equals_the_default_fit():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((60, 4)), rng.integers(0, 5, 60)
    for solver, alpha in (("gd", 0.1), ("lbfgs", 0.1), ("accelerated", 0.0)):
        model = NTPLinearClassifier(solver=solver, max_iter=50, alpha=alpha, fit_intercept=True)
        reference = model.fit(X, y).coef_.copy()
        proba = model.predict_proba(X)
        # Blocks of 3 contexts (5 tokens, float64, two arrays a block).
        with config_context(working_memory=3 * 2 * 5 * 8 / 2 ** 20):
            np.testing.assert_allclose(model.fit(X, y).coef_, reference, rtol=1e-10,
                                       atol=1e-12)
            np.testing.assert_allclose(model.predict_proba(X), proba, rtol=1e-12)


def test_a_budget_below_one_row_is_refused(problem):
    data = problem[0]
    with pytest.raises(ValueError, match=rf"working_memory=.* MiB .* one context row "
                                         rf"\({ROW_BYTES} bytes\)"):
        NTPLoss(data, np.float64, working_memory=budget(0.5))
    with config_context(working_memory=budget(0.5)), pytest.raises(ValueError,
                                                                   match="working_memory"):
        NTPLoss(data, np.float64)


@pytest.mark.parametrize("sparse", [False, True])
def test_predictions_in_row_blocks_equal_whole_ones(sparse):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 6, 40)
    model = NTPLinearClassifier(max_iter=20, fit_intercept=True).fit(X, y)
    X = sp.csr_matrix(X) if sparse else X
    methods = ("predict_proba", "predict_log_proba", "decision_function")
    whole = [getattr(model, method)(X) for method in methods]
    # Blocks of 2 samples: four arrays of 6 float64 logits a sample.
    with config_context(working_memory=2 * 4 * 6 * 8 / 2 ** 20):
        for method, expected in zip(methods, whole):
            np.testing.assert_allclose(getattr(model, method)(X), expected, rtol=1e-12)
    dense = X.toarray() if sparse else X
    logits = dense @ model.coef_.T + model.intercept_
    np.testing.assert_allclose(whole[0], softmax(logits, axis=1), rtol=1e-12)
    np.testing.assert_allclose(whole[1], log_softmax(logits, axis=1), rtol=1e-12)
    # predict takes the same blocks; its labels are the rows' largest logits.
    with config_context(working_memory=2 * 4 * 6 * 8 / 2 ** 20):
        labels = model.predict(X)
    np.testing.assert_array_equal(labels, model.classes_[np.argmax(logits, axis=1)])
    assert labels.dtype == model.classes_.dtype


@pytest.mark.parametrize("method", ["predict_proba", "predict_log_proba", "decision_function"])
def test_predictions_hold_at_most_working_memory_above_their_output(method):
    # 20,000 samples x 500 tokens: the output is 80 MB, the whole float64
    # logits and their temporaries would be several times that.
    rng = np.random.default_rng(0)
    model = NTPLinearClassifier(max_iter=1, compute_implicit_bias=False).fit(
        rng.standard_normal((500, 8)), np.arange(500))
    X = rng.standard_normal((20_000, 8))
    budget = 8  # MiB
    with config_context(working_memory=budget):
        tracemalloc.start()
        try:
            out = getattr(model, method)(X)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # The blocks within the budget, plus at most a copy of X (validation).
    assert peak - out.nbytes <= budget * 2 ** 20 + X.nbytes


@pytest.mark.parametrize("case", [partially_separable_low_rank, non_separable])
def test_the_limit_in_blocks_of_two_contexts_equals_its_explicit_formulation(case):
    """Restricted losses, Farkas bounds, W~, its curvature bound, U~ and the Farkas
    certificate all read the softmax two contexts at a time."""
    H, P = case()
    order = np.lexsort(H.T[::-1])  # the order of the distinct contexts
    T, loss_infimum, W, U = explicit_limit(H[order], P[order])
    with config_context(working_memory=2 * 2 * P.shape[1] * 8 / 2 ** 20):
        limit = implicit_bias_limit(H, P)
        farkas = limit.farkas_certificate
    assert_limit_equals(limit, T, loss_infimum, W, U)
    if farkas is not None:  # A H = 0, column sums 0, nonpositive off the supports
        np.testing.assert_allclose(farkas @ H[order], 0.0, atol=1e-8)
        np.testing.assert_allclose(farkas.sum(axis=0), 0.0, atol=1e-12)
        assert np.all(farkas[(P[order] == 0).T] <= 0)


def test_ntp_margin_in_row_blocks_equals_the_explicit_minimum(problem):
    data, W, _ = problem
    H, P = data.embeddings, data.probabilities.toarray()
    logits = H @ W.T
    explicit = min(logits[j, z] - logits[j, v] for j in range(M) for z in range(V)
                   for v in range(V) if P[j, z] > 0 and P[j, v] == 0)
    with config_context(working_memory=2 * 3 * V * 8 / 2 ** 20):  # two contexts a block
        assert ntp_margin(W, data) == pytest.approx(explicit, rel=1e-12)
