"""Defaults on scikit-learn's data sets: NTPLinearClassifier against LogisticRegression.

    python benchmarks/bench_sklearn_datasets.py [--solvers gd ngd adam] [--threads 1]

The main table fits the **raw** (unscaled) features of iris, wine,
breast_cancer and digits with defaults on both sides:
``NTPLinearClassifier(fit_intercept=True)`` against ``LogisticRegression()``
(which fits an intercept by default; without one, a linear model of raw
tabular features is a different model, so the comparison sets it on ours). It
prints the 5-fold CV accuracy of each (``scoring="accuracy"``: the
estimator's own ``score`` is the mean log-likelihood), the difference, the
time of one fit on the whole data set with ``compute_implicit_bias=False``
and the ratio NTP / LogisticRegression, then the same ratio with
``compute_implicit_bias`` at its default (True), whose geometry (``W~``,
``U~``, ``L*``) is timed separately because it is not what LogisticRegression
computes; both measured in this process. CV accuracies use
``compute_implicit_bias=False``: the geometry does not change the fitted
model. LogisticRegression's ConvergenceWarnings on raw data are counted,
not shown.

A second table fits the raw features with every default (no intercept, as in
the paper's model) except ``compute_implicit_bias=False``: the training
accuracy, ``feature_scale_``'s range, the auto step, how the run stopped
(never ``diverged``) and the number of warnings. A third, with
``--standardized``, repeats the comparison behind a StandardScaler.
"""

import argparse
import time
import warnings

from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
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


def quiet(function):
    """``function()`` with LogisticRegression's ConvergenceWarnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return function()


def compare(name, X, y, solver, standardized):
    def model(**params):
        ntp = NTPLinearClassifier(solver=solver, fit_intercept=True, **params)
        return make_pipeline(StandardScaler(), ntp) if standardized else ntp

    logreg = make_pipeline(StandardScaler(), LogisticRegression()) if standardized else (
        LogisticRegression())
    fast = model(compute_implicit_bias=False)
    acc_ntp = cross_val_score(fast, X, y, cv=5, scoring="accuracy").mean()
    acc_lr = quiet(lambda: cross_val_score(logreg, X, y, cv=5, scoring="accuracy").mean())
    t_lr = quiet(lambda: best_time(lambda: logreg.fit(X, y)))
    t_ntp = best_time(lambda: fast.fit(X, y))
    t_geometry = best_time(lambda: model().fit(X, y), repeat=1)
    print(f"{name:<14}{solver:<6}{acc_ntp:>8.3f}{acc_lr:>8.3f}{acc_ntp - acc_lr:>+8.3f}"
          f"{t_ntp:>9.3f}{t_lr:>9.3f}{t_ntp / t_lr:>7.1f}{t_geometry:>10.2f}"
          f"{t_geometry / t_lr:>8.0f}", flush=True)


def raw_defaults(name, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        clf = NTPLinearClassifier(compute_implicit_bias=False).fit(X, y)
        seconds = time.perf_counter() - start
    accuracy = (clf.predict(X) == y).mean()
    scales = f"{clf.feature_scale_.min():g}..{clf.feature_scale_.max():g}"
    print(f"{name:<14}{accuracy:>9.3f}{scales:>16}{clf.learning_rate_:>12.3g}"
          f"{clf.stop_reason_:>10}{seconds:>9.2f}{len(caught):>10}", flush=True)


def run(solvers, standardized):
    for scaled in (False, True) if standardized else (False,):
        title = "Standardized" if scaled else "Raw features"
        print(f"{title}, fit_intercept=True vs LogisticRegression(): 5-fold CV accuracy; "
              "fit time (s) without and with the geometry")
        print(f"{'data set':<14}{'solver':<6}{'NTP':>8}{'LogReg':>8}{'diff':>8}"
              f"{'t NTP':>9}{'t LogReg':>9}{'ratio':>7}{'t default':>10}{'ratio':>8}")
        for name, load in LOADERS.items():
            X, y = load(return_X_y=True)
            for solver in solvers:
                compare(name, X, y, solver, scaled)
        print()
    print("Raw features, defaults (compute_implicit_bias=False): training accuracy")
    print(f"{'data set':<14}{'accuracy':>9}{'feature_scale_':>16}{'auto step':>12}"
          f"{'stop':>10}{'time':>9}{'warnings':>10}")
    for name, load in LOADERS.items():
        raw_defaults(name, *load(return_X_y=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solvers", nargs="+", default=["gd"],
                        choices=["gd", "ngd", "adam"])
    parser.add_argument("--standardized", action="store_true",
                        help="also compare behind a StandardScaler")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (default 1: timings without scheduling noise)")
    args = parser.parse_args()
    with threadpool_limits(args.threads):
        run(args.solvers, args.standardized)


if __name__ == "__main__":
    main()
