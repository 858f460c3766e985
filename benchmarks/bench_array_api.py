"""NumPy against PyTorch (CPU or CUDA) through Array API dispatch.

    python benchmarks/bench_array_api.py --device cpu --sizes 2000,500,256
    python benchmarks/bench_array_api.py --device cuda          # all default sizes

For every size (m, V, d) and dtype it times, on each backend,

* one GD iteration of :class:`~sklearn_ntp.NTPLinearClassifier`
  (``NTPLoss.value_and_grad`` plus the update ``W - eta grad``),
* one Hessian-vector product ``NTPLoss.hessian_product(W, E)`` at a new
  ``W`` (what the Newton solves of the limit and the accelerated solver
  repeat): the softmax pass at ``W`` and the products ``H E^T`` and
  ``R^T H``, block by block, and
* a 100-iteration ``fit`` (``compute_implicit_bias=False``, ``tol=0``: exactly
  100 updates; it includes the aggregation of identical contexts on the host
  and the transfer of the data to the device, both once per fit),

and prints each as a ratio to the same backend's two bare matrix products
``H W^T`` and ``G^T H`` (for the fit: to 100 times them; a Hessian product
at a new point does three such products). A ratio near one
means the iteration costs what its products cost. Every context has
``S = 8`` next tokens. The torch runs at the default sizes take well under 5
minutes on one GPU; NumPy's 100-iteration fits at the two large sizes take
minutes on a few CPU cores (``--backends torch`` skips them). On 2 CPU cores
use ``--sizes`` with the small ones. On a shared
machine, ``--threads 1`` (one BLAS/torch thread each) keeps the timings from
turning into scheduling noise.

    python benchmarks/bench_array_api.py --newton 2000,1000,64 --threads 1

times instead the Newton solve of the limit's restricted loss (the
in-support ``W~`` of random probabilities on 5 tokens a context, ``tol=1e-10``)
with NumPy and torch, float64 and float32 Hessian products
(:func:`~sklearn_ntp._utils._array_api.newton_device`).
"""

import argparse
import itertools
import os
import time

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scikit-learn's requirement for dispatch

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from sklearn.utils._array_api import get_namespace  # noqa: E402

from sklearn_ntp import NTPLinearClassifier  # noqa: E402
from sklearn_ntp._data._ntp_data import aggregate_contexts  # noqa: E402
from sklearn_ntp._loss._cross_entropy import NTPLoss  # noqa: E402
from sklearn_ntp._loss._restricted import RestrictedLoss  # noqa: E402
from sklearn_ntp._utils._array_api import newton_device  # noqa: E402

SIZES = [(2000, 500, 256), (20000, 1000, 256), (100000, 1000, 128)]
SUPPORT, ETA, FIT_ITERATIONS = 8, 0.5, 100


def parse_size(text):
    m, V, d = (int(v) for v in text.split(","))
    return m, V, d


def random_data(m, V, d, seed=0):
    """Gaussian contexts, uniform targets on random supports of size 8 (sparse)."""
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((m, d)) / np.sqrt(d)
    cols = np.argsort(rng.random((m, V)), axis=1)[:, :SUPPORT]
    P = sp.csr_matrix((np.full(m * SUPPORT, 1.0 / SUPPORT),
                       (np.repeat(np.arange(m), SUPPORT), cols.ravel())), shape=(m, V))
    return H, P


class Backend:
    """Array creation and timing for NumPy, or for torch on a device."""

    def __init__(self, name, device):
        self.name, self.device = name, device
        if name == "numpy":
            self.xp, self.torch = None, None
            return
        import torch

        self.torch = torch
        with sklearn.config_context(array_api_dispatch=True):
            self.xp, _ = get_namespace(torch.zeros(1, device=device))

    def asarray(self, a):
        return a if self.torch is None else self.torch.asarray(a, device=self.device)

    def sync(self):
        if self.torch is not None and self.device == "cuda":
            self.torch.cuda.synchronize()

    def best_of(self, func, repeat, warm_up=True):
        if warm_up:  # buffers, kernels, BLAS threads
            func()
            self.sync()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            func()
            self.sync()
            times.append(time.perf_counter() - start)
        return min(times)


def measure(backend, data, H_raw, Y_raw, dtype, repeat, fit=True):
    m, V, d = data.n_contexts, data.n_tokens, data.n_features
    rng = np.random.default_rng(1)
    loss = NTPLoss(data, dtype=dtype, xp=backend.xp, device=backend.device)
    W = backend.asarray((rng.standard_normal((V, d)) / np.sqrt(d)).astype(dtype))
    G = backend.asarray(rng.standard_normal((m, V)).astype(dtype))
    H = loss.H

    def iteration():
        _, grad = loss.value_and_grad(W)
        return W - ETA * grad

    E = backend.asarray((rng.standard_normal((V, d)) / np.sqrt(d)).astype(dtype))
    # At a new point each time: the kept softmax of the last one is not reused.
    points = itertools.cycle([W, -W])

    def hessian():
        loss.hessian_product(next(points), E)

    products = backend.best_of(lambda: (H @ W.T, G.T @ H), repeat)
    step = backend.best_of(iteration, repeat)
    hessian = backend.best_of(hessian, repeat)
    if not fit:
        return products, step, hessian, np.nan
    X, Y = backend.asarray(H_raw.astype(dtype)), Y_raw
    clf = NTPLinearClassifier(max_iter=FIT_ITERATIONS, tol=0.0, learning_rate=ETA,
                              compute_implicit_bias=False)
    with sklearn.config_context(array_api_dispatch=backend.torch is not None):
        # One timed fit: the iterations above warmed up kernels and threads.
        seconds = backend.best_of(lambda: clf.fit(X, Y), repeat=1, warm_up=False)
    assert clf.n_iter_ == FIT_ITERATIONS
    return products, step, hessian, seconds


def random_probabilities(m, V, d, support=5, seed=0):
    """Gaussian contexts, random probabilities on random supports: not compatible,
    so that ``W~`` needs Newton's method."""
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((m, d)) / np.sqrt(d)
    cols = np.argsort(rng.random((m, V)), axis=1)[:, :support]
    p = rng.uniform(0.1, 1.0, (m, support))
    P = sp.csr_matrix(((p / p.sum(axis=1, keepdims=True)).ravel(),
                       (np.repeat(np.arange(m), support), cols.ravel())), shape=(m, V))
    return aggregate_contexts(H, P)


def newton_solves(size, device):
    """Seconds and Hessian products of ``RestrictedLoss.minimize``, per backend."""
    import torch

    data = random_probabilities(*size)
    calls, product = [0], NTPLoss.hessian_product  # [count, W~ of NumPy float64]

    def counted(self, W, E):
        calls[0] += 1
        return product(self, W, E)

    NTPLoss.hessian_product = counted
    print(f"{'backend':<12}{'products':<10}{'seconds':>9}{'Hessian products':>18}"
          f"{'max |W - W_numpy|':>19}")
    for name, xp, where in [("numpy", np, None), (f"torch-{device}", torch, device)]:
        for precision in ("float64", "float32"):
            run_newton(data, name, xp, where, precision, calls)


def run_newton(data, name, xp, where, precision, calls):
    """One solve; its ``W~`` is compared with the first one's (NumPy float64)."""
    calls[0] = 0
    start = time.perf_counter()
    with newton_device(xp, where, getattr(xp, precision)):
        W, _ = RestrictedLoss(data, data.support_mask).minimize(
            np.zeros((data.n_tokens, data.n_features)), tol=1e-10)
    seconds = time.perf_counter() - start
    if not calls[1:]:
        calls.append(W)
    print(f"{name:<12}{precision:<10}{seconds:>9.2f}{calls[0]:>18}"
          f"{np.abs(W - calls[1]).max():>19.1e}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="device of the torch arrays (default: cpu)")
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=SIZES,
                        metavar="M,V,D", help="sizes to run (default: the three of the doc)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=10, help="timed calls per measure")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of NumPy's BLAS and of torch (default: theirs)")
    parser.add_argument("--backends", nargs="+", choices=["numpy", "torch"],
                        default=["numpy", "torch"],
                        help="backends to time (default: both; NumPy's largest fits "
                             "take minutes on few cores)")
    parser.add_argument("--no-fit", dest="fit", action="store_false",
                        help="time the iteration only, not the 100-iteration fit")
    parser.add_argument("--newton", type=parse_size, default=None, metavar="M,V,D",
                        help="time the limit's Newton solve at this size instead")
    args = parser.parse_args()
    if args.threads is not None:
        import torch
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)
    if args.newton is not None:
        return newton_solves(args.newton, args.device)
    backends = [Backend(name, "cpu" if name == "numpy" else args.device)
                for name in args.backends]
    print(f"{'backend':<10}{'dtype':<9}{'m':>8}{'V':>6}{'d':>5}{'products ms':>13}"
          f"{'iteration ms':>14}{'ratio':>7}{'hessian ms':>12}{'ratio':>7}"
          f"{'fit(100) s':>12}{'ratio':>7}")
    for m, V, d in args.sizes:
        H_raw, Y_raw = random_data(m, V, d)
        data = aggregate_contexts(H_raw, Y_raw)
        for dtype in args.dtypes:
            for backend in backends:
                products, step, hessian, fit = measure(backend, data, H_raw, Y_raw,
                                                       np.dtype(dtype), args.repeat, args.fit)
                label = backend.name if backend.torch is None else f"torch-{args.device}"
                print(f"{label:<10}{dtype:<9}{m:>8}{V:>6}{d:>5}{1e3 * products:>13.2f}"
                      f"{1e3 * step:>14.2f}{step / products:>7.2f}{1e3 * hessian:>12.2f}"
                      f"{hessian / products:>7.2f}{fit:>12.3f}"
                      f"{fit / (FIT_ITERATIONS * products):>7.2f}", flush=True)


if __name__ == "__main__":
    main()
