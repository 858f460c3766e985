"""Fits, predictions, scores and the limit on row-chunked dask arrays, on a real cluster.

One ``LocalCluster`` of two worker processes serves the module (started by
the first test that needs it, closed after the last); the test of a data set
larger than a worker's memory starts its own. Every result is compared with
the in-memory NumPy run, or with an independent computation.
"""

import os
import signal
import threading
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from sklearn_ntp import NTPLinearClassifier  # noqa: E402
from sklearn_ntp._checker import NTPSeparabilityChecker  # noqa: E402
from sklearn_ntp._data._dask import aggregate_dask_contexts  # noqa: E402
from sklearn_ntp._loss._cross_entropy import NTPLoss  # noqa: E402
from sklearn_ntp._loss._dask import DaskNTPLoss  # noqa: E402
from sklearn_ntp.implicit_bias import (  # noqa: E402
    aggregate_contexts,
    check_ntp_separability,
    implicit_bias_limit,
)

#: Solvers whose dask fit must equal the in-memory one (sgd samples: own tests).
DETERMINISTIC = ["gd", "ngd", "adam", "lbfgs", "accelerated"]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       memory_limit="1GiB", dashboard_address=None)
    # Not the default client: the tests without a client must not find it.
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def _repeated_rows(n_distinct=25, n_samples=240, n_features=4, n_tokens=5, seed=0):
    """Rows drawn with repetition from a few distinct ones: every context recurs
    in several chunks of any chunking."""
    rng = np.random.default_rng(seed)
    distinct = rng.standard_normal((n_distinct, n_features))
    X = distinct[rng.integers(0, n_distinct, n_samples)]
    return X, rng.integers(0, n_tokens, n_samples), rng.random(n_samples) + 0.1


def _independent_contexts(X, Y, w):
    """Distinct rows with their weights and mean targets, by a dict of row bytes."""
    weight, target = defaultdict(float), defaultdict(float)
    for row, y_row, w_row in zip(X, Y, w):
        key = row.tobytes()
        weight[key] += w_row
        target[key] = target[key] + w_row * y_row
    total = sum(weight.values())
    return {key: (weight[key] / total, target[key] / weight[key]) for key in weight}


@pytest.mark.parametrize("soft", [False, True])
def test_contexts_split_over_chunks_are_one_context(client, soft):
    X, y, w = _repeated_rows()
    Y = np.eye(5)[y] * 0.75 + 0.05 if soft else np.eye(5)[y]
    expected = _independent_contexts(X, Y, w)
    chunks = 31  # every one of the 25 contexts occurs in several of the 8 chunks
    assert all(len({i // chunks for i in np.flatnonzero((X == row).all(axis=1))}) > 1
               for row in np.unique(X, axis=0))
    data = aggregate_dask_contexts(da.from_array(X, chunks=chunks),
                                   da.from_array(Y if soft else y, chunks=chunks),
                                   da.from_array(w, chunks=chunks), client=client)
    gathered = data.gather()
    assert data.n_contexts == len(expected) == gathered.n_contexts
    for h, pi, p in zip(gathered.embeddings, gathered.weights,
                        gathered.probabilities.toarray()):
        ref_pi, ref_p = expected[h.tobytes()]
        assert pi == pytest.approx(ref_pi, rel=1e-13)
        np.testing.assert_allclose(p, ref_p, rtol=1e-13, atol=1e-15)
    # The order and the contexts of aggregate_contexts, bit for bit.
    in_memory = aggregate_contexts(X, Y if soft else y, w)
    np.testing.assert_array_equal(gathered.embeddings, in_memory.embeddings)
    assert data.entropy == pytest.approx(in_memory.entropy, rel=1e-13)


@pytest.mark.parametrize("solver", DETERMINISTIC)
def test_fit_equals_in_memory_fit(client, solver):
    X, y, w = _repeated_rows()
    if solver == "accelerated":
        # Its line searches amplify a change of the weights in the last bit (summed
        # in another order on the workers) to O(1) in 40 iterations, in memory too;
        # unit weights give bitwise the same contexts, weights and targets.
        w = np.ones_like(w)
    params = dict(solver=solver, max_iter=40, alpha=0.05 if solver == "lbfgs" else 0.0,
                  compute_implicit_bias=solver == "gd", random_state=0)
    expected = NTPLinearClassifier(**params).fit(X, y, sample_weight=w)
    with client.as_current():
        fitted = NTPLinearClassifier(**params).fit(
            da.from_array(X, chunks=50), da.from_array(y, chunks=50),
            sample_weight=da.from_array(w, chunks=50))
    assert fitted.n_iter_ == expected.n_iter_
    scale = np.abs(expected.coef_).max()
    np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(fitted.loss_curve_, expected.loss_curve_, rtol=1e-10)
    if solver == "gd":  # the reference limit of the fit, from the gathered contexts
        np.testing.assert_allclose(fitted.finite_component_, expected.finite_component_,
                                   atol=1e-10)


def test_contexts_stay_on_the_workers_without_the_reference_limit(monkeypatch):
    # Gathering every distinct context to the client is what scaling out avoids;
    # only the reference limit (compute_implicit_bias=True) needs it.
    from sklearn_ntp._data._dask import DaskNTPData

    def refuse(self):
        raise AssertionError("the contexts were gathered to the client")

    monkeypatch.setattr(DaskNTPData, "gather", refuse)
    X, y, _ = _repeated_rows()
    fitted = NTPLinearClassifier(max_iter=5, compute_implicit_bias=False).fit(
        da.from_array(X, chunks=(50, -1)), da.from_array(y, chunks=50))
    assert fitted.finite_component_ is None
    with pytest.raises(AssertionError, match="gathered"):
        NTPLinearClassifier(max_iter=5).fit(da.from_array(X, chunks=(50, -1)), y)


def test_predictions_are_lazy_and_score_is_a_reduction(client):
    X, y, _ = _repeated_rows()
    model = NTPLinearClassifier(max_iter=30, fit_intercept=True).fit(X, y)
    X_dask = da.from_array(X, chunks=50)
    with client.as_current():
        for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
            lazy = getattr(model, method)(X_dask)
            assert isinstance(lazy, da.Array)
            assert lazy.chunks[0] == X_dask.chunks[0]
            np.testing.assert_allclose(lazy.compute(), getattr(model, method)(X), rtol=1e-12)
        assert model.score(X_dask, da.from_array(y, chunks=50)) == pytest.approx(
            model.score(X, y), rel=1e-12)


def test_sgd_samples_the_gathered_contexts(client):
    """sgd's own invariants: a full batch is gradient descent; a sampled gradient is
    the gradient of the drawn contexts."""
    X, y, _ = _repeated_rows()
    X_dask = da.from_array(X, chunks=50)
    with client.as_current():
        full = NTPLinearClassifier(solver="sgd", learning_rate=0.5, max_iter=20).fit(X_dask, y)
        gd = NTPLinearClassifier(solver="gd", learning_rate=0.5, max_iter=20).fit(X_dask, y)
        np.testing.assert_allclose(full.coef_, gd.coef_, rtol=0, atol=1e-12)
        loss = DaskNTPLoss(aggregate_dask_contexts(X_dask, y, client=client))
        index, weights = np.array([0, 3, 3, 7]), np.array([0.1, 0.2, 0.3, 0.4])
        W = np.random.default_rng(1).standard_normal(loss.shape)
        expected = NTPLoss(aggregate_contexts(X, y)).rows(index, weights).gradient(W)
        np.testing.assert_allclose(loss.rows(index, weights).gradient(W), expected,
                                   rtol=1e-13)


def test_no_client_uses_the_default_scheduler():
    with pytest.raises(ValueError):
        distributed.default_client()  # no client is running here
    X, y, _ = _repeated_rows(seed=2)
    expected = NTPLinearClassifier(max_iter=25).fit(X, y)
    fitted = NTPLinearClassifier(max_iter=25).fit(da.from_array(X, chunks=60), y)
    np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=0, atol=1e-12)


def test_the_limit_on_the_cluster_equals_the_in_memory_limit(client):
    X, y, _ = _repeated_rows(n_distinct=8, n_samples=120, n_features=3, n_tokens=4, seed=3)
    X_dask, y_dask = da.from_array(X, chunks=25), da.from_array(y, chunks=25)
    expected = implicit_bias_limit(X, y)
    with client.as_current():
        limit = implicit_bias_limit(X_dask, y_dask)
        report = check_ntp_separability(X_dask, y_dask)
        checker = NTPSeparabilityChecker(on_failure="ignore").fit(X_dask, y_dask)
    np.testing.assert_array_equal(limit.separable_pairs, expected.separable_pairs)
    np.testing.assert_array_equal(report.limit.separable_pairs, expected.separable_pairs)
    np.testing.assert_array_equal(checker.separable_pairs_, expected.separable_pairs)
    assert limit.status == expected.status
    np.testing.assert_allclose(limit.finite_component, expected.finite_component, atol=1e-10)
    assert limit.loss_infimum == pytest.approx(expected.loss_infimum, rel=1e-10)


# --------------------------------------------------------------------------- bad input
def test_column_chunks_are_refused():
    X, y, _ = _repeated_rows()
    with pytest.raises(ValueError, match=r"X is chunked along its columns.*rechunk"):
        NTPLinearClassifier().fit(da.from_array(X, chunks=(50, 2)), y)


def test_unknown_chunk_sizes_are_computed_once():
    X, y, _ = _repeated_rows(seed=4)
    keep = X[:, 0] > -0.5
    X_dask, y_dask = da.from_array(X, chunks=50), da.from_array(y, chunks=50)
    X_nan, y_nan = X_dask[X_dask[:, 0] > -0.5], y_dask[X_dask[:, 0] > -0.5]
    assert np.isnan(X_nan.shape[0])
    expected = NTPLinearClassifier(max_iter=20).fit(X[keep], y[keep])
    fitted = NTPLinearClassifier(max_iter=20).fit(X_nan, y_nan)
    np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=0, atol=1e-12)


def test_mixed_inputs_follow_x():
    """A dask X takes in-memory y and weights (split like X); an in-memory X refuses dask."""
    X, y, w = _repeated_rows(seed=5)
    expected = NTPLinearClassifier(max_iter=20).fit(X, y, sample_weight=w)
    fitted = NTPLinearClassifier(max_iter=20).fit(da.from_array(X, chunks=70), y,
                                                  sample_weight=w)
    np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=0, atol=1e-12)
    sparse = NTPLinearClassifier(max_iter=20).fit(
        da.from_array(X, chunks=70), sp.csr_matrix(np.eye(5)[y]), sample_weight=w)
    np.testing.assert_allclose(sparse.coef_, expected.coef_, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="X is an in-memory array but y or sample_weight"):
        NTPLinearClassifier().fit(X, da.from_array(y, chunks=70))
    with pytest.raises(ValueError, match="y has 10 rows but X has 240"):
        NTPLinearClassifier().fit(da.from_array(X, chunks=70), y[:10])


def test_a_lost_worker_is_recomputed_or_reported(client):
    """Killing a worker process mid-fit: the fit completes with the in-memory
    ``coef_`` (dask recomputes the lost partitions) or raises; never a wrong one."""
    X, y, _ = _repeated_rows(n_distinct=400, n_samples=4000, n_features=16, n_tokens=50)
    params = dict(max_iter=80, compute_implicit_bias=False, tol=0.0)
    expected = NTPLinearClassifier(**params).fit(X, y)
    pids = list(client.run(os.getpid).values())
    timer = threading.Timer(0.5, os.kill, (pids[0], signal.SIGKILL))
    with client.as_current():
        timer.start()
        try:
            fitted = NTPLinearClassifier(**params).fit(da.from_array(X, chunks=1000), y)
        except RuntimeError as exc:
            assert "worker" in str(exc)
        else:
            assert timer.finished.is_set()  # the worker died before the fit ended
            np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=0, atol=1e-10)
        finally:
            timer.join()
    client.wait_for_workers(2, timeout=30)  # the nanny restarts it for the next tests


def _gaussian_block(index, rows, n_features, n_tokens):
    """Block ``index`` of a data set, the same in any process."""
    rng = np.random.default_rng([7, index])
    return rng.standard_normal((rows, n_features)), rng.integers(0, n_tokens, rows)


#: 1.41 GB of contexts (42 blocks of 2,048 x 2,048) for two workers of 1.25 GiB each.
LARGE_BLOCKS, LARGE_ROWS, LARGE_FEATURES, LARGE_TOKENS = 42, 2048, 2048, 4
WORKER_MEMORY = 5 * 2 ** 28


def _larger_than_a_worker():
    """``(X, y)`` as dask arrays made on the workers, and the same in memory."""
    import dask

    blocks = [dask.delayed(_gaussian_block, nout=2)(i, LARGE_ROWS, LARGE_FEATURES, LARGE_TOKENS)
              for i in range(LARGE_BLOCKS)]
    X = da.concatenate([da.from_delayed(b[0], (LARGE_ROWS, LARGE_FEATURES), np.float64)
                        for b in blocks])
    y = da.concatenate([da.from_delayed(b[1], (LARGE_ROWS,), np.int64) for b in blocks])
    assert X.nbytes > WORKER_MEMORY
    local = [_gaussian_block(i, LARGE_ROWS, LARGE_FEATURES, LARGE_TOKENS)
             for i in range(LARGE_BLOCKS)]
    return (X, y), (np.concatenate([b[0] for b in local]), np.concatenate([b[1] for b in local]))


def _on_small_workers(func, *args):
    """``func(*args)`` on two worker processes of :data:`WORKER_MEMORY` each,
    checking that no worker was restarted (a worker past 95% of its
    ``memory_limit`` would be)."""
    with distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, memory_limit=WORKER_MEMORY,
            dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        result = func(*args)
        assert set(client.run(os.getpid).values()) == pids
    return result


@pytest.mark.slow
def test_a_data_set_larger_than_a_worker_fits_on_the_cluster():
    """1.41 GB of contexts on two workers of 1.25 GiB each: made on the workers,
    merged and fitted there, equal to the in-memory fit.

    Each worker peaks at about 1.0 GiB resident (measured: its 0.66 GiB share
    of the contexts, the pieces of the merge and the process itself), below
    the 80% at which dask pauses a worker. dask's memory management is left
    as it is.
    """
    on_dask, in_memory = _larger_than_a_worker()
    params = dict(max_iter=3, compute_implicit_bias=False)
    fitted = _on_small_workers(NTPLinearClassifier(**params).fit, *on_dask)
    expected = NTPLinearClassifier(**params).fit(*in_memory)
    np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=0,
                               atol=1e-10 * np.abs(expected.coef_).max())


@pytest.mark.slow
def test_the_limit_of_a_data_set_larger_than_a_worker_on_the_cluster():
    """The same 1.41 GB: merged on the workers, the distinct contexts fetched
    by the client a partition at a time (all at once, each worker would
    serialize its whole share and be killed; measured peak 0.93 GiB), and the
    limit equal to the in-memory one (about two minutes each)."""
    on_dask, in_memory = _larger_than_a_worker()
    limit = _on_small_workers(implicit_bias_limit, *on_dask)
    expected = implicit_bias_limit(*in_memory)
    assert limit.status == expected.status == "certified"
    np.testing.assert_array_equal(limit.separable_pairs, expected.separable_pairs)
    np.testing.assert_allclose(limit.finite_component, expected.finite_component, rtol=0,
                               atol=1e-10 * np.abs(expected.finite_component).max())
    assert limit.loss_infimum == pytest.approx(expected.loss_infimum, rel=1e-10)


def test_partitions_are_sized_and_gathered_in_order_in_small_requests(client, monkeypatch):
    """dask sizes a partition by its arrays (not the 56 bytes of the object),
    and gathering in requests of a partition each keeps the order."""
    import sys

    import sklearn_ntp._data._dask as dask_data

    X, y, _ = _repeated_rows(seed=6)
    with client.as_current():
        data = aggregate_dask_contexts(da.from_array(X, chunks=40), y)
        whole = data.gather()
        sizes = client.nbytes([p.key for p in data.parts], summary=False)
        at_once = client.gather(data.parts)
        monkeypatch.setattr(dask_data, "GATHER_BYTES", 1)
        one_by_one = data.backend.gather(data.parts)
    assert len(data.parts) > 1
    assert sum(sizes.values()) >= whole.embeddings.nbytes
    assert sys.getsizeof(whole) >= whole.embeddings.nbytes + whole.probabilities.data.nbytes
    assert len(one_by_one) == len(at_once)
    for piece, reference in zip(one_by_one, at_once):
        np.testing.assert_array_equal(piece.embeddings, reference.embeddings)
        np.testing.assert_array_equal(piece.probabilities.toarray(),
                                      reference.probabilities.toarray())
