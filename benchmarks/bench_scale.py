"""Time and peak memory of the NTP-SVM paths as the number of contexts grows.

    python benchmarks/bench_scale.py              # m up to 1,000 (a few minutes)
    python benchmarks/bench_scale.py --big        # also m = 5,000 (d = 6,000) and m = 10,000
    python benchmarks/bench_scale.py --huge       # also m = 100,000, V = 1,000, d = 128
    python benchmarks/bench_scale.py --busy       # thread limits with one core kept busy
    python benchmarks/bench_scale.py --corpus     # the Python-token corpus, end to end
    python benchmarks/bench_scale.py --one-context-per-token  # V = m tokens, one context each

Each size runs ``ntp_svm(method="auto")`` (the size rule) and
``implicit_bias_limit`` (everything the limit returns, certified) beside the
exact interior point and the cvxpy (Clarabel) formulation of the NTP-SVM, each
where it runs in reasonable time (a skipped path is reported with the reason),
and prints the ratios measured in the same run. Peak memory is the tracemalloc peak of the
call (numpy buffers included), or the process's peak resident size for
calls over a minute. Rows are appended to ``--csv`` for
``plot_scale.py``.
"""

import argparse
import csv
import io
import multiprocessing
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _reference import random_ntp_problem  # noqa: E402

import sklearn_ntp._utils._threads as threads  # noqa: E402
from sklearn_ntp.implicit_bias import (  # noqa: E402
    CertificationError,
    NotNTPSeparableError,
    aggregate_contexts,
    implicit_bias_limit,
    ntp_svm,
)
from sklearn_ntp.studies._reproduce import corpus_study  # noqa: E402

#: (m, V, d, S) and the paths run at that size (the others are skipped: the
#: interior point costs V m^3 per step, the cvxpy model m V constraints on V d variables).
#: "limit" is ``implicit_bias_limit`` (T, W~, U~ and L* with their certificates).
SIZES = [
    ((100, 20, 120, 5), ("auto", "limit", "interior-point", "cvxpy")),
    ((200, 50, 250, 8), ("auto", "limit", "interior-point", "cvxpy")),
    ((500, 50, 600, 8), ("auto", "limit", "interior-point")),
    ((1000, 50, 1200, 8), ("auto", "limit")),
]
#: The second is underparameterized and not separable: ``ntp_svm`` alone has no
#: answer to give there (its Farkas LP would have 2 million variables).
BIG = [((5000, 50, 6000, 8), ("auto", "limit")), ((10000, 200, 256, 8), ("limit",))]
HUGE = [((100_000, 1000, 128, 8), ("limit",))]
#: ``implicit_bias_limit(rng.normal(size=(m, d)), np.arange(m))``: a language
#: model's shape, every token the next token of one context (V = m), with the
#: m (m - 1) off-support pairs all separable. Each series of d stops at the
#: first size over the time budget.
ONE_CONTEXT_PER_TOKEN = [100, 250, 500, 1000, 2000]
ONE_CONTEXT_DIMENSIONS = [4, 16]


def _call(method, data):
    if method == "limit":
        limit = implicit_bias_limit(data)
        T = f"{int(limit.separable_pairs.sum())} of {int((~data.support_mask).sum())} pairs in T"
        return limit.max_margin_solution, f"limit {limit.status}, {T}, L* {limit.loss_infimum:.6g}"
    try:
        W = ntp_svm(data, method=method)
        return W, f"margin {1 / np.linalg.norm(W):.4g}"
    except NotNTPSeparableError:
        return None, "not separable (certificate)"
    except CertificationError as exc:
        return None, f"refused: {exc.status}"


def measure(method, data):
    """Seconds, peak MiB and outcome of ``ntp_svm``: timed without tracing, then
    traced once for the peak if that takes under a minute (else the process's
    peak resident size so far, an upper bound)."""
    start = time.perf_counter()
    W, outcome = _call(method, data)
    seconds = time.perf_counter() - start
    if seconds < 60:
        tracemalloc.start()
        _call(method, data)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    return seconds, peak, outcome, W


def bench(sizes, rows):
    rng = np.random.default_rng(0)
    for (m, V, d, S), methods in sizes:
        data = aggregate_contexts(*random_ntp_problem(rng, m, V, d, S))
        results = {method: measure(method, data) for method in methods}
        reference = methods[0]
        t_auto, _, _, W_auto = results[reference]
        for method, (seconds, peak, outcome, W) in results.items():
            line = (f"m={m:>6} V={V:>4} d={d:>5} S={S}  {method:<15} {seconds:8.2f} s "
                    f"{peak:8.0f} MiB  {outcome}")
            if method != reference:
                line += f"  ({reference} is {seconds / t_auto:.2f}x faster"
                if W is not None and W_auto is not None:
                    line += f", rel. diff {np.linalg.norm(W - W_auto) / np.linalg.norm(W):.1e}"
                line += ")"
            print(line, flush=True)
            rows.append({"m": m, "V": V, "d": d, "S": S, "method": method,
                         "seconds": seconds, "peak_mib": peak, "outcome": outcome})
        skipped = {"auto", "limit", "interior-point", "cvxpy"} - set(methods)
        if skipped:
            print(f"{'':32}skipped at this size: {', '.join(sorted(skipped))}")


def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def bench_busy():
    """m=100, V=20, d=120 while another process keeps one core busy."""
    rng = np.random.default_rng(1)
    data = aggregate_contexts(*random_ntp_problem(rng, 100, 20, 120, 5))
    busy = multiprocessing.Process(target=_spin, args=(120.0,))
    busy.start()
    try:
        for label, limit in (("library thread rule", None), ("2 BLAS threads forced", 2)):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                if limit is None:
                    ntp_svm(data, method="interior-point")
                else:
                    saved, threads.SMALL_KERNEL_FLOPS = threads.SMALL_KERNEL_FLOPS, 0.0
                    try:
                        with threadpool_limits(limits=limit):
                            ntp_svm(data, method="interior-point")
                    finally:
                        threads.SMALL_KERNEL_FLOPS = saved
                times.append(time.perf_counter() - start)
            print(f"one core busy, {label}: best {min(times):.2f} s, worst {max(times):.2f} s")
    finally:
        busy.terminate()


def bench_corpus():
    """``python -m sklearn_ntp corpus --vocab-size 1000 --context-length 2``, end to
    end (tokens, separability report with the certified limit, both fits), and
    the limit's parts; peak is the process's resident size (run alone)."""
    report = io.StringIO()
    start = time.perf_counter()
    results = corpus_study(context_length=2, vocab_size=1000, stream=report)
    seconds = time.perf_counter() - start
    limit = results["report"].limit
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    parts = ", ".join(f"{name} {t:.1f} s" for name, t in limit.timings.items())
    models = results["fits"]["models"]
    fits = ", ".join(f"{name} {r['seconds']:.1f} s" for name, r in models.items())
    data = limit.data
    print(f"corpus (m={data.n_contexts}, V={data.n_tokens}, d={data.n_features}): "
          f"{seconds:.1f} s end to end, peak {peak:.0f} MiB; limit {limit.status} "
          f"(Farkas bound {limit.certificate['farkas_bound']:.2g}, "
          f"{int(limit.separable_pairs.sum())} pairs in T): {parts}; fits: {fits}")


def _one_context_limit(m, d, queue):
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    limit = implicit_bias_limit(rng.normal(size=(m, d)), np.arange(m))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    parts = ", ".join(f"{name} {t:.2f} s" for name, t in limit.timings.items())
    queue.put((seconds, peak, limit.status, parts, limit.certificate["separable_pairs_lp"]))


def bench_one_context_per_token(budget, rows):
    """The rows of :data:`ONE_CONTEXT_PER_TOKEN`, each in its own process (peak
    resident size of that process), killed after ``budget`` seconds; each row
    prints the limit's part times and whether the LP for ``T`` ran."""
    for d in ONE_CONTEXT_DIMENSIONS:
        for m in ONE_CONTEXT_PER_TOKEN:
            queue = multiprocessing.Queue()
            child = multiprocessing.Process(target=_one_context_limit, args=(m, d, queue))
            child.start()
            child.join(budget)
            if child.is_alive():
                child.terminate()
                child.join()
                print(f"m=V={m:>5} d={d:>3}  limit  > {budget:.0f} s (stopped)", flush=True)
                rows.append({"m": m, "V": m, "d": d, "S": 1, "method": "limit",
                             "seconds": np.inf, "peak_mib": np.nan, "outcome": "over budget"})
                break
            seconds, peak, status, parts, lp = queue.get()
            print(f"m=V={m:>5} d={d:>3}  limit  {seconds:8.2f} s {peak:8.0f} MiB  {status}"
                  f" (LP for T: {lp}; {parts})", flush=True)
            rows.append({"m": m, "V": m, "d": d, "S": 1, "method": "limit",
                         "seconds": seconds, "peak_mib": peak, "outcome": status})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="m = 5,000 and 10,000")
    parser.add_argument("--huge", action="store_true", help="m = 100,000 (long)")
    parser.add_argument("--busy", action="store_true", help="thread limits on a busy machine")
    parser.add_argument("--corpus", action="store_true", help="the Python-token corpus")
    parser.add_argument("--one-context-per-token", action="store_true",
                        help="implicit_bias_limit with V = m, one context per token")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds per size of --one-context-per-token")
    parser.add_argument("--csv", default=None, help="default benchmarks/scale_results.csv, "
                        "or benchmarks/scale_one_context.csv with --one-context-per-token")
    args = parser.parse_args()
    if args.busy or args.corpus:
        (bench_busy if args.busy else bench_corpus)()
        return
    rows = []
    if args.one_context_per_token:
        bench_one_context_per_token(args.budget, rows)
    else:
        bench(SIZES + (BIG if args.big else []) + (HUGE if args.huge else []), rows)
    default = "scale_one_context" if args.one_context_per_token else "scale_results"
    with open(args.csv or f"benchmarks/{default}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
