"""Language-model vocabularies: fit, predictions, the limit and the corpus study at V = 50,257.

    python benchmarks/bench_vocab.py                      # every run below (about an hour)
    python benchmarks/bench_vocab.py --runs fit predict   # some of them
    python benchmarks/bench_vocab.py --sweep 2500 5000 10000 20000   # fit at several m
    python benchmarks/bench_vocab.py --library /path/to/old/checkout # the same runs, older code
    python benchmarks/bench_vocab.py --device cuda        # torch arrays on a GPU

Data: ``make_zipf_ntp_data(m, 50257, 768, dtype=float32)`` (Zipfian tokens,
heavy-tailed supports), drawn once by this script and read by every run, so
that ``--library`` measures older code on the very same arrays. Each run
is a separate process, so its peak resident memory is its own:

- ``fit``: ``NTPLinearClassifier(solver="gd", max_iter=50)`` without the
  implicit-bias limit. Seconds per iteration are ``(t(50) - t(1)) / 49``
  (setup, validation and the step size cancel), against two float32 products
  of the same shapes (``H W^T`` and ``G^T H``) timed in the same process
  after the fits; wall and CPU time (the CPU ratio is the one that holds on
  a machine shared with other work).
- ``predict``: ``predict_proba`` and ``score`` of a fitted decoder: the
  tracemalloc peak above the output (numpy reports its buffers to tracemalloc).
- ``limit``: ``implicit_bias_limit`` at ``--m-limit`` contexts within
  ``--budget`` seconds, with its status and the functions that dominate
  (cProfile, cumulative time; a run stopped by the budget is profiled too).
- ``corpus``: ``python -m sklearn_ntp corpus --vocab-size 20000
  --context-length 2`` end to end.

Targets (two cores): fit peak <= 3 GiB and <= 1.3x the two products per
iteration at m = 20,000; predictions <= 1 GiB above the output; the limit
at m = 2,000 within 30 min and 6 GiB; the corpus study within 10 min.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
V, D = 50257, 768
GIB = 2.0 ** 30
TARGETS = {"fit_ratio": 1.3, "fit_gib": 3.0, "predict_gib": 1.0, "limit_s": 1800.0,
           "limit_gib": 6.0, "corpus_s": 600.0}


# -- the parent: data, one process per run, the table ----------------------------------

def make_data(m, path):
    """Draw the Zipfian data once (with this checkout's generator) into ``path``."""
    sys.path.insert(0, str(ROOT))
    from sklearn_ntp.datasets import make_zipf_ntp_data

    X, Y, w = make_zipf_ntp_data(m, V, D, dtype=np.float32, random_state=0)
    np.savez(path, X=X, data=Y.data, indices=Y.indices, indptr=Y.indptr, w=w)
    return path


def run_child(run, args, data_path, m):
    """Run ``run`` in a fresh process; its JSON result, or the reason it failed."""
    command = [sys.executable, __file__, "--child", run, "--data", str(data_path),
               "--m", str(m), "--n-iter", str(args.n_iter), "--budget", str(args.budget),
               "--device", args.device, "--library", str(args.library or ROOT)]
    # scikit-learn's Array API dispatch needs scipy's, set before scipy is imported.
    env = None if args.device == "host" else {**os.environ, "SCIPY_ARRAY_API": "1"}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=args.budget + 600)
    except subprocess.TimeoutExpired:
        return {"run": run, "m": m, "error": f"killed after {args.budget + 600} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"run": run, "m": m, "seconds": time.perf_counter() - start,
                "error": f"exit {done.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def main():
    args = parse_args()
    if args.child:
        return child(args)
    runs = args.runs
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = sorted({*args.sweep, args.m_fit} if "fit" in runs else set())
        sizes = sorted({*sizes, *([args.m_fit] if "predict" in runs else []),
                        *([args.m_limit] if "limit" in runs else [])})
        paths = {m: make_data(m, Path(tmp) / f"zipf_{m}.npz") for m in sizes}
        for m in sizes:
            for run in ("fit", "predict", "limit"):
                wanted = {"fit": m in args.sweep or m == args.m_fit,
                          "predict": m == args.m_fit, "limit": m == args.m_limit}
                if run in runs and wanted[run]:
                    results.append(run_child(run, args, paths[m], m))
                    print(json.dumps(results[-1]), flush=True)
        if "corpus" in runs:
            results.append(run_child("corpus", args, "", 0))
            print(json.dumps(results[-1]), flush=True)
    print(format_table(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


def format_table(results):
    lines = [f"{'run':<9}{'m':>7}  result"]
    for r in results:
        if "error" in r:
            text = f"FAILED: {r['error']}"
        elif r["run"] == "fit":
            text = (f"{r['iteration_s']:.2f} s/iteration = {r['ratio']:.2f}x two products "
                    f"({r['products_s']:.2f} s; CPU time {r['cpu_ratio']:.2f}x; target "
                    f"{TARGETS['fit_ratio']}x), peak "
                    f"{r['peak_gib']:.2f} GiB (target {TARGETS['fit_gib']})")
        elif r["run"] == "predict":
            text = (f"predict_proba {r['predict_proba_s']:.1f} s, "
                    f"{r['predict_proba_above_output_gib']:.2f} GiB above its "
                    f"{r['output_gib']:.2f} GiB output; score {r['score_s']:.1f} s, "
                    f"{r['score_gib']:.2f} GiB (target {TARGETS['predict_gib']})")
        elif r["run"] == "limit":
            text = (f"{r['seconds']:.0f} s, peak {r['peak_gib']:.2f} GiB, {r['status']}; "
                    f"dominant: {r['dominant']}")
        else:
            text = f"{r['seconds']:.0f} s (target {TARGETS['corpus_s']:.0f}), {r['summary']}"
        lines.append(f"{r['run']:<9}{r['m']:>7}  {text}")
    return "\n".join(lines)


# -- the children: one run each ------------------------------------------------------------

def child(args):
    sys.path.insert(0, str(args.library))
    runs = {"fit": child_fit, "predict": child_predict, "limit": child_limit,
            "corpus": child_corpus}
    result = runs[args.child](args)
    import sklearn_ntp  # the checkout measured, for the record

    print(json.dumps({"run": args.child, "m": args.m, **result,
                      "library": str(Path(sklearn_ntp.__file__).parents[1])}), flush=True)


def load(path, device):
    archive = np.load(path)
    Y = sp.csr_matrix((archive["data"], archive["indices"], archive["indptr"]),
                      shape=(len(archive["indptr"]) - 1, V))
    return to_device(archive["X"], device), Y, archive["w"]


def to_device(X, device):
    """NumPy on the host (``host``), else a torch tensor on ``device``."""
    if device == "host":
        return X
    import torch
    from sklearn import set_config

    set_config(array_api_dispatch=True)
    return torch.asarray(X, device=device)


def peak_gib():
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def two_products(H, W, repeat=2):
    """Best ``(wall, CPU)`` seconds of the two products a GD iteration cannot
    avoid, ``H W^T`` and ``G^T H``."""
    best = (np.inf, np.inf)
    for _ in range(repeat):
        with Timer(H) as timer:
            G = H @ W.T
            G.T @ H
        best = min(best, timer.seconds)
        del G
    return best


class Timer:
    """Wall and CPU (all threads of this process) seconds of a block. CPU time
    hardly depends on other processes sharing the cores, so the CPU ratio stays
    meaningful on a busy machine, where the wall ratio does not."""

    def __init__(self, like):
        self.like = like

    def __enter__(self):
        self.start = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc):
        sync(self.like)
        self.seconds = (time.perf_counter() - self.start[0],
                        time.process_time() - self.start[1])


def sync(A):
    if not isinstance(A, np.ndarray):
        import torch
        if A.device.type == "cuda":
            torch.cuda.synchronize()


def child_fit(args):
    from sklearn_ntp import NTPLinearClassifier

    X, Y, w = load(args.data, args.device)

    def fit(n_iter):
        clf = NTPLinearClassifier(solver="gd", max_iter=n_iter, tol=0.0,
                                  compute_implicit_bias=False)
        with Timer(X) as timer:
            clf.fit(X, Y, sample_weight=w)
        return np.array(timer.seconds), clf

    one, _ = fit(1)
    many, clf = fit(args.n_iter)
    peak = peak_gib()  # before the products, whose (m, V) arrays are whole
    products = np.array(two_products(X, clf.coef_))
    iteration = (many - one) / (args.n_iter - 1)
    return {"iteration_s": iteration[0], "products_s": products[0],
            "ratio": iteration[0] / products[0], "cpu_ratio": iteration[1] / products[1],
            "peak_gib": peak, "n_iter": clf.n_iter_, "dtype": str(clf.coef_.dtype),
            "coef_device": str(getattr(clf.coef_, "device", "host")),
            "final_loss": float(clf.loss_curve_[-1])}


def child_predict(args):
    from sklearn_ntp import NTPLinearClassifier

    X, Y, w = load(args.data, args.device)
    clf = NTPLinearClassifier(solver="gd", max_iter=1, compute_implicit_bias=False)
    clf.fit(X, Y, sample_weight=w)
    labels = np.asarray(Y.argmax(axis=1)).ravel()
    tracemalloc.start()
    start = time.perf_counter()
    proba = clf.predict_proba(X)
    seconds = time.perf_counter() - start
    output = proba.nbytes
    above = (tracemalloc.get_traced_memory()[1] - output) / GIB
    del proba
    tracemalloc.reset_peak()
    start = time.perf_counter()
    clf.score(X, labels)
    score_s, score = time.perf_counter() - start, tracemalloc.get_traced_memory()[1] / GIB
    tracemalloc.stop()
    return {"predict_proba_s": seconds, "output_gib": output / GIB,
            "predict_proba_above_output_gib": above, "score_s": score_s, "score_gib": score}


class OutOfTime(Exception):
    pass


def _out_of_time(signum, frame):
    raise OutOfTime


def child_limit(args):
    from sklearn_ntp.implicit_bias import implicit_bias_limit

    X, Y, w = load(args.data, "host")
    profiler = cProfile.Profile()
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(int(args.budget))
    start = time.perf_counter()
    profiler.enable()
    try:
        with newton_solves_on(args.device):
            limit = implicit_bias_limit(X, Y, w)
        status = limit.status
    except OutOfTime:
        status = f"stopped by the {args.budget:.0f} s budget"
    except Exception as error:  # a refusal is a result: report its reason
        status = f"{type(error).__name__}: {error}"
    profiler.disable()
    signal.alarm(0)
    seconds = time.perf_counter() - start
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).sort_stats("cumulative")
    stats.print_stats(25)
    rows = [(f"{func[2]} ({Path(func[0]).name})", entry[3])
            for func, entry in stats.stats.items() if "sklearn_ntp" in func[0]]
    dominant = ", ".join(f"{name} {t:.0f} s" for name, t in
                         sorted(rows, key=lambda r: -r[1])[1:6])
    return {"seconds": seconds, "peak_gib": peak_gib(), "status": status[:300],
            "dominant": dominant, "profile": stream.getvalue()[-6000:]}


def newton_solves_on(device):
    """The limit's Newton solves on ``device`` (torch), where the library can."""
    from contextlib import nullcontext

    if device == "host":
        return nullcontext()
    try:
        from sklearn_ntp._utils._array_api import newton_device
    except ImportError:  # an older checkout: the limit runs on the host
        return nullcontext()
    import torch

    return newton_device(torch, device)


def child_corpus(args):
    env = {**os.environ, "PYTHONPATH": str(args.library)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sklearn_ntp", "corpus", "--vocab-size",
                           "20000", "--context-length", "2"], capture_output=True, text=True,
                          env=env, timeout=args.budget)
    seconds = time.perf_counter() - start
    out = done.stdout.strip().splitlines()
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return {"seconds": seconds, "summary": " / ".join(out[:2])[:300], "output": out[-12:]}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["fit", "predict", "limit", "corpus"],
                        choices=["fit", "predict", "limit", "corpus"])
    parser.add_argument("--m-fit", type=int, default=20000,
                        help="contexts of the fit and prediction runs (default 20,000)")
    parser.add_argument("--sweep", type=int, nargs="*", default=[],
                        help="further numbers of contexts for the fit run")
    parser.add_argument("--m-limit", type=int, default=2000,
                        help="contexts of the limit run (default 2,000)")
    parser.add_argument("--n-iter", type=int, default=50, help="GD iterations (default 50)")
    parser.add_argument("--budget", type=float, default=1800.0,
                        help="seconds allowed to the limit and the corpus study (default 1,800)")
    parser.add_argument("--device", default="host",
                        help="host (NumPy), or a torch device: cpu, cuda, cuda:1")
    parser.add_argument("--library", type=Path, default=None,
                        help="checkout whose sklearn_ntp is measured (default: this one)")
    parser.add_argument("--out", default=None, help="also write the results as JSON")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--m", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
