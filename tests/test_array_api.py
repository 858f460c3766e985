"""Array API dispatch: array-api-strict and PyTorch give the NumPy results.

The NumPy fit is the reference; the solvers' arithmetic is the same in every
namespace, so float64 results agree to rounding. The loss's kernels (value,
gradient, softmax, Hessian products, on restricted supports with offsets, in
blocks) are checked against dense SciPy formulas. Torch tests skip without torch.
"""

import os
import warnings

import numpy as np
import pytest
import sklearn
from _reference import random_ntp_problem
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._array_api import get_namespace, yield_namespace_device_dtype_combinations
from sklearn.utils.estimator_checks import (
    check_array_api_input,
    check_array_api_mixed_inputs,
)

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp._data._ntp_data import aggregate_contexts
from sklearn_ntp._loss._contract import Restriction
from sklearn_ntp._loss._cross_entropy import NTPLoss
from sklearn_ntp._loss._objective import Objective
from sklearn_ntp._loss._penalty import L2Penalty
from sklearn_ntp._loss._restricted import RestrictedLoss
from sklearn_ntp._solvers._api import SolverOptions
from sklearn_ntp._solvers._descent import SOLVERS
from sklearn_ntp._solvers._tracking import HistoryTracker
from sklearn_ntp._utils._array_api import newton_device
from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import implicit_bias_limit

xps = pytest.importorskip("array_api_strict")
os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scikit-learn's requirement for dispatch
METHODS = ["predict", "predict_proba", "predict_log_proba", "decision_function"]


def namespaces():
    yield pytest.param(xps, id="array_api_strict")
    try:
        import torch
    except ImportError:
        yield pytest.param(None, id="torch", marks=pytest.mark.skip("torch not installed"))
    else:
        yield pytest.param(torch, id="torch")


def host(a):
    return np.asarray(a._array) if hasattr(a, "_array") else np.asarray(a)


@pytest.fixture(scope="module")
def data():
    X, Y, w = make_ntp_data(n_contexts=20, vocab_size=6, n_features=30, support_size=3,
                            n_sequences=200, random_state=0)
    return X, Y.toarray(), w


def fit_both(xp, data, dtype=np.float64, **params):
    X, Y, w = (np.asarray(a, dtype=dtype) for a in data)
    ref = NTPLinearClassifier(**params).fit(X, Y, sample_weight=w)
    with sklearn.config_context(array_api_dispatch=True):
        clf = NTPLinearClassifier(**params).fit(xp.asarray(X), xp.asarray(Y),
                                                sample_weight=xp.asarray(w))
    return ref, clf


# Each namespace rounds differently (torch its norms). Normalized GD at a fixed
# step oscillates near the limit and amplifies rounding: on these data a
# relative change of 1e-15 in X moves its coef_ by 1e-15 after 20 steps, 3e-8
# after 50 and 1e-5 after 200, so it is compared over 20 steps. GD and Adam
# here stay within 1e-13 over 200 steps. The accelerated solver's truncated CG
# amplifies rounding too (1e-15 in X: 5e-15 in coef_ after 5 iterations, 3e-9
# after 10): it is compared over 5.
@pytest.mark.parametrize("xp", list(namespaces()))
@pytest.mark.parametrize("params", [
    {"solver": "gd", "learning_rate": 0.5, "max_iter": 200},
    {"solver": "adam", "learning_rate": 0.05, "max_iter": 200},
    {"solver": "ngd", "learning_rate": 0.1, "max_iter": 20},
    {"solver": "gd", "learning_rate": 0.5, "max_iter": 500, "alpha": 0.01, "tol": 1e-3},
    {"solver": "lbfgs", "alpha": 0.01, "max_iter": 50},
    {"solver": "sgd", "batch_size": 5, "max_iter": 100, "random_state": 0},
    {"solver": "sgd", "batch_size": 5, "sampling": "tokens", "max_iter": 100,
     "random_state": 0},
    {"solver": "accelerated", "max_iter": 5},
], ids=["gd", "adam", "ngd", "gd-ridge", "lbfgs", "sgd-contexts", "sgd-tokens",
        "accelerated"])
def test_same_results_as_numpy_float64(xp, data, params):
    ref, clf = fit_both(xp, data, **params)
    assert clf.n_iter_ == ref.n_iter_ and clf.stop_reason_ == ref.stop_reason_
    for name in ("coef_", "loss_curve_", "finite_component_", "margin_direction_"):
        attribute = getattr(clf, name)
        assert type(attribute) is type(xp.asarray([0.0]))
        np.testing.assert_allclose(host(attribute), getattr(ref, name), rtol=0, atol=1e-10)
    for key, values in ref.history_.items():
        np.testing.assert_allclose(clf.history_[key], values, rtol=0, atol=1e-10)
    X, Y, _ = data
    with sklearn.config_context(array_api_dispatch=True):
        for method in METHODS:
            out = getattr(clf, method)(xp.asarray(X))
            np.testing.assert_allclose(host(out), getattr(ref, method)(X), rtol=0, atol=1e-10)
        score = clf.score(xp.asarray(X), xp.asarray(Y))
    assert abs(score - ref.score(X, Y)) <= 1e-10


@pytest.mark.parametrize("xp", list(namespaces()))
def test_float32_stays_float32(xp, data):
    ref, clf = fit_both(xp, data, dtype=np.float32, max_iter=50)
    assert clf.coef_.dtype == xp.float32
    X = xp.asarray(np.asarray(data[0], dtype=np.float32))
    with sklearn.config_context(array_api_dispatch=True):
        assert clf.predict_proba(X).dtype == xp.float32
    np.testing.assert_allclose(host(clf.coef_), ref.coef_, atol=1e-5)


def test_labels_predict_in_namespace():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([3, 7, 3])
    with sklearn.config_context(array_api_dispatch=True):
        clf = NTPLinearClassifier(max_iter=20).fit(xps.asarray(X), xps.asarray(y))
        pred = clf.predict(xps.asarray(X))
    assert isinstance(pred, type(xps.asarray([0])))
    np.testing.assert_array_equal(host(pred),
                                  NTPLinearClassifier(max_iter=20).fit(X, y).predict(X))


def _counting(original, name, calls, active):
    """``original`` recording ``name`` in ``calls`` while ``active`` is nonempty."""
    def counted(self, *args, **kwargs):
        if active:
            calls.append(name)
        return original(self, *args, **kwargs)
    return counted


@pytest.mark.parametrize("learning_rate, reason", [(0.5, "tol"), (5.0, "diverged")])
def test_device_tests_every_history_every(monkeypatch, data, learning_rate, reason):
    # Off the host the stop and divergence tests run every history_every steps.
    monkeypatch.setattr("sklearn_ntp._solvers._descent.in_host_memory", lambda W: False)
    params = {"learning_rate": learning_rate, "max_iter": 3000, "tol": 0.05,
              "history_every": 7, "compute_implicit_bias": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref, clf = fit_both(xps, data, **params)
    assert clf.stop_reason_ == ref.stop_reason_ == reason
    # tol: the first tested iterate at or after the host's stop; diverged: the
    # last tested iterate at or before the host's last finite one.
    tested = -(-ref.n_iter_ // 7) * 7 if reason == "tol" else ref.n_iter_ // 7 * 7
    assert clf.n_iter_ == tested
    assert host(clf.loss_curve_).shape == (clf.n_iter_ + 1,)
    assert np.all(np.isfinite(host(clf.loss_curve_)))
    # The returned iterate is the NumPy run's iterate of the same index.
    same = NTPLinearClassifier(**{**params, "max_iter": clf.n_iter_, "tol": 0.0}).fit(
        data[0], data[1], sample_weight=data[2])
    np.testing.assert_allclose(host(clf.coef_), same.coef_, rtol=0, atol=1e-10)


def array_api_params():
    for ns, device, dtype in yield_namespace_device_dtype_combinations():
        yield pytest.param(ns, device, dtype, id=f"{ns}-{device}-{dtype}")


@pytest.mark.parametrize("namespace, device, dtype", list(array_api_params()))
def test_sklearn_array_api_checks(namespace, device, dtype):
    est = NTPLinearClassifier(max_iter=50, learning_rate=0.01)
    check_array_api_input("NTPLinearClassifier", est, array_namespace=namespace,
                          device_name=device, dtype_name=dtype, check_values=True,
                          check_sample_weight=True)


def test_sklearn_mixed_namespace_check():
    from sklearn.utils._array_api import NamespaceAndDevice

    est = NTPLinearClassifier(max_iter=50, learning_rate=0.01)
    check_array_api_mixed_inputs(
        "NTPLinearClassifier", est, NamespaceAndDevice("array_api_strict", None),
        NamespaceAndDevice("numpy", None))


def test_device_run_reads_scalars_once_per_history_every(monkeypatch, data):
    # Count every conversion of an array-api-strict array to a Python scalar or
    # a NumPy array inside the solver, with the loop run as on a GPU.
    from sklearn_ntp._solvers import _descent as _solvers

    monkeypatch.setattr("sklearn_ntp._solvers._descent.in_host_memory", lambda W: False)
    Array, calls, active = type(xps.asarray(0.0)), [], []
    for name in ("__float__", "__bool__", "__int__", "__index__", "__array__"):
        if hasattr(Array, name):
            monkeypatch.setattr(Array, name, _counting(getattr(Array, name), name, calls, active))

    def solver(*args):
        active.append(True)
        try:
            return gd(*args)
        finally:
            active.clear()

    gd = _solvers.SOLVERS["gd"]
    monkeypatch.setitem(_solvers.SOLVERS, "gd", solver)
    X, Y, w = (xps.asarray(a) for a in data)
    with sklearn.config_context(array_api_dispatch=True):
        clf = NTPLinearClassifier(max_iter=300, history_every=10, tol=0.0)
        clf.fit(X, Y, sample_weight=w)
    assert clf.n_iter_ == 300 and len(clf.history_["iteration"]) == 31
    # 31 tests (iterations 0, 10, ..., 300), each reading the objective and the
    # cross-entropy, and the initial check: far fewer than one per iteration.
    assert 0 < len(calls) <= 2 * 31 + 1, calls


@pytest.mark.parametrize("xp", list(namespaces()))
def test_intercept_and_non_separable_data_same_results_as_numpy(xp):
    """An intercept (augmented contexts) and data with no separable pair, whose
    subspace G is tracked through an orthonormal basis rather than generators."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = rng.integers(0, 4, 30)
    params = {"solver": "gd", "max_iter": 100, "fit_intercept": True}
    ref = NTPLinearClassifier(**params).fit(X, y)
    assert ref.margin_direction_ is None  # m = 30 contexts in 4 dimensions
    with sklearn.config_context(array_api_dispatch=True):
        clf = NTPLinearClassifier(**params).fit(xp.asarray(X), xp.asarray(y))
        proba = clf.predict_proba(xp.asarray(X))
    for name in ("coef_", "intercept_", "finite_component_"):
        np.testing.assert_allclose(host(getattr(clf, name)), getattr(ref, name),
                                   rtol=0, atol=1e-10)
    np.testing.assert_allclose(host(proba), ref.predict_proba(X), rtol=0, atol=1e-10)
    for key, values in ref.history_.items():
        np.testing.assert_allclose(clf.history_[key], values, rtol=0, atol=1e-10)


# -- the loss's kernels in a namespace, block by block ---------------------------------

M, V, D = 12, 7, 4


def wrapped(module):
    """scikit-learn's namespace of ``module``'s arrays (as inside a fit)."""
    with sklearn.config_context(array_api_dispatch=True):
        return get_namespace(module.asarray([0.0]))[0]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    H, P = random_ntp_problem(rng, M, V, D, 3)
    data = aggregate_contexts(H, P, sample_weight=rng.dirichlet(np.ones(M)))
    mask = data.support_mask | (rng.random((M, V)) < 0.3)
    rows, columns = np.nonzero(mask)
    picked = rng.choice(len(rows), size=5, replace=False)
    offsets = (rows[picked], columns[picked], rng.standard_normal(5))
    return data, mask, offsets, rng.standard_normal((V, D)), rng.standard_normal((V, D))


def dense_kernels(data, restriction, W, E):
    """Value, gradient, softmax and Hessian product at ``W`` along ``E``, dense (SciPy)."""
    H, P, pi = data.embeddings, data.probabilities.toarray(), data.weights
    Z = H @ W.T
    if restriction.offsets is not None:
        rows, columns, values = restriction.offsets
        Z[rows, columns] += values
    target = -pi @ np.sum(P * Z, axis=1)
    if restriction.mask is not None:
        Z[~restriction.mask] = -np.inf
    q = softmax(Z, axis=1)
    top = Z.max(axis=1)
    value = pi @ (top + np.log(np.exp(Z - top[:, None]).sum(axis=1))) + target
    dZ = H @ E.T
    curvature = pi[:, None] * q * (dZ - np.sum(q * dZ, axis=1, keepdims=True))
    return value, (pi[:, None] * (q - P)).T @ H, q, curvature.T @ H


def device_kernels(loss, xp, W, E):
    with sklearn.config_context(array_api_dispatch=True):
        value, grad = loss.value_and_grad(W)
        blocks = [(rows, host(q)) for rows, q in loss.softmax_blocks(W)]
        points = [(float(p.value), host(p.probabilities), host(p.logits))
                  for p in loss.point_blocks(W)]
        return (float(value), host(grad), host(loss.softmax(W)),
                host(loss.hessian_product(W, E)), blocks, points)


@pytest.mark.parametrize("xp", list(namespaces()))
@pytest.mark.parametrize("restricted", [False, True], ids=["full", "restricted-offsets"])
@pytest.mark.parametrize("rows", [1, 5, M])
def test_loss_kernels_in_a_namespace_equal_dense_ones(xp, problem, restricted, rows):
    data, mask, offsets, W, E = problem
    restriction = Restriction(mask, offsets) if restricted else Restriction()
    # Blocks of ``rows`` contexts: two float64 (rows, V) arrays.
    loss = NTPLoss(data, np.float64, wrapped(xp), None, restriction=restriction,
                   working_memory=rows * 2 * V * 8 / 2 ** 20)
    assert len(loss._blocks) == -(-M // rows)
    value, grad, q, product = dense_kernels(data, restriction, W, E)
    got = device_kernels(loss, xp, xp.asarray(W), xp.asarray(E))
    assert got[0] == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(got[1], grad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[2], q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[3], product, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([b for _, b in got[4]]), q, rtol=0, atol=1e-12)
    values, probabilities, logits = zip(*got[5])
    assert sum(values) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(np.concatenate(probabilities), q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.concatenate(logits), data.embeddings @ W.T, rtol=0,
                               atol=1e-12)


def test_block_wise_kernels_never_read_the_device(problem, monkeypatch):
    # Every conversion of an array-api-strict array to a Python scalar or a
    # NumPy array is counted while the kernels run over 4 blocks.
    data, mask, offsets, W, E = problem
    Array, calls, active = type(xps.asarray(0.0)), [], [True]
    for name in ("__float__", "__bool__", "__int__", "__index__", "__array__"):
        if hasattr(Array, name):
            monkeypatch.setattr(Array, name, _counting(getattr(Array, name), name, calls, active))
    loss = NTPLoss(data, np.float64, wrapped(xps), None, restriction=Restriction(mask, offsets),
                   working_memory=3 * 2 * V * 8 / 2 ** 20)
    W, E = xps.asarray(W), xps.asarray(E)
    with sklearn.config_context(array_api_dispatch=True):
        loss.value_and_grad(W)
        loss.hessian_product(W, E)
        loss.softmax(W)
        list(loss.point_blocks(W))
    assert len(loss._blocks) == 4 and calls == []


@pytest.mark.parametrize("xp", list(namespaces()))
def test_hessian_products_at_a_new_point_are_not_the_last_ones(xp, problem):
    # A single block keeps the softmax of its last point: it must follow W.
    data, _, _, W, E = problem
    loss = NTPLoss(data, np.float64, wrapped(xp), None, working_memory=1024)
    dense_at = dense_kernels(data, Restriction(), 2 * W, E)[3]
    with sklearn.config_context(array_api_dispatch=True):
        loss.hessian_product(xp.asarray(W), xp.asarray(E))
        np.testing.assert_allclose(host(loss.hessian_product(xp.asarray(2 * W),
                                                             xp.asarray(E))),
                                   dense_at, rtol=0, atol=1e-12)


def product_dtypes(monkeypatch):
    """The dtype names of every Hessian product made from now on ("host" on NumPy)."""
    seen, original = [], NTPLoss.hessian_product

    def recorded(self, W, E):
        seen.append("host" if self._on_host else str(self.H.dtype).rsplit(".")[-1])
        return original(self, W, E)

    monkeypatch.setattr(NTPLoss, "hessian_product", recorded)
    return seen


@pytest.mark.parametrize("xp", list(namespaces()))
@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("restricted", [False, True], ids=["full", "restricted-offsets"])
def test_restricted_newton_on_a_device_finds_the_host_minimizer(xp, problem, precision,
                                                                restricted, monkeypatch):
    data, mask, _, _, _ = problem
    # On the supports themselves the restricted loss has a minimizer (no token
    # of S~_j is outside S_j to be separated); offsets on a few support pairs.
    rows, columns = np.nonzero(data.support_mask)
    offsets = (rows[::7], columns[::7], np.linspace(-1.0, 1.0, len(rows[::7])))
    args = (data.support_mask, offsets) if restricted else (np.ones_like(mask),)
    host_loss = RestrictedLoss(data, *args)
    W_host, _ = host_loss.minimize(np.zeros(host_loss.shape), tol=1e-12)
    namespace = wrapped(xp)
    seen = product_dtypes(monkeypatch)
    with sklearn.config_context(array_api_dispatch=True), newton_device(
            namespace, None, getattr(namespace, precision)):
        loss = RestrictedLoss(data, *args)
        W, grad_norm = loss.minimize(np.zeros(loss.shape), tol=1e-12)
    assert isinstance(W, np.ndarray) and W.dtype == np.float64
    # Every product on the device; float32 ones first, then float64 to finish.
    assert seen[0] == precision and seen[-1] == "float64" and "host" not in seen
    # The gradient norm is the host's float64 one at the returned W~.
    assert grad_norm == np.linalg.norm(host_loss.gradient(W)) <= 1e-12 * loss.scale
    # float64 products take the host's steps. float32 ones take another path,
    # which the stopping test (1e-12 on the gradient) ends within about 1e-11
    # of the host's point along the flattest directions; W~ keeps no float32
    # round-off (a token outside every support keeps a zero row).
    atol = 1e-12 if precision == "float64" else 1e-10
    np.testing.assert_allclose(W, W_host, rtol=0, atol=atol)
    np.testing.assert_allclose(loss.softmax(W), host_loss.softmax(W_host), rtol=0, atol=atol)
    outside = ~np.any(args[0], axis=0)
    assert np.all(np.abs(W[outside]) <= 1e-13)


def test_float32_products_on_the_host_find_the_float64_minimizer(problem, monkeypatch):
    data = problem[0]
    full = np.ones((M, V), dtype=bool)
    expected, _ = RestrictedLoss(data, full).minimize(np.zeros((V, D)), tol=1e-12)
    seen = product_dtypes(monkeypatch)
    with newton_device(np, dtype=np.float32):
        W, grad_norm = RestrictedLoss(data, full).minimize(np.zeros((V, D)), tol=1e-12)
    assert seen[0] == "host" and grad_norm <= 1e-12 * RestrictedLoss(data, full).scale
    np.testing.assert_allclose(W, expected, rtol=0, atol=1e-10)


def test_newton_products_refuse_other_dtypes(problem):
    with newton_device(xps, dtype=xps.int64), pytest.raises(ValueError, match="dtype=.*int64"):
        RestrictedLoss(problem[0], problem[1])


@pytest.mark.parametrize("xp", list(namespaces()))
def test_the_limit_with_newton_solves_on_a_device_is_the_host_limit(xp, monkeypatch):
    # Random probabilities in 8 dimensions: W~ needs Newton's method, and some
    # off-support pairs are separable (a margin direction).
    rng = np.random.default_rng(0)
    H, P = random_ntp_problem(rng, M, V, 8, 3)
    data = aggregate_contexts(H, P, sample_weight=rng.dirichlet(np.ones(M)))
    expected = implicit_bias_limit(data)
    seen = product_dtypes(monkeypatch)
    with newton_device(xp):
        limit = implicit_bias_limit(data)
    assert seen and "host" not in seen
    assert limit.certified and expected.certified
    np.testing.assert_allclose(limit.finite_component, expected.finite_component, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(limit.margin_direction, expected.margin_direction, rtol=0,
                               atol=1e-12)
    assert limit.loss_infimum == pytest.approx(expected.loss_infimum, rel=1e-12)


def run_solver(name, data, W0, xp=None, alpha=0.0, **options):
    """``(coef, n_iter)`` of the solver ``name`` on ``data`` from ``W0``, in ``xp``."""
    loss = NTPLoss(data, np.float64, xp, None)
    objective = Objective(loss, L2Penalty(alpha))
    W0 = W0 if xp is None else xp.asarray(W0)
    result = SOLVERS[name](objective, W0, SolverOptions(**options),
                           HistoryTracker(data.entropy))
    return host(result.coef), result.n_iter


@pytest.mark.parametrize("xp", list(namespaces()))
@pytest.mark.parametrize("name, alpha, options", [
    ("lbfgs", 0.01, {"max_iter": 30, "tol": 1e-8}),
    ("accelerated", 0.0, {"max_iter": 5, "tol": 0.0}),
])
def test_host_driven_solvers_evaluate_on_the_device(xp, data, name, alpha, options):
    # lbfgs (scipy on the host) and accelerated, called as the classifier would
    # with arrays of a namespace: same iterates as NumPy.
    X, Y, w = data
    contexts = aggregate_contexts(X, Y, w)
    W0 = np.zeros((contexts.n_tokens, contexts.n_features))
    expected, n_iter = run_solver(name, contexts, W0, None, alpha, **options)
    with sklearn.config_context(array_api_dispatch=True):
        coef, device_n_iter = run_solver(name, contexts, W0, wrapped(xp), alpha, **options)
    assert device_n_iter == n_iter
    np.testing.assert_allclose(coef, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("xp", list(namespaces()))
def test_block_wise_fit_in_a_namespace_equals_numpy(xp, data):
    # Blocks of 3 contexts (6 tokens, float64, two arrays a block).
    with sklearn.config_context(working_memory=3 * 2 * 6 * 8 / 2 ** 20):
        ref, clf = fit_both(xp, data, solver="gd", max_iter=50, compute_implicit_bias=False)
    np.testing.assert_allclose(host(clf.coef_), ref.coef_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(host(clf.loss_curve_), ref.loss_curve_, rtol=0, atol=1e-12)
