"""Farkas bounds for the pairs outside ``T``, from reweighted stationary points.

The identity behind them is checked by explicit algebra over the full V x d
variable, and every certified decision against an explicit LP (scipy).
"""

import numpy as np
import pytest
import scipy.sparse as sp
from _cases import forbid_the_lp, non_separable
from _reference import explicit_separable_pairs, pair_row
from scipy.linalg import null_space
from scipy.optimize import approx_fprime
from scipy.special import logsumexp

import sklearn_ntp._geometry._pair_bounds as bounds_module
from sklearn_ntp._data._ntp_data import as_ntp_data
from sklearn_ntp._geometry._pair_bounds import (
    FARKAS_RTOL,
    GRADIENT_ROUNDOFF,
    balanced,
    farkas_bounds,
    pair_bounds,
)
from sklearn_ntp._loss._restricted import RestrictedLoss
from sklearn_ntp.datasets import contexts_from_sequences, load_python_tokens
from sklearn_ntp.implicit_bias import implicit_bias_limit


def tie_space(H, P):
    """Orthonormal basis (columns) of the directions vec(U) with ties on every support."""
    V = P.shape[1]
    S = [np.flatnonzero(row > 0) for row in P]
    ties = [pair_row(H, j, z, S[j][0], V) for j in range(len(S)) for z in S[j][1:]]
    return null_space(np.array(ties)) if ties else np.eye(V * H.shape[1])


@pytest.mark.parametrize("restricted", [False, True])
def test_identity_holds_for_any_weights_distributions_and_probabilities(restricted):
    """sum_j pi_j sum_{v off S_j} q_jv margin_jv(U) = -<U, sum_j pi_j (q_j - p_j) h_j^T>
    for every U with ties on the supports, whatever positive pi, p on S_j and
    probability vectors q (zero on the pairs of a candidate T)."""
    rng = np.random.default_rng(0)
    H, P = non_separable(m=12, V=6, d=4)
    m, V = P.shape
    pi = rng.uniform(0.1, 2.0, m)
    P = np.where(P > 0, rng.uniform(0.1, 1.0, P.shape), 0.0)
    P /= P.sum(axis=1, keepdims=True)
    Q = rng.uniform(0.01, 1.0, P.shape)
    if restricted:
        Q[(P == 0) & (rng.uniform(size=P.shape) < 0.3)] = 0.0
    Q /= Q.sum(axis=1, keepdims=True)
    G = ((Q - P) * pi[:, None]).T @ H
    for u in tie_space(H, P).T[:5]:
        U = u.reshape(V, -1)
        logits = H @ U.T
        tie = logits[np.arange(m), P.argmax(axis=1)]
        margins = tie[:, None] - logits
        left = np.sum(np.where(P == 0, pi[:, None] * Q * margins, 0.0))
        assert left == pytest.approx(-np.sum(U * G), abs=1e-12)


def test_logit_offsets_enter_value_and_gradient():
    rng = np.random.default_rng(1)
    data = as_ntp_data(*non_separable(m=10, V=5, d=3))
    H, P = np.asarray(data.embeddings), data.probabilities.toarray()
    mask = rng.uniform(size=P.shape) < 0.8
    mask |= P > 0
    rows, columns = np.nonzero(mask & (P == 0))
    values = rng.uniform(-3.0, 3.0, rows.size)
    loss = RestrictedLoss(data, mask, (rows, columns, values))
    B = np.zeros(P.shape)
    B[rows, columns] = values
    W = rng.standard_normal(loss.shape)

    def explicit_value(w):
        Z = np.where(mask, H @ w.reshape(loss.shape).T + B, -np.inf)
        return float(np.sum(data.weights * (logsumexp(Z, axis=1)
                                            - np.sum(P * np.where(mask, Z, 0.0), axis=1))))

    assert loss.value(W) == pytest.approx(explicit_value(W.ravel()), rel=1e-12)
    np.testing.assert_allclose(loss.gradient(W).ravel(),
                               approx_fprime(W.ravel(), explicit_value, 1e-7), atol=1e-6)


def test_balanced_data_keep_the_supports():
    H, P = non_separable()
    data = as_ntp_data(H, P, np.arange(1.0, H.shape[0] + 1))
    before = data.probabilities.data.copy()
    uniform = balanced(data)
    np.testing.assert_array_equal(uniform.support_mask, data.support_mask)
    np.testing.assert_allclose(uniform.probabilities.toarray().sum(axis=1), 1.0)
    assert np.ptp(uniform.probabilities.data[uniform.probabilities.indptr[0]:
                                             uniform.probabilities.indptr[1]]) == 0
    np.testing.assert_allclose(uniform.weights, 1.0 / H.shape[0])
    np.testing.assert_array_equal(data.probabilities.data, before)


def _own_bounds(data):
    """The bounds of the data's own weights at their minimizer (round-off gradient)."""
    loss = RestrictedLoss(data, np.ones_like(data.support_mask))
    W, norm = loss.minimize(np.zeros(loss.shape), tol=GRADIENT_ROUNDOFF)
    return pair_bounds(loss, W, norm, data.support_mask)[1]


def test_uniform_weights_certify_what_skewed_weights_cannot(monkeypatch):
    """Context weights over 14 orders of magnitude leave the data's own
    multipliers without a bound; uniform weights certify T = {} (the explicit
    LP agrees), and the limit needs no LP."""
    H, P = non_separable()
    w = np.logspace(-14, 0, H.shape[0])
    data = as_ntp_data(H, P, w)
    assert _own_bounds(data).max() > FARKAS_RTOL
    outside, bounds = farkas_bounds(data, np.ones_like(data.support_mask))
    np.testing.assert_array_equal(outside, ~data.support_mask)
    assert bounds.max() <= FARKAS_RTOL
    forbid_the_lp(monkeypatch)
    limit = implicit_bias_limit(H, P, w)
    assert limit.status == "certified", limit.status
    assert limit.certificate["farkas_bound"] <= FARKAS_RTOL
    order = np.lexsort(H.T[::-1])
    np.testing.assert_array_equal(limit.separable_pairs,
                                  explicit_separable_pairs(H[order], P[order]))
    assert not limit.separable_pairs.any()


@pytest.fixture(scope="module")
def python_tokens():
    """Real next-token statistics: pairs of Python tokens, embedded in 6 dimensions."""
    sequences = load_python_tokens(vocab_size=100, max_files=3)
    X, Y, w, _ = contexts_from_sequences(sequences, context_length=2, embedding="random",
                                         n_features=6, random_state=0)
    return X, sp.csr_matrix(Y), w


def test_rebalanced_probabilities_tighten_the_bounds_on_real_tokens(python_tokens, monkeypatch):
    """With the first stage forced to fail, the offsets lift the smallest
    probabilities: the worst bound drops by orders of magnitude."""
    data = as_ntp_data(*python_tokens)
    mask = np.ones_like(data.support_mask)
    first = farkas_bounds(data, mask)[1]
    monkeypatch.setattr(bounds_module, "FARKAS_RTOL", 0.0)
    second = farkas_bounds(data, mask)[1]
    assert np.all(second <= first)
    assert second.max() <= 1e-2 * first.max()


def test_real_tokens_are_certified_without_the_lp(python_tokens, monkeypatch):
    X, Y, w = python_tokens
    forbid_the_lp(monkeypatch)
    limit = implicit_bias_limit(X, Y, w)
    assert limit.status == "certified", limit.status
    data = limit.data
    expected = explicit_separable_pairs(np.asarray(data.embeddings),
                                        data.probabilities.toarray())
    np.testing.assert_array_equal(limit.separable_pairs, expected)


def test_a_few_newton_steps_settle_non_separable_data_before_any_lp(monkeypatch):
    """Underparameterized data that are not separable at all: the bounds after
    a few Newton steps prove T = {} (as the explicit LP), before the small
    Farkas LP of the NTP-SVM, which can be slow on such data, is tried."""
    import sklearn_ntp._geometry._limit as limit_module

    def no_svm(*args, **kwargs):
        raise AssertionError("the NTP-SVM must not be tried")

    monkeypatch.setattr(limit_module._SvmOnTheWay, "decides", no_svm)
    H, P = non_separable()
    limit = implicit_bias_limit(H, P)
    assert limit.status == "certified", limit.status
    order = np.lexsort(H.T[::-1])
    np.testing.assert_array_equal(limit.separable_pairs,
                                  explicit_separable_pairs(H[order], P[order]))
    assert not limit.separable_pairs.any()


def test_bounds_account_for_probabilities_that_do_not_sum_to_one():
    """The identity assumes sum_v q_jv = 1; a deviation d_j adds
    sum_j pi_j ||h_j|| |d_j| to the gradient norm the bounds divide."""
    data = as_ntp_data(*non_separable())
    loss = RestrictedLoss(data, np.ones_like(data.support_mask))
    W = np.zeros(loss.shape)
    exact = pair_bounds(loss, W, 1.0, data.support_mask)[1]
    scale = 1.0 + np.linspace(0.0, 1e-3, data.n_contexts)
    blocks = loss.softmax_blocks
    loss.softmax_blocks = lambda W: ((rows, q * scale[rows, None]) for rows, q in blocks(W))
    off = pair_bounds(loss, W, 1.0, data.support_mask)[1]
    extra = np.sum(data.weights * np.linalg.norm(data.embeddings, axis=1) * (scale - 1.0))
    j = np.nonzero(~data.support_mask)[0]
    np.testing.assert_allclose(off * scale[j], exact * (1.0 + extra), rtol=1e-12)
