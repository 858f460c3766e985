"""Per-iteration cost of a dask fit against the in-memory fit, and weak scaling on paper.

    python benchmarks/bench_dask.py            # m = 1e5, V = 1000, d = 128 (~2 min)
    python benchmarks/bench_dask.py --large    # also m = 20000, V = 50257, d = 768 float32

Both fits run on the same machine: the in-memory one in this process (BLAS on
both cores), the dask one on a ``LocalCluster`` of two single-threaded worker
processes, on data from :func:`~sklearn_ntp.datasets.make_zipf_ntp_data`
chunked by rows. The time of an iteration of gradient descent is
``(t(fit, b iterations) - t(fit, a iterations)) / (b - a)`` for each: set-up
(aggregation, moving the data to the workers) cancels out. The ratio is that
of one run.

Weak scaling on paper: with ``P`` workers each holding as many contexts as a
worker here, an iteration costs the measured per-worker time of the partial
loss and gradient (one partition of ``m / 2`` contexts, one thread), plus
``W`` sent down and the partial gradients added up a tree of depth
``ceil(log2 P)``, each hop one message of ``V x d`` float64 at a bandwidth of
10 Gbit/s, plus the scheduling overhead measured here at two workers (dask
time minus the partial pass), scaled by the depth of the tree.
"""

import argparse
import math
import time
import warnings

import numpy as np

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import make_zipf_ntp_data

#: Network bandwidth assumed for the weak-scaling estimate (10 Gbit/s).
BANDWIDTH = 1.25e9
#: Worker counts of the estimate.
WORKERS = (2, 16, 128)
SIZES = {"small": dict(n_contexts=100_000, vocab_size=1000, n_features=128,
                       dtype=np.float64, iterations=(2, 7)),
         "large": dict(n_contexts=20_000, vocab_size=50_257, n_features=768,
                       dtype=np.float32, iterations=(1, 2))}


def fit_seconds(X, Y, w, max_iter):
    clf = NTPLinearClassifier(max_iter=max_iter, tol=0.0, compute_implicit_bias=False)
    start = time.perf_counter()
    clf.fit(X, Y, sample_weight=w)
    return time.perf_counter() - start


def per_iteration(X, Y, w, iterations):
    a, b = iterations
    return (fit_seconds(X, Y, w, b) - fit_seconds(X, Y, w, a)) / (b - a)


def partition_seconds(X, Y, w, n_parts):
    """The time of one partition's value and gradient, alone in this process."""
    from threadpoolctl import threadpool_limits

    from sklearn_ntp._loss._cross_entropy import NTPLoss
    from sklearn_ntp.implicit_bias import aggregate_contexts

    rows = X.shape[0] // n_parts
    loss = NTPLoss(aggregate_contexts(X[:rows], Y[:rows], w[:rows]))
    W = np.zeros(loss.shape, dtype=X.dtype)
    with threadpool_limits(1):
        start = time.perf_counter()
        loss.value_and_grad(W)
        return time.perf_counter() - start


def weak_scaling(compute, overhead, V, d):
    """Seconds per iteration at each worker count (see the module docstring)."""
    message = V * d * 8 / BANDWIDTH
    return {P: compute + math.ceil(math.log2(P)) * (overhead + 2 * message)
            for P in WORKERS}


def run(name, client, da):
    size = SIZES[name]
    X, Y, w = make_zipf_ntp_data(size["n_contexts"], size["vocab_size"], size["n_features"],
                                 dtype=size["dtype"], random_state=0)
    X = X.astype(size["dtype"])
    in_memory = per_iteration(X, Y, w, size["iterations"])
    chunks = X.shape[0] // 4  # two partitions per worker
    X_dask = da.from_array(X, chunks=(chunks, -1))
    client.wait_for_workers(2)
    with client.as_current():
        on_dask = per_iteration(X_dask, Y, w, size["iterations"])
    compute = partition_seconds(X, Y, w, 2)
    print(f"{name}: m={X.shape[0]} V={Y.shape[1]} d={X.shape[1]} {X.dtype}: "
          f"in-memory {in_memory:.3f} s/iteration, dask {on_dask:.3f} s/iteration, "
          f"ratio {on_dask / in_memory:.2f}; one worker's partial pass {compute:.3f} s")
    return name, on_dask, compute, Y.shape[1], X.shape[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also the language-model size")
    args = parser.parse_args()
    import dask.array as da
    from distributed import Client, LocalCluster

    warnings.simplefilter("ignore")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        results = [run("small", client, da)]
        if args.large:
            results.append(run("large", client, da))
    print(f"weak scaling on paper ({BANDWIDTH * 8 / 1e9:g} Gbit/s; the overhead measured "
          "at 2 workers per tree level):")
    for name, on_dask, compute, V, d in results:
        estimate = weak_scaling(compute, max(on_dask - compute, 0.0), V, d)
        print(f"  {name}: " + ", ".join(f"{P} workers {t:.3f} s" for P, t in estimate.items())
              + f" (message {V * d * 8 / 1e6:.1f} MB)")

if __name__ == "__main__":
    main()
