"""Command line: ``sklearn-ntp`` / ``python -m sklearn_ntp``.

Sub-commands:

* ``reproduce`` — the paper's experiments (toy Fig. 1-2, App. A.2 Fig. 3-5);
* ``check FILE`` — separability report of data in a ``.npz`` or ``.csv`` file;
* ``corpus`` — the same study on next-token statistics of Python source code;
* ``phase-diagram`` — separability of random data over ``(m, d)``, locally or
  on a dask cluster.
"""

import argparse
import csv
import gc
import math
import sys
from pathlib import Path

from ..datasets._files import DEFAULT_MAX_BYTES, InputError, load_data_file

#: Iterations per optimizer of ``reproduce`` (paper App. A.2) and with ``--quick``.
DEFAULT_ITERATIONS, QUICK_ITERATIONS = 10_000, 1_000
#: Multipliers of the suffixes accepted by ``--max-size``.
SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _seed(text):
    value = int(text)
    if not 0 <= value < 2**32:  # what numpy's RandomState accepts
        raise argparse.ArgumentTypeError(f"expected a seed between 0 and 2**32 - 1, "
                                         f"got {text}")
    return value


def _size(text):
    """A byte count, optionally with a K, M or G suffix (powers of 1024)."""
    number, unit = text.strip().upper(), ""
    if number[-1:] in SIZE_UNITS:
        number, unit = number[:-1], number[-1]
    try:
        value = int(float(number) * SIZE_UNITS[unit])
    except (ValueError, OverflowError):
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size in bytes such as 512M or 2G, "
                                         f"got {text}")
    return value


def build_parser():
    """The argument parser of ``sklearn-ntp`` (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog="sklearn-ntp",
        description="Implicit bias of next-token prediction in linear models: "
                    "reproduce the paper's experiments, check data files, study "
                    "a real token corpus.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rep = commands.add_parser(
        "reproduce", help="run the paper's experiments and write figures and a summary",
        description="Fig. 1-2 toy (W*, W^mm, geometry, GD) and App. A.2 (GD, normalized "
                    "GD and Adam from a LeCun-normal initialization).")
    rep.add_argument("--out", type=Path, default=Path("ntp_results"), metavar="DIR",
                     help="output folder (default: ntp_results)")
    rep.add_argument("--iterations", type=_positive_int, default=None, metavar="N",
                     help=f"iterations per optimizer (default: {DEFAULT_ITERATIONS}, "
                          f"or {QUICK_ITERATIONS} with --quick)")
    rep.add_argument("--seed", type=_seed, default=0, metavar="S",
                     help="seed of the data and the initialization (default: 0)")
    rep.add_argument("--quick", action="store_true",
                     help=f"{QUICK_ITERATIONS} iterations per optimizer and no figures "
                          "(drawing them takes longer than the fits; --iterations "
                          f"{QUICK_ITERATIONS} alone keeps them)")
    rep.add_argument("-v", "--verbose", action="store_true",
                     help="also print every fit's progress (about ten lines per fit)")
    rep.set_defaults(handler=_run_reproduce)

    chk = commands.add_parser(
        "check", help="print the NTP separability report of a data file",
        description="FILE is a regular file in one of two formats (no other is read). "
                    "A .npz archive (np.savez) with .npy arrays X (2-D, numbers) and Y "
                    "(dense probability rows) or y (labels), and optionally "
                    "sample_weight; arrays of Python objects (pickles, scipy.sparse "
                    "matrices) are refused. Or a comma-separated .csv file (UTF-8, "
                    "optionally with a byte-order mark) with one (context, next token) "
                    "pair per row: feature columns, then the token label in the last "
                    "column; '#' comment lines are skipped, and so is a header row: one "
                    "with a non-numeric feature name, or the column numbers 0, 1, ... "
                    "that pandas writes, followed by a label name that is not a token. "
                    "Labels that are all decimal numbers are compared as numbers (1, "
                    "1.0 and 1e0 are one token), giving integer tokens if all are whole "
                    "numbers (within 64 bits) and otherwise text tokens spelled as on "
                    "their earliest line; other labels are compared as text. Files "
                    "larger than --max-size are refused before they are read; "
                    "directories, devices and pipes are refused.")
    chk.add_argument("file", type=Path, metavar="FILE",
                     help="the data file: a .npz archive or a .csv file (the only "
                          "formats read)")
    chk.add_argument("--max-size", type=_size, default=DEFAULT_MAX_BYTES, metavar="BYTES",
                     help="largest .csv file (also counted while it is read), or total "
                          "uncompressed size of the arrays read from an .npz archive, in "
                          "bytes or with a K, M or G suffix (default: "
                          f"{DEFAULT_MAX_BYTES // 2**20}M)")
    chk.set_defaults(handler=_run_check)

    cor = commands.add_parser(
        "corpus", help="study next-token statistics of Python source code",
        description="Contexts of the last k tokens of the standard library's Python "
                    "sources with random embeddings: separability report, then the "
                    "ridge-regularized NTP fit against scikit-learn's "
                    "LogisticRegression on the same objective.")
    cor.add_argument("--context-length", type=_positive_int, default=1, metavar="K",
                     help="tokens per context k (default: 1)")
    cor.add_argument("--vocab-size", type=_positive_int, default=50, metavar="N",
                     help="most frequent tokens kept; the others become <unk> (default: 50)")
    cor.add_argument("--features", type=_positive_int, default=64, metavar="D",
                     help="dimension d of the random context embeddings (default: 64)")
    cor.add_argument("--max-files", type=_positive_int, default=50, metavar="N",
                     help="Python files to read (default: 50)")
    cor.add_argument("--alpha", type=_positive_float, default=1e-4, metavar="A",
                     help="ridge strength of both fits (default: 1e-4)")
    cor.add_argument("--seed", type=_seed, default=0, metavar="S",
                     help="seed of the embeddings (default: 0)")
    cor.set_defaults(handler=_run_corpus)
    _add_phase_diagram_parser(commands)
    return parser


def _add_phase_diagram_parser(commands):
    pd_ = commands.add_parser(
        "phase-diagram", help="fraction of separable random data sets over a (m, d) grid",
        description="Draws random NTP data (make_ntp_data's construction) for every "
                    "pair of numbers of contexts m and features d and prints the "
                    "fractions that are NTP-separable and NTP_H-compatible. Runs on "
                    "local processes, or on a dask.distributed cluster with --scheduler.")
    pd_.add_argument("--n-contexts", type=_positive_int, nargs="+", default=[10, 20, 40],
                     metavar="M", help="numbers of contexts m (default: 10 20 40)")
    pd_.add_argument("--n-features", type=_positive_int, nargs="+",
                     default=[2, 5, 10, 15, 20, 30, 40], metavar="D",
                     help="embedding dimensions d (default: 2 5 10 15 20 30 40)")
    pd_.add_argument("--n-tokens", type=_positive_int, default=5, metavar="V",
                     help="vocabulary size V (default: 5)")
    pd_.add_argument("--support-size", type=_positive_int, default=2, metavar="S",
                     help="support size S of every context (default: 2)")
    pd_.add_argument("--n-draws", type=_positive_int, default=10, metavar="N",
                     help="random data sets per (m, d) (default: 10)")
    pd_.add_argument("--seed", type=int, default=0, metavar="S",
                     help="seed of all draws (default: 0)")
    pd_.add_argument("--n-jobs", type=int, default=None, metavar="N",
                     help="parallel tasks (default: 1; -1 for all cores or workers)")
    pd_.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="address of a dask.distributed scheduler, e.g. "
                          "tcp://10.0.0.1:8786: run the draws on its workers")
    pd_.add_argument("--out", type=Path, default=None, metavar="FILE",
                     help="also write the table to this .csv file")
    pd_.set_defaults(handler=_run_phase_diagram)


def _run_reproduce(args):
    from ..studies._reproduce import PARTIAL_TITLE, format_table, reproduce

    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out} is a file, not a folder")
    iterations = args.iterations or (QUICK_ITERATIONS if args.quick else DEFAULT_ITERATIONS)
    summary = reproduce(args.out, iterations=iterations, seed=args.seed,
                        verbose=int(args.verbose), figures=not args.quick)
    for key, title in (("toy", "Toy data (paper Fig. 1-2)"),
                       ("overparameterized", "Overparameterized data (paper App. A.2)"),
                       ("partially_separable", PARTIAL_TITLE)):
        part = summary[key]
        print(f"\n{title}: entropy H = {part['entropy']:.6g} nats, L* = "
              f"{part['loss_infimum']:.6g}; W~ in "
              f"{part['seconds_finite_component']:.3g} s, U~ in "
              f"{part['seconds_max_margin_solution']:.3g} s; {iterations} iterations")
        print(format_table(part["optimizers"]))
    print(f"\nWrote {args.out / 'summary.json'}, {args.out / 'summary.md'} and "
          f"{len(summary['figures'])} figures to {args.out}")
    return 0



def _run_check(args):
    from .._geometry._report import check_ntp_separability

    X, y, sample_weight = load_data_file(args.file, args.max_size)
    try:
        report = check_ntp_separability(X, y, sample_weight)
    except (ValueError, TypeError) as exc:  # TypeError: e.g. a structured dtype
        raise InputError(f"invalid data in {args.file}: {exc}") from None
    print(report)
    return 0


def _run_corpus(args):
    from ..studies._reproduce import corpus_study

    try:
        corpus_study(context_length=args.context_length, vocab_size=args.vocab_size,
                     n_features=args.features, max_files=args.max_files, alpha=args.alpha,
                     seed=args.seed)
    except ValueError as exc:  # settings that leave too little data to study
        raise InputError(f"corpus: {exc}") from None
    return 0


#: Seconds to wait for a dask scheduler before giving up.
SCHEDULER_TIMEOUT = 10


def _dask_client(address):
    """A ``dask.distributed.Client`` connected to ``address``, or an InputError."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise InputError("--scheduler needs dask.distributed: pip install "
                         "'dask[distributed]'") from None
    try:
        return Client(address, timeout=SCHEDULER_TIMEOUT)
    except (OSError, ValueError, TypeError) as exc:  # unreachable, or a malformed address
        message = f"cannot connect to the dask scheduler at {address}: {exc}"
    # The half-built Client closes itself when collected: collect it now rather
    # than while a later cluster starts its event loop, where that close deadlocks.
    gc.collect()
    raise InputError(message)


def _phase_diagram(args):
    from ..studies import separability_phase_diagram

    try:
        return separability_phase_diagram(
            n_contexts=args.n_contexts, n_features=args.n_features,
            n_tokens=args.n_tokens, support_size=args.support_size,
            n_draws=args.n_draws, random_state=args.seed, n_jobs=args.n_jobs)
    except ValueError as exc:  # e.g. a support larger than the vocabulary
        raise InputError(f"phase-diagram: {exc}") from None


def _run_phase_diagram(args):
    if args.scheduler is None:
        results = _phase_diagram(args)
    else:
        import joblib

        with _dask_client(args.scheduler), joblib.parallel_backend("dask"):
            results = _phase_diagram(args)
    names = list(results)
    rows = [[f"{results[name][i]:.4g}" for name in names]
            for i in range(len(results[names[0]]))]
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, name in enumerate(names)]
    for line in [names] + rows:
        print("  ".join(text.rjust(width) for text, width in zip(line, widths)))
    if args.out is not None:
        with open(args.out, "w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows(
                [names] + [list(values) for values in zip(*results.values())])
        print(f"Wrote {args.out}")
    return 0


def main(argv=None):
    """Run the ``sklearn-ntp`` command line and return its exit code.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (without the program name); ``sys.argv[1:]`` by default.

    Returns
    -------
    code : int
        0 on success, 1 when a file or its data is invalid, 2 on a usage error.

    Examples
    --------
    >>> from sklearn_ntp._cli._main import main
    >>> main(["check", "no_such_file.npz"])
    1
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.handler(args)
    except (InputError, OSError) as exc:  # OSError: e.g. an unwritable --out
        # Some messages (scikit-learn's among them) go on to print the offending
        # array over several lines; the first line states the problem.
        message = str(exc).partition("\n")[0].rstrip(" :")
        print(f"sklearn-ntp: error: {message}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # argparse: --help, or a usage error
        return exc.code if isinstance(exc.code, int) else 1
