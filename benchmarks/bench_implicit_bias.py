"""Speed of W* and W^mm against the naive formulations, measured in one process.

    python benchmarks/bench_implicit_bias.py            # both comparisons (~1 min)
    python benchmarks/bench_implicit_bias.py --large-naive
        # also the naive NTP-SVM at m=200 (minutes)

Baselines: the explicit Kronecker least-squares system for ``W*`` and a cvxpy model
over the full V x d variable for ``W^mm`` (the reference models of the test suite).
"""

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _reference import (  # noqa: E402
    kronecker_log_odds_solution,
    naive_ntp_svm,
    random_ntp_problem,
)

from sklearn_ntp.implicit_bias import log_odds_solution, ntp_svm  # noqa: E402


def best_of(func, *args, repeat=3):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func(*args)
        times.append(time.perf_counter() - start)
    return min(times), out


def peak_mib(func, *args):
    tracemalloc.start()
    func(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def rel_diff(A, B):
    return np.linalg.norm(A - B) / np.linalg.norm(B)


def bench_log_odds(rng):
    m, V, d, S = 200, 50, 250, 8
    H, P = random_ntp_problem(rng, m, V, d, S)
    t_ours, W = best_of(log_odds_solution, H, P)
    t_kron, W_ref = best_of(kronecker_log_odds_solution, H, P, repeat=1)
    print(f"log_odds_solution m={m} V={V} d={d} S={S}: ours {t_ours:.3f} s, "
          f"Kronecker lstsq {t_kron:.3f} s, speed-up {t_kron / t_ours:.1f}x, "
          f"rel. diff {rel_diff(W, W_ref):.1e}")


def bench_svm(rng, sizes, naive=True):
    m, V, d, S = sizes
    H, P = random_ntp_problem(rng, m, V, d, S)
    t_ours, W = best_of(ntp_svm, H, P)
    n_constraints = m * V - m
    dense_mib = n_constraints * V * d * 8 / 2**20
    line = (f"ntp_svm m={m} V={V} d={d} S={S}: ours {t_ours:.3f} s, peak memory "
            f"{peak_mib(ntp_svm, H, P):.1f} MiB "
            f"(a dense constraints x V*d matrix: {dense_mib:.0f} MiB)")
    if naive:
        t_naive, (W_ref, *_) = best_of(naive_ntp_svm, H, P, repeat=1)
        line += (f", naive cvxpy {t_naive:.2f} s, speed-up {t_naive / t_ours:.1f}x, "
                 f"rel. diff {rel_diff(W, W_ref):.1e}")
    print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-naive", action="store_true",
                        help="also time the naive model at m=200 (several minutes)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    bench_log_odds(rng)
    bench_svm(rng, (100, 20, 120, 5))
    bench_svm(rng, (200, 50, 250, 8), naive=args.large_naive)


if __name__ == "__main__":
    main()
