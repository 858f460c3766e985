"""Defaults on scikit-learn's data sets: NTPLinearClassifier against LogisticRegression.

    python benchmarks/bench_sklearn_datasets.py [--solvers gd ngd adam] [--threads 1]

For iris, wine, breast_cancer and digits, both models sit in a Pipeline behind a
StandardScaler: ``NTPLinearClassifier(fit_intercept=True, compute_implicit_bias=False)``
with every other parameter at its default (``learning_rate="auto"``), and
``LogisticRegression(max_iter=5000)``. The script prints the 5-fold CV accuracy
of each (``scoring="accuracy"``: the estimator's own ``score`` is the mean
log-likelihood), the difference, and the time of one fit on the whole data set
with the ratio NTP / LogisticRegression, both measured in this process.
``compute_implicit_bias=False`` because the geometry (``W*``, ``W^mm``) is not
what is compared here and costs most of the fit on digits.

A second table fits the raw (unscaled) data with every default
(``compute_implicit_bias`` included): the training accuracy, the auto step and
how the run stopped (never ``diverged``).
"""

import argparse
import time
import warnings

from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklearn_ntp import NTPLinearClassifier

LOADERS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer,
           "digits": load_digits}


def best_time(fit, repeat=3):
    """Best wall time of ``repeat`` calls of ``fit``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(name, X, y, solver):
    ntp = make_pipeline(StandardScaler(), NTPLinearClassifier(
        solver=solver, fit_intercept=True, compute_implicit_bias=False))
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    acc_ntp = cross_val_score(ntp, X, y, cv=5, scoring="accuracy").mean()
    acc_lr = cross_val_score(logreg, X, y, cv=5, scoring="accuracy").mean()
    t_ntp = best_time(lambda: ntp.fit(X, y))
    t_lr = best_time(lambda: logreg.fit(X, y))
    print(f"{name:<14}{solver:<6}{acc_ntp:>8.3f}{acc_lr:>8.3f}{acc_ntp - acc_lr:>+8.3f}"
          f"{t_ntp:>10.3f}{t_lr:>10.3f}{t_ntp / t_lr:>8.1f}", flush=True)


def raw_defaults(name, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        clf = NTPLinearClassifier().fit(X, y)
        seconds = time.perf_counter() - start
    accuracy = (clf.predict(X) == y).mean()
    print(f"{name:<14}{accuracy:>9.3f}{clf.learning_rate_:>12.3g}{clf.stop_reason_:>10}"
          f"{seconds:>9.2f}{len(caught):>10}", flush=True)


def run(solvers):
    print("Standardized, fit_intercept=True: 5-fold CV accuracy and fit time (s)")
    print(f"{'data set':<14}{'solver':<6}{'NTP':>8}{'LogReg':>8}{'diff':>8}"
          f"{'t NTP':>10}{'t LogReg':>10}{'ratio':>8}")
    for name, load in LOADERS.items():
        X, y = load(return_X_y=True)
        for solver in solvers:
            compare(name, X, y, solver)
    print("\nRaw data, every default: training accuracy")
    print(f"{'data set':<14}{'accuracy':>9}{'auto step':>12}{'stop':>10}{'time':>9}"
          f"{'warnings':>10}")
    for name, load in LOADERS.items():
        raw_defaults(name, *load(return_X_y=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solvers", nargs="+", default=["gd"],
                        choices=["gd", "ngd", "adam"])
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (default 1: timings without scheduling noise)")
    args = parser.parse_args()
    with threadpool_limits(args.threads):
        run(args.solvers)


if __name__ == "__main__":
    main()
