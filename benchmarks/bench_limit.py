"""Cost of the general limit in ``check_ntp_separability``, against the paper-only check.

    python benchmarks/bench_limit.py                  # m = 1000, V = 50, S = 8, d = 64 and 1200
    python benchmarks/bench_limit.py --contexts 300   # a quicker size

The baseline is what the report computed before it described non-separable data:
the data subspace with the least-squares ``W*``, then ``ntp_svm`` (which decides
separability, by a Farkas LP when ``H`` is rank deficient). Both run in this
process on the same data; the ratio is what matters on a shared machine.
"""

import argparse
import time

from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import (
    DataSubspace,
    NotNTPSeparableError,
    aggregate_contexts,
    check_ntp_separability,
    ntp_svm,
)


def paper_only_check(data):
    subspace = DataSubspace(data)
    subspace.log_odds_solution()
    try:
        ntp_svm(data)
    except NotNTPSeparableError:
        pass


def seconds(func, *args):
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--contexts", type=int, default=1000)
    parser.add_argument("--features", type=int, nargs="+", default=[64, 1200])
    args = parser.parse_args()
    for d in args.features:
        X, Y, w = make_ntp_data(n_contexts=args.contexts, vocab_size=50, n_features=d,
                                support_size=8, n_sequences=20 * args.contexts,
                                random_state=0)
        data = aggregate_contexts(X, Y, w)
        before = seconds(paper_only_check, data)
        start = time.perf_counter()
        report = check_ntp_separability(data)
        after = time.perf_counter() - start
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items())
        print(f"m={args.contexts} V=50 S=8 d={d}: paper-only check {before:.2f} s, "
              f"check_ntp_separability {after:.2f} s ({parts}); ratio {after / before:.2f}; "
              f"separable {report.is_separable}, |T| {report.n_separable_pairs} of "
              f"{report.n_off_support_pairs}, status {report.limit.status}", flush=True)


if __name__ == "__main__":
    main()
