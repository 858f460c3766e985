"""The experiments behind the command line.

* :func:`reproduce`: the paper's 2-D toy (Fig. 1-2) and App. A.2 (Fig. 3-5) with
  the paper's hyper-parameters, and gradient descent on partially separable
  data against the general limit ``(L*, W~, U~)``; writes ``summary.json``,
  ``summary.md`` and (when matplotlib is installed) PNG figures.
* :func:`corpus_study`: the same questions on next-token statistics of Python
  source code, and the NTP fit against scikit-learn's LogisticRegression.
"""

import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from .._classifier import NTPLinearClassifier
from .._geometry._report import check_ntp_separability
from .._loss._ntp_loss import ntp_loss
from ..datasets import (
    contexts_from_sequences,
    load_python_tokens,
    make_ntp_data,
    make_toy_ntp_data,
)
from ..datasets._synthetic import partially_separable_data
from ._rates import convergence_rate_curve

#: The optimizers of App. A.2 with the paper's hyper-parameters.
OPTIMIZERS = {
    "GD": {"solver": "gd", "learning_rate": 0.5},
    "NGD": {"solver": "ngd", "learning_rate": 0.01},
    "Adam": {"solver": "adam", "learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.99},
}
#: Beyond the paper: SGD over contexts and the accelerated solver, for the rate
#: study (the accelerated solver needs no more than 1000 iterations).
RATE_OPTIMIZERS = {
    "SGD": {"solver": "sgd", "learning_rate": 0.5, "batch_size": 10},
    "Accelerated": {"solver": "accelerated", "margin_step": 64.0, "max_iter": 1000},
}
#: Thresholds of cos(W - W~, U~) whose first-hit iteration the tables report.
THRESHOLDS = (0.99, 0.999)
#: The toy of Fig. 1-2 is trained with gradient descent only.
TOY_OPTIMIZERS = {"GD": OPTIMIZERS["GD"]}
#: Snapshots per run: enough for smooth curves, few enough to cost nothing.
N_SNAPSHOTS = 2000
#: Columns of the result tables: (summary key, header), in the general
#: limit's names (:data:`NOTATION`).
COLUMNS = (
    ("excess_loss", "CE - L*"),
    ("norm", "||W||"),
    ("alignment", "cos(W, U~)"),
    ("corrected_alignment", "cos(W - W~, U~)"),
    ("subspace_error", "||P_G(W) - W~||"),
)
#: The tables' names, explained once in ``summary.md`` (and in the README).
NOTATION = ("The tables use the names of the general limit (`implicit_bias_limit`), "
            "defined on any data: the loss infimum `L*`, the finite part `W~` in its "
            "subspace `G` (`P_G`: the projection onto `G`) and the max-margin solution "
            "`U~`. On compatible, separable data, as the paper's, they are the entropy "
            "`H`, `W*`, `F` and `W^mm`. `CE - L*` is the excess loss; `k to c` is the "
            "first recorded iteration with `cos(W - W~, U~) >= c`.")
#: Gradient tolerance of both L-BFGS fits of the corpus study.
FIT_TOL = 1e-6
FIGURES = {
    "toy_geometry": "toy_geometry.png",
    "toy_probabilities": "toy_probabilities.png",
    "toy_training": "toy_training.png",
    "optimizers": "optimizers.png",
    "rates": "rates.png",
    "beyond_separability": "beyond_separability.png",
}


#: Title of the experiment beyond the paper's two conditions.
PARTIAL_TITLE = "Partially separable data (beyond the paper)"


@contextlib.contextmanager
def _progress(message, stream):
    """Print ``message ...`` then the elapsed time on ``stream``."""
    print(f"{message} ...", end="", file=stream, flush=True)
    start = time.perf_counter()
    yield
    print(f" done ({time.perf_counter() - start:.1f} s)", file=stream, flush=True)


def _number(value):
    """JSON-safe float: NaN (no max-margin direction) becomes None."""
    value = float(value)
    return value if np.isfinite(value) else None


def _snapshot(clf, index):
    """Table metrics of the history snapshot ``index`` (0: initialization, -1: end)."""
    history = clf.history_
    values = {key: history[key][index] for key, _ in COLUMNS if key in history}
    values["excess_loss"] = history["loss"][index] - clf.loss_infimum_
    return {key: _number(values.get(key, np.nan)) for key, _ in COLUMNS}


def _step(params):
    """The step of a run: its learning rate, or the accelerated solver's margin step."""
    return params.get("learning_rate", params.get("margin_step"))


def iterations_to(history, threshold):
    """First recorded iteration with ``cos(W - W~, U~) >= threshold`` (None if never)."""
    hits = np.flatnonzero(np.nan_to_num(history["corrected_alignment"]) >= threshold)
    return int(history["iteration"][hits[0]]) if hits.size else None


def _fit(name, params, data, iterations, seed, stream, verbose, limit):
    """Fit one optimizer from the seeded LeCun-normal initialization, with the
    implicit-bias ``limit`` of ``data`` already computed."""
    X, Y, w = data
    params = {"max_iter": iterations, **params}
    iterations = min(iterations, params["max_iter"])
    clf = NTPLinearClassifier(
        **{**params, "max_iter": iterations}, tol=0.0, init="lecun", random_state=seed,
        history_every=max(1, iterations // N_SNAPSHOTS), verbose=verbose,
    )
    if verbose:
        print(f"  {name}: {iterations} iterations", file=stream, flush=True)
    start = time.perf_counter()
    # With verbose, the estimator's lines (every tenth of the run) show progress.
    with contextlib.redirect_stdout(stream):
        clf.fit(X, Y, sample_weight=w, implicit_bias_limit=limit)
    seconds = time.perf_counter() - start
    excess = clf.history_["loss"][-1] - clf.loss_infimum_
    print(f"  {name} (step {_step(params):g}): {clf.n_iter_} iterations, "
          f"CE - L* = {excess:.3g}, done ({seconds:.1f} s)", file=stream, flush=True)
    return clf, {
        **{key: value for key, value in params.items() if key != "solver"},
        "n_iter": int(clf.n_iter_),
        "fit_seconds": round(seconds, 3),
        "initial": _snapshot(clf, 0),
        "final": _snapshot(clf, -1),
        "iterations_to": {str(t): iterations_to(clf.history_, t) for t in THRESHOLDS},
    }


def _experiment(title, data, optimizers, iterations, seed, stream, verbose):
    """Separability report, then every optimizer; returns (summary part, report, fits)."""
    print(title, file=stream, flush=True)
    with _progress("  limit (L*, W~, U~)", stream):
        report = check_ntp_separability(*data)
    fits, results = {}, {}
    for name, params in optimizers.items():
        fits[name], results[name] = _fit(name, params, data, iterations, seed, stream,
                                         verbose, report.limit)
    part = {
        "n_contexts": report.n_contexts,
        "n_tokens": report.n_tokens,
        "n_features": report.n_features,
        "entropy": report.entropy,
        "is_compatible": report.is_compatible,
        "is_separable": report.is_separable,
        "loss_infimum": report.loss_infimum,
        "n_separable_pairs": report.n_separable_pairs,
        "n_off_support_pairs": report.n_off_support_pairs,
        "margin": _number(report.margin),
        "seconds_finite_component": round(report.timings["finite_component"], 4),
        "seconds_max_margin_solution": round(report.timings["max_margin_solution"], 4),
        "separability_report": str(report),
        "optimizers": results,
    }
    return part, report, fits


def _table_cells(optimizers):
    """Header and rows of the result table (final metrics of every optimizer)."""
    header = ["optimizer", "step", *(label for _, label in COLUMNS),
              *(f"k to {t:g}" for t in THRESHOLDS), "fit time (s)"]
    rows = [[name, f"{_step(result):g}",
             *(_format(result["final"][key]) for key, _ in COLUMNS),
             *(_count(result.get("iterations_to", {}).get(str(t))) for t in THRESHOLDS),
             f"{result['fit_seconds']:.2f}"]
            for name, result in optimizers.items()]
    return header, rows


def _count(value):
    return "not reached" if value is None else str(value)


def _format(value):
    return "n/a" if value is None else f"{value:.4g}"


def markdown_table(optimizers):
    """The result table in Markdown (pipes in headers escaped)."""
    header, rows = _table_cells(optimizers)
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |"
                     for line in lines)


def format_table(optimizers):
    """The result table as aligned plain text, for the terminal."""
    header, rows = _table_cells(optimizers)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     for line in [header, *rows])


def _section(title, part):
    return "\n".join([
        f"## {title}",
        "",
        f"m = {part['n_contexts']} contexts, V = {part['n_tokens']} tokens, "
        f"d = {part['n_features']} features; entropy H = {part['entropy']:.6g} nats, "
        f"loss infimum L* = {part['loss_infimum']:.6g} nats.",
        f"Time to compute W~: {part['seconds_finite_component']:.3g} s; "
        f"U~: {part['seconds_max_margin_solution']:.3g} s.",
        "",
        "```",
        part["separability_report"],
        "```",
        "",
        markdown_table(part["optimizers"]),
        "",
    ])


def summary_markdown(summary):
    """The summary as a Markdown document (what ``summary.md`` holds)."""
    settings = summary["settings"]
    lines = [
        "# sklearn-ntp: reproduction of the paper's experiments",
        "",
        f"{settings['iterations']} iterations per optimizer, seed {settings['seed']}, "
        "LeCun-normal initialization; final values. Run again with `sklearn-ntp "
        f"reproduce --iterations {settings['iterations']} --seed {settings['seed']}`.",
        "",
        NOTATION,
        "",
        _section("Toy data (paper Fig. 1-2)", summary["toy"]),
        _section("Overparameterized data (paper App. A.2, Fig. 3-5)",
                 summary["overparameterized"]),
        _section(PARTIAL_TITLE, summary["partially_separable"]),
    ]
    if summary["figures"]:
        lines += ["## Figures", ""] + [f"- `{name}`" for name in summary["figures"]]
    else:
        lines += ["No figures were drawn (`--quick` skips them; they need matplotlib)."]
    return "\n".join(lines) + "\n"


def _rate_curves(fits, data, report, seed):
    """Margin gap and alignment error of every App. A.2 fit on a grid of budgets."""
    return {name: convergence_rate_curve(clf.get_params(), data, clf.n_iter_,
                              report.finite_component, report.max_margin_solution,
                              seed=seed)
            for name, clf in fits.items() if clf.n_iter_ > 0}


#: Data-set names in the figures' titles.
TOY_TITLE = "Toy data (paper Fig. 1-2): m = 3 contexts, V = 5 tokens, d = 2"
MAIN_TITLE = ("Overparameterized data (paper App. A.2): m = {n_contexts} contexts, "
              "V = {n_tokens} tokens, d = {n_features}; GD, NGD, Adam, SGD, accelerated")
PARTIAL_FIGURE_TITLE = ("Partially separable data: m = {n_contexts} contexts, "
                        "V = {n_tokens} tokens, d = {n_features}; GD against (L*, W~, U~)")


def _write_figures(out, toy_data, toy_report, toy_fits, fits, partial_fits, titles,
                   curves):
    """Draw the five figures; returns their file names."""
    import matplotlib.pyplot as plt

    from ..plotting import (
        ImplicitBiasDisplay,
        plot_convergence_rates,
        plot_probability_matrix,
        plot_word_embeddings,
    )

    X, Y, w = toy_data
    axes = plot_word_embeddings(X, Y, sample_weight=w, W_star=toy_report.finite_component,
                                W_mm=toy_report.max_margin_solution, title=TOY_TITLE)
    probabilities = plot_probability_matrix(
        Y, title="Toy data (paper Fig. 1): next-token probabilities")
    figures = {"toy_geometry": axes[0].figure, "toy_probabilities": probabilities.figure}
    figures["toy_training"] = ImplicitBiasDisplay.from_estimator(
        toy_fits["GD"], name="GD", title=f"{TOY_TITLE}: gradient descent").figure_
    ax = None
    for name, clf in fits.items():
        ax = ImplicitBiasDisplay.from_estimator(clf, ax=ax, name=name, title=titles[0]).ax_
    figures["optimizers"] = ax[0].figure
    figures["rates"] = plot_convergence_rates(curves)[0].figure
    figures["beyond_separability"] = ImplicitBiasDisplay.from_estimator(
        partial_fits["GD"], name="GD", title=titles[1]).figure_
    for key, figure in figures.items():
        figure.savefig(out / FIGURES[key], dpi=120)
        plt.close(figure)
    return [FIGURES[key] for key in figures]


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def reproduce(out="ntp_results", *, iterations=10_000, seed=0, stream=None, verbose=0,
              figures=True):
    """Run the paper's experiments and write their summary and figures to ``out``.

    1. The 2-D toy (:func:`~sklearn_ntp.datasets.make_toy_ntp_data`): ``W*``,
       ``W^mm`` and gradient descent (``learning_rate=0.5``).
    2. App. A.2 (:func:`~sklearn_ntp.datasets.make_ntp_data` defaults: m = 50,
       V = 10, d = 60, S_j = 6): gradient descent (0.5), normalized GD (0.01)
       and Adam (0.01, betas 0.9 and 0.99) from a LeCun-normal initialization.
    3. Beyond the paper: gradient descent (0.5) on partially separable data
       (``datasets._synthetic.partially_separable_data``), tracked against the general limit
       ``(L*, W~, U~)`` of :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`.

    Parameters
    ----------
    out : str or path, default="ntp_results"
        Output folder (created if needed).
    iterations : int, default=10_000
        Iterations of every optimizer (``tol=0``: every run takes them all).
    seed : int, default=0
        Seed of the data and of the initialization.
    stream : file, default=None
        Where progress lines go; ``sys.stderr`` by default.
    verbose : int, default=0
        0: one line per step (per optimizer: its step, iterations, final
        excess loss and time); 1: also the estimator's progress lines, about
        ten per fit.
    figures : bool, default=True
        Draw the PNG figures (when matplotlib is installed). Drawing them
        takes longer than 1000 iterations of every fit.

    Returns
    -------
    summary : dict
        What ``summary.json`` holds.
    """
    stream = sys.stderr if stream is None else stream
    out = Path(out)
    toy_data = make_toy_ntp_data(random_state=seed)  # a bad seed fails before mkdir
    out.mkdir(parents=True, exist_ok=True)
    toy, toy_report, toy_fits = _experiment(
        "Toy data (paper Fig. 1-2)", toy_data, TOY_OPTIMIZERS, iterations, seed, stream,
        verbose)
    data = make_ntp_data(random_state=seed)
    main, report, fits = _experiment(
        "Overparameterized data (paper App. A.2)", data,
        {**OPTIMIZERS, **RATE_OPTIMIZERS}, iterations, seed, stream, verbose)
    partial, _, partial_fits = _experiment(
        PARTIAL_TITLE, partially_separable_data(random_state=seed), TOY_OPTIMIZERS,
        iterations, seed, stream, verbose)
    drawn = []
    if figures and _has_matplotlib():
        with _progress("Rate study (refits on a grid of budgets)", stream):
            curves = _rate_curves(fits, data, report, seed)
        with _progress("Figures", stream):
            drawn = _write_figures(out, toy_data, toy_report, toy_fits, fits, partial_fits,
                                   (MAIN_TITLE.format(**main),
                                    PARTIAL_FIGURE_TITLE.format(**partial)), curves)
    summary = {
        "settings": {"iterations": iterations, "seed": seed, "init": "lecun"},
        "toy": toy,
        "overparameterized": main,
        "partially_separable": partial,
        "figures": drawn,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(summary))
    return summary


def _fit_ntp(X, Y, w, alpha):
    return NTPLinearClassifier(solver="lbfgs", alpha=alpha, max_iter=5000, tol=FIT_TOL,
                               compute_implicit_bias=False).fit(X, Y, sample_weight=w)


def _fit_logistic(X, Y, w, alpha):
    """LogisticRegression on one row per (context, in-support token), weighted pi_j p_jz.

    Its objective ``C sum_i s_i log-loss_i + ||W||^2 / 2`` with weights summing
    to one and ``C = 1 / alpha`` is the NTP objective ``CE + (alpha/2)||W||^2``.
    """
    rows, tokens = Y.nonzero()
    weights = (w / w.sum())[rows] * np.asarray(Y[rows, tokens]).ravel()
    return LogisticRegression(C=1.0 / alpha, fit_intercept=False, max_iter=5000,
                              tol=FIT_TOL).fit(X[rows], tokens, sample_weight=weights)


#: The two fits of the corpus study: (printed name, fitting function).
CORPUS_FITS = (("NTPLinearClassifier(solver='lbfgs')", _fit_ntp),
               ("LogisticRegression, expanded rows", _fit_logistic))


def _compare_fits(X, Y, w, alpha, entropy, stream):
    """Fit both models on the tokens that occur as next tokens; print and return the results.

    LogisticRegression only models the labels it is given, so tokens that never
    follow any context are dropped for both fits (they carry no probability, so
    the entropy bound is unchanged).
    """
    Y = Y[:, np.flatnonzero(Y.getnnz(axis=0))]
    if Y.shape[1] < 3:
        # Two classes make LogisticRegression binary: one coefficient row and a
        # differently scaled penalty, no longer the same objective.
        raise ValueError(f"only {Y.shape[1]} tokens follow a context; the comparison "
                         "with LogisticRegression needs at least 3 (raise --vocab-size).")
    results, probas = {}, []
    for name, fit in CORPUS_FITS:
        start = time.perf_counter()
        model = fit(X, Y, w, alpha)
        seconds = time.perf_counter() - start
        ce = ntp_loss(model.coef_, X, Y, w)
        results[name] = {"loss": ce, "objective": ce + alpha / 2 * np.sum(model.coef_ ** 2),
                         "seconds": seconds}
        probas.append(model.predict_proba(X))
    gap = float(np.max(np.abs(probas[0] - probas[1])))
    print(f"\nFit of CE(W) + (alpha/2)||W||^2 with alpha = {alpha:g} on the {Y.shape[1]} "
          f"tokens that occur as next tokens ({Y.nnz} (context, token) rows):", file=stream)
    print(f"  {'model':<38}{'CE':>10}{'CE - H':>12}{'objective':>12}{'time (s)':>10}",
          file=stream)
    for name, r in results.items():
        print(f"  {name:<38}{r['loss']:>10.6f}{r['loss'] - entropy:>12.4e}"
              f"{r['objective']:>12.6f}{r['seconds']:>10.3f}", file=stream)
    print(f"  largest difference of predicted probabilities: {gap:.2e}", file=stream)
    return {"models": results, "max_probability_difference": gap}


def corpus_study(*, context_length=1, vocab_size=50, n_features=64, max_files=50,
                 alpha=1e-4, seed=0, stream=None):
    """Separability and NTP fits on next-token statistics of Python source code.

    Contexts are the last ``context_length`` tokens of every position in the
    logical lines of the standard library's sources
    (:func:`~sklearn_ntp.datasets.load_python_tokens`), embedded at random in
    ``n_features`` dimensions.

    Parameters
    ----------
    context_length : int, default=1
        Tokens per context.
    vocab_size : int, default=50
        Most frequent tokens kept, plus ``"<unk>"`` for the others.
    n_features : int, default=64
        Embedding dimension.
    max_files : int, default=50
        Source files read.
    alpha : float, default=1e-4
        Ridge strength of both fits.
    seed : int, default=0
        Seed of the embeddings.
    stream : file, default=None
        Where the report goes; ``sys.stdout`` by default.

    Returns
    -------
    results : dict
        ``n_contexts``, ``entropy``, ``loss_infimum``, ``report`` (a
        SeparabilityReport, with the general limit in ``report.limit``) and the
        fit comparison (``fits``).
    """
    stream = sys.stdout if stream is None else stream
    sequences = load_python_tokens(vocab_size=vocab_size, max_files=max_files)
    X, Y, w, contexts = contexts_from_sequences(
        sequences, context_length=context_length, embedding="random",
        n_features=n_features, random_state=seed)
    sizes = Y.getnnz(axis=1)
    print(f"Python sources (first {max_files} files): {len(sequences)} logical lines, "
          f"{int(w.sum())} (context, next token) pairs", file=stream)
    print(f"{len(contexts)} distinct contexts of {context_length} token(s); "
          f"support sizes: mean {sizes.mean():.3g}, median {np.median(sizes):g}; "
          f"contexts with a single next token: {int(np.sum(sizes == 1))}", file=stream)
    report = check_ntp_separability(X, Y, w)
    print(report, file=stream)
    if not report.is_separable:
        print(f"Not NTP-separable: gradient descent tends to the loss infimum L* = "
              f"{report.loss_infimum:.6g} nats (L* - H = "
              f"{report.loss_infimum - report.entropy:.3g}), with finite part W~ "
              f"(||W~|| = {np.linalg.norm(report.finite_component):.4g}) and "
              + ("no divergent direction (no off-support pair is separable)."
                 if report.max_margin_solution is None else
                 f"direction U~ on {report.n_separable_pairs} of "
                 f"{report.n_off_support_pairs} off-support pairs."), file=stream)
    fits = _compare_fits(X, Y, w, alpha, report.entropy, stream)
    return {"n_contexts": len(contexts), "entropy": report.entropy,
            "loss_infimum": report.loss_infimum, "report": report,
            "fits": fits}
