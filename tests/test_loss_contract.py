"""The loss contract (NTPLoss, full or restricted) against independent dense computations."""

import numpy as np
import pytest
from _reference import random_ntp_problem, restricted_ce
from scipy.special import log_softmax, softmax
from sklearn.metrics import log_loss

from sklearn_ntp._data._ntp_data import aggregate_contexts
from sklearn_ntp._loss._contract import Datafit, Restriction
from sklearn_ntp._loss._cross_entropy import NTPLoss
from sklearn_ntp._loss._restricted import RestrictedLoss
from sklearn_ntp._solvers._step_size import smoothness_constant

M, V, D, S = 12, 7, 4, 3


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    H, P = random_ntp_problem(rng, M, V, D, S)
    pi = rng.dirichlet(np.ones(M))
    data = aggregate_contexts(H, P, sample_weight=pi)
    W = rng.standard_normal((V, D))
    # aggregate_contexts sorts the contexts: the references use its order.
    return data, data.embeddings, data.probabilities.toarray(), data.weights, W


def dense_gradient(W, H, P, pi, mask=None, offsets=0.0):
    Z = H @ W.T + offsets
    q = softmax(Z if mask is None else np.where(mask, Z, -np.inf), axis=1)
    return ((q - P) * pi[:, None]).T @ H


def finite_difference_hessian_product(loss, W, E, eps=1e-6):
    return (loss.gradient(W + eps * E) - loss.gradient(W - eps * E)) / (2 * eps)


def test_full_loss_matches_scikit_learn_log_loss_and_dense_formulas(problem):
    data, H, P, pi, W = problem
    loss = NTPLoss(data, np.float64)
    assert isinstance(loss, Datafit)
    # Expanded (context, token) pairs with weights pi_j p_jz: scikit-learn's log loss.
    j, z = np.nonzero(P)
    q = softmax(H @ W.T, axis=1)
    expected = log_loss(z, q[j], sample_weight=pi[j] * P[j, z], labels=np.arange(V))
    value, grad = loss.value_and_grad(W)
    assert value == pytest.approx(expected, rel=1e-12)
    assert loss.value(W) == pytest.approx(expected, rel=1e-12)
    # The formula written out: -sum_j pi_j sum_z p_jz log softmax_z(W h_j).
    assert value == pytest.approx(-np.sum(pi[:, None] * P * log_softmax(H @ W.T, axis=1)),
                                  rel=1e-12)
    np.testing.assert_allclose(grad, dense_gradient(W, H, P, pi), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss.gradient(W), grad, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(loss.softmax(W), q, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("restricted", [False, True])
def test_hessian_product_matches_finite_differences(problem, restricted):
    data, H, P, pi, W = problem
    rng = np.random.default_rng(1)
    mask = data.support_mask | (rng.random((M, V)) < 0.3)
    loss = RestrictedLoss(data, mask) if restricted else NTPLoss(data, np.float64)
    E = rng.standard_normal(W.shape)
    expected = finite_difference_hessian_product(loss, W, E)
    loss.value(W + 1.0)  # the last pass elsewhere: the product must not reuse it
    np.testing.assert_allclose(loss.hessian_product(W, E), expected, rtol=1e-6, atol=1e-9)
    # Symmetric and positive semidefinite, as a Hessian of a convex function.
    F = rng.standard_normal(W.shape)
    assert np.vdot(F, loss.hessian_product(W, E)) == pytest.approx(
        np.vdot(E, loss.hessian_product(W, F)), rel=1e-10)
    assert np.vdot(E, loss.hessian_product(W, E)) >= 0


def test_restriction_to_every_token_is_the_full_loss(problem):
    data, H, P, pi, W = problem
    full, everything = NTPLoss(data, np.float64), RestrictedLoss(data, np.ones((M, V), bool))
    assert everything.value(W) == pytest.approx(full.value(W), rel=1e-14)
    np.testing.assert_allclose(everything.gradient(W), full.gradient(W), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(everything.softmax(W), full.softmax(W), rtol=1e-13)
    E = np.random.default_rng(2).standard_normal(W.shape)
    np.testing.assert_allclose(everything.hessian_product(W, E), full.hessian_product(W, E),
                               rtol=1e-13, atol=1e-16)


def test_restricted_loss_matches_the_dense_restricted_cross_entropy(problem):
    data, H, P, pi, W = problem
    mask = data.support_mask | (np.random.default_rng(3).random((M, V)) < 0.4)
    loss = RestrictedLoss(data, mask)
    assert loss.value(W) == pytest.approx(restricted_ce(W, H, P, pi, mask), rel=1e-12)
    np.testing.assert_allclose(loss.gradient(W), dense_gradient(W, H, P, pi, mask),
                               rtol=1e-12, atol=1e-15)
    q = loss.softmax(W)
    assert np.all(q[~mask] == 0) and np.allclose(q.sum(axis=1), 1.0, rtol=1e-14)


def test_logit_offsets_shift_the_logits(problem):
    data, H, P, pi, W = problem
    rows, columns = np.array([0, 3, 5]), np.array([1, 2, 6])
    values = np.array([0.5, -2.0, 3.0])
    offsets = np.zeros((M, V))
    offsets[rows, columns] = values
    loss = NTPLoss(data, np.float64, restriction=Restriction(offsets=(rows, columns, values)))
    Z = H @ W.T + offsets
    assert loss.value(W) == pytest.approx(
        -np.sum(pi[:, None] * P * log_softmax(Z, axis=1)), rel=1e-12)
    np.testing.assert_allclose(loss.gradient(W), dense_gradient(W, H, P, pi, offsets=offsets),
                               rtol=1e-12, atol=1e-15)


def test_row_view_is_the_loss_of_the_chosen_rows(problem):
    data, H, P, pi, W = problem
    loss = NTPLoss(data, np.float64)
    index, weights = np.array([4, 0, 4, 9]), np.array([0.1, 0.2, 0.3, 0.4])
    view = loss.rows(index, weights)
    np.testing.assert_allclose(view.gradient(W), dense_gradient(W, H[index], P[index], weights),
                               rtol=1e-12, atol=1e-15)
    # One-hot targets replace the rows of P (the sampled (context, token) pairs).
    targets = np.eye(V)[[2, 0, 5, 1]]
    view = loss.rows(index, weights, targets)
    np.testing.assert_allclose(view.gradient(W), dense_gradient(W, H[index], targets, weights),
                               rtol=1e-12, atol=1e-15)


def test_smoothness_bounds_the_curvature(problem):
    data, H, P, pi, W = problem
    loss = NTPLoss(data, np.float64)
    A = np.sqrt(pi)[:, None] * H
    assert loss.smoothness(0.5) == pytest.approx(
        np.linalg.svd(A, compute_uv=False)[0] ** 2 / 2 + 0.5, rel=1e-12)
    assert loss.smoothness() == pytest.approx(smoothness_constant(H, pi), rel=1e-12)
    E = np.random.default_rng(4).standard_normal(W.shape)
    assert np.vdot(E, loss.hessian_product(W, E)) <= loss.smoothness() * np.vdot(E, E)

