"""Array API dispatch: array-api-strict and PyTorch give the NumPy results.

The NumPy fit is the reference; the solvers' arithmetic is the same in every
namespace, so float64 results agree to rounding. Torch tests skip without torch.
"""

import os
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._array_api import yield_namespace_device_dtype_combinations
from sklearn.utils.estimator_checks import (
    check_array_api_input,
    check_array_api_mixed_inputs,
)

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import make_ntp_data

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
# here stay within 1e-13 over 200 steps.
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
], ids=["gd", "adam", "ngd", "gd-ridge", "lbfgs", "sgd-contexts", "sgd-tokens"])
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
