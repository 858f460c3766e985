"""Cost of one gradient-descent iteration against its two dense matrix products.

    python benchmarks/bench_gd_iteration.py

One GD iteration of :class:`~sklearn_ntp.NTPLinearClassifier` (without
implicit-bias tracking) is ``NTPLoss.value_and_grad`` plus the update
``W - eta grad``. Its floor is the two dense products it cannot avoid: the
logits ``H W^T`` (m x V) and the gradient ``G^T H`` (V x d). The ratio of the
two times, measured in this process at m=2000, V=500, d=256, S_j=8, should
stay below 1.25: everything else (log-sum-exp, sparse targets) is O(m V).

Timings use one BLAS thread by default (``--threads`` changes it): numpy's
element-wise work is single-threaded, and on a shared machine idle BLAS
workers turn multi-threaded timings into scheduling noise.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _reference import random_ntp_problem  # noqa: E402

from sklearn_ntp import NTPLinearClassifier  # noqa: E402
from sklearn_ntp._data._ntp_data import aggregate_contexts  # noqa: E402
from sklearn_ntp._loss._cross_entropy import NTPLoss  # noqa: E402

M, V, D, S = 2000, 500, 256, 8
TARGET = 1.25


def best_of(func, repeat=30):
    """Smallest wall time of ``repeat`` calls (robust to a shared machine)."""
    func()  # warm-up: page in buffers, start BLAS threads
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(data, dtype, eta=0.5):
    loss = NTPLoss(data, dtype=dtype)
    rng = np.random.default_rng(1)
    W = (rng.standard_normal((V, D)) / np.sqrt(D)).astype(dtype)
    G = rng.standard_normal((M, V)).astype(dtype)
    H = loss.H

    def iteration():
        _, grad = loss.value_and_grad(W)
        return W - eta * grad

    def products():
        return H @ W.T, G.T @ H

    return best_of(iteration), best_of(products)


def estimator_iteration(H, P, dtype, n_iter=100):
    """Seconds per iteration of a whole ``fit`` (validation, aggregation and
    the solver loop with its loss records), amortized over ``n_iter`` steps."""
    clf = NTPLinearClassifier(max_iter=n_iter, tol=0.0, compute_implicit_bias=False)
    X = H.astype(dtype)
    start = time.perf_counter()
    clf.fit(X, P)
    return (time.perf_counter() - start) / n_iter


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    threads = parser.parse_args().threads
    with threadpool_limits(threads):
        run(threads)


def run(threads):
    rng = np.random.default_rng(0)
    H, P = random_ntp_problem(rng, M, V, D, S)
    P = sp.csr_matrix(P)
    data = aggregate_contexts(H, P)
    print(f"one GD iteration vs H W^T + G^T H   (m={M}, V={V}, d={D}, S_j={S}, "
          f"{threads} BLAS thread{'s' * (threads > 1)})")
    for dtype in (np.float64, np.float32):
        t_iter, t_prod = measure(data, dtype)
        ratio = t_iter / t_prod
        verdict = "ok" if ratio <= TARGET else f"above target {TARGET}"
        t_fit = estimator_iteration(H, P, dtype)
        print(f"  {np.dtype(dtype).name:8s} iteration {1e3 * t_iter:7.2f} ms   "
              f"products {1e3 * t_prod:7.2f} ms   ratio {ratio:5.2f}  ({verdict});   "
              f"within NTPLinearClassifier.fit {1e3 * t_fit:7.2f} ms/iteration, "
              f"ratio {t_fit / t_prod:5.2f}")


if __name__ == "__main__":
    main()
