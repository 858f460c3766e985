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
import io
import math
import os
import re
import stat
import sys
import zipfile
import zlib
from array import array
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

#: Iterations per optimizer of ``reproduce`` (paper App. A.2) and with ``--quick``.
DEFAULT_ITERATIONS, QUICK_ITERATIONS = 10_000, 1_000
#: Default of ``check --max-size``: the largest ``.csv`` file, or the largest
#: total uncompressed size of the arrays read from an ``.npz`` archive.
DEFAULT_MAX_BYTES = 256 * 2**20
#: Multipliers of the suffixes accepted by ``--max-size``.
SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


class InputError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


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


#: Leading bytes of a zip archive (a non-empty one, or an empty one), as numpy tests.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
#: Dimensions allowed for each array of a ``.npz`` file.
NPZ_DIMENSIONS = {"X": (2,), "Y": (1, 2), "y": (1, 2), "sample_weight": (1,)}
#: Arrays that must hold real numbers (targets may also be string labels).
REAL_ARRAYS = frozenset({"X", "sample_weight"})


def _check_npz_array(path, name, array):
    """Check an array's dimensions and type here, where its name is known.

    scikit-learn's messages for these cases name no array and print the whole
    array after the first line.
    """
    if array.ndim not in NPZ_DIMENSIONS[name]:
        allowed = " or ".join(f"{n}-D" for n in NPZ_DIMENSIONS[name])
        raise InputError(f"array '{name}' in {path} must be {allowed}, got shape "
                         f"{array.shape}")
    # Real numbers: booleans, integers or floats.
    if np.iscomplexobj(array) or (name in REAL_ARRAYS and array.dtype.kind not in "biuf"):
        raise InputError(f"array '{name}' in {path} must hold real numbers, got dtype "
                         f"{array.dtype}")
    return array


def _read_npz(path, file, max_bytes):
    # Anything but a zip archive would reach numpy's .npy or pickle readers and
    # get a message about those formats instead.
    if not file.read(4).startswith(ZIP_SIGNATURES):
        raise InputError(f"{path} is not an .npz archive (a zip file of .npy arrays)")
    file.seek(0)
    with zipfile.ZipFile(file) as archive:
        members = {info.filename: info for info in archive.infolist()}
        names = [name for name in ("X", "Y", "y", "sample_weight")
                 if name + ".npy" in members or name in members]
        target = next((name for name in ("Y", "y") if name in names), None)
        if "X" not in names or target is None:
            raise InputError(f"{path} must hold arrays 'X' and 'Y' (or 'y'); it holds "
                             f"{sorted(members)}")
        names = ["X", target] + (["sample_weight"] if "sample_weight" in names else [])
        infos = [_npy_member(path, members, name) for name in names]
        # Declared sizes bound what decompression may produce: a zip bomb is
        # refused here, before a byte of it is inflated.
        total = sum(info.file_size for info in infos)
        if total > max_bytes:
            raise InputError(f"the arrays of {path} take {total} bytes uncompressed, more "
                             f"than --max-size {max_bytes}")
        arrays = [_check_npz_array(path, name, _read_npy(archive, info, path, name))
                  for name, info in zip(names, infos)]
    return arrays[0], arrays[1], arrays[2] if len(arrays) == 3 else None


def _npy_member(path, members, name):
    if name + ".npy" not in members:
        raise InputError(f"member '{name}' of {path} is not a .npy array (np.savez "
                         f"writes '{name}.npy')")
    return members[name + ".npy"]


def _read_npy(archive, info, path, name):
    """Read one ``.npy`` member after checking its header against its declared size."""
    with archive.open(info) as file:
        version = np.lib.format.read_magic(file)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(file)
    if dtype.hasobject:
        what = (f"a single Python object (e.g. a scipy.sparse matrix given to np.savez): "
                f"store {name} as a dense array, e.g. {name}.toarray()" if shape == ()
                else "Python objects")
        raise InputError(f"array '{name}' in {path} holds {what}; pickled objects are "
                         "refused (loaded with allow_pickle=False)")
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise InputError(f"array '{name}' in {path} declares shape {shape} of {dtype}, "
                         f"more than the {info.file_size} bytes it holds")
    with archive.open(info) as file:
        return np.lib.format.read_array(file, allow_pickle=False)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


#: File types ``check`` refuses, by the ``stat`` test that recognizes them.
NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def _check_regular(path, mode):
    """Refuse anything but a regular file (symbolic links are followed).

    Devices and pipes report a size of 0 and may never end: ``--max-size``
    could not be checked before reading them.
    """
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in NOT_REGULAR if test(mode)), "not a regular file")
    if kind == "a directory":
        raise InputError(f"{path} is a directory; give the path of a .npz or .csv file")
    link = " (through a symbolic link)" if path.is_symlink() else ""
    raise InputError(f"{path} is {kind}{link}; check reads only regular files: save the "
                     "data to a .npz or .csv file first")


def _open_regular(path):
    """Open a regular file for reading in binary mode, refusing anything else."""
    # Checked before opening: opening a named pipe waits for a writer, and
    # opening a device may act on it.
    _check_regular(path, os.stat(path).st_mode)
    # Checked again on what was opened, in case the path changed in between;
    # O_NONBLOCK keeps such a pipe from blocking the open, and has no effect on
    # regular files.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        _check_regular(path, os.fstat(fd).st_mode)
    except InputError:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


class _BoundedReader(io.RawIOBase):
    """A binary file that raises InputError rather than give more than a limit.

    The file's size is checked before it is read, but a file may grow while
    it is read, or report a size of 0 (as ``/proc`` files do): the bytes
    actually read are counted.
    """

    def __init__(self, path, file, max_bytes):
        self._path, self._file, self._max_bytes, self._left = path, file, max_bytes, max_bytes

    def readable(self):
        return True

    def readinto(self, buffer):
        # One byte past the limit tells a file that ends there from a longer one.
        count = self._file.readinto(memoryview(buffer)[:self._left + 1])
        self._left -= count
        if self._left < 0:
            raise InputError(f"{self._path} has more bytes than --max-size "
                             f"{self._max_bytes} (more than its size on disk said)")
        return count


def _csv_text(path, file, max_bytes):
    """The text of a ``.csv`` file, refused if it has more than ``max_bytes``."""
    size = os.fstat(file.fileno()).st_size
    if size > max_bytes:
        raise InputError(f"{path} has {size} bytes, more than --max-size {max_bytes}")
    # utf-8-sig drops the byte-order mark of Excel's "CSV UTF-8".
    return io.TextIOWrapper(io.BufferedReader(_BoundedReader(path, file, max_bytes)),
                            encoding="utf-8-sig", newline="")


def _records(path, reader):
    """``(line number, fields)`` of the rows that are neither empty nor comments."""
    try:
        for row in reader:
            if row and not row[0].lstrip().startswith("#"):
                yield reader.line_num, row
    except csv.Error as exc:  # e.g. a field longer than csv.field_size_limit()
        raise InputError(f"{path} line {reader.line_num}: {exc}") from None


class _TokenLabels:
    """Distinct token labels in order of first appearance, with that line."""

    def __init__(self):
        self.codes, self.lines = {}, []

    def code(self, label, line):
        code = self.codes.setdefault(label, len(self.codes))
        if code == len(self.lines):
            self.lines.append(line)
        return code


def _read_csv(path, file, max_bytes):
    """Stream the rows into a float array and integer token codes.

    Memory stays proportional to the numbers read (8 bytes each), not to
    Python objects per field.
    """
    with _csv_text(path, file, max_bytes) as text:
        records = _records(path, csv.reader(text))
        first = next(records, None)
        if first is None:
            raise InputError(f"{path} has no data rows (it is empty or only comments)")
        width = len(first[1])
        if width < 2:
            raise InputError(_one_column_message(path, first[1][0]))
        features, codes, labels = array("d"), array("q"), _TokenLabels()
        for line, row in records:
            _append_row(path, line, row, width, features, codes, labels)
    if _is_header(path, first, labels):
        if not codes:
            raise InputError(f"{path} has a header row but no data rows")
    else:
        head_features, head_codes = array("d"), array("q")
        _append_row(path, *first, width, head_features, head_codes, labels)
        features, codes = head_features + features, head_codes + codes
    X = np.frombuffer(features, dtype=np.float64).reshape(-1, width - 1).copy()
    return X, _tokens(path, labels)[np.frombuffer(codes, dtype=np.int64)], None


def _one_column_message(path, field):
    separator = next((name for sep, name in ((";", "';'"), ("\t", "tab"))
                      if sep in field), None)
    found = f"; its rows look {separator}-separated" if separator else ""
    return (f"{path} must have comma-separated feature columns, then the token label "
            f"(found a single column{found})")


def _append_row(path, line, row, width, features, codes, labels):
    if len(row) != width:
        raise InputError(f"{path} line {line} has {len(row)} fields, expected {width} "
                         "like the first row (feature columns, then the token label)")
    label = row[-1].strip()
    if not label:
        raise InputError(f"{path} line {line} has an empty token label (its last field); "
                         "give every row a label, and remove the comma that ends the "
                         "rows if they all end with one")
    try:
        features.extend(float(value) for value in row[:-1])
    except ValueError as exc:
        raise InputError(f"{path} line {line} has a non-numeric feature ({exc})") from None
    codes.append(labels.code(label, line))


def _is_header(path, first, labels):
    """Whether the first row names the columns rather than holding data.

    Headers have a non-numeric feature name, or are the column numbers
    ``0, 1, ...`` written by pandas' ``to_csv`` followed by a label name that
    no data row uses as a token.
    """
    line, row = first
    names = [field.strip() for field in row[:-1]]
    if not all(map(_is_number, names)):
        return True
    if names != [str(i) for i in range(len(names))]:
        return False
    keys = _comparison_keys(path, [*labels.codes, row[-1].strip()], [*labels.lines, line])
    return keys[-1] not in keys[:-1]


#: A decimal number: the token labels are compared as numbers if all are one.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Largest magnitude of a numeric token (whole numbers are stored as int64).
INT64_MAX = Decimal(int(np.iinfo(np.int64).max))


def _out_of_range(path, label, line, what):
    shown = repr(label) if len(label) <= 24 else f"'{label[:12]}...' ({len(label)} characters)"
    return (f"{path} line {line}: the token label {shown} is a number {what}; labels that "
            "are all numbers are compared as numbers: use smaller numbers, or make the "
            "labels text (e.g. start them with a letter)")


def _comparison_keys(path, labels, lines):
    """What labels are compared by: their exact values if all are numbers, else their text.

    Exact decimal values, so that "1" and "1.0" are one token, while no two
    distinct numbers are merged by rounding and no digit count is too long
    (as it is for ``int``).
    """
    if not all(map(NUMBER.fullmatch, labels)):
        return list(labels)
    keys = []
    for label, line in zip(labels, lines):
        try:
            keys.append(Decimal(label))
        except InvalidOperation:  # an exponent beyond 10**18
            raise InputError(_out_of_range(path, label, line, "with too large an "
                                                              "exponent")) from None
    return keys


def _is_whole(number):
    _, digits, exponent = number.as_tuple()
    return exponent >= 0 or not any(digits[exponent:])


def _tokens(path, labels):
    """The token of each label code, under the comparison rule of ``check``.

    Labels that are all whole numbers give integer tokens; other labels give
    text tokens, equal numbers spelled as on the earliest line they are on.
    """
    texts, lines = list(labels.codes), labels.lines
    keys = _comparison_keys(path, texts, lines)
    index = {}
    token_of_code = [index.setdefault(key, len(index)) for key in keys]
    if all(isinstance(key, Decimal) and _is_whole(key) for key in keys):
        for key, text, line in zip(keys, texts, lines):
            if abs(key) > INT64_MAX:
                raise InputError(_out_of_range(path, text, line,
                                               "beyond the range of 64-bit integers"))
        values = np.array([int(key) for key in index], dtype=np.int64)
    else:
        names = {}
        for code in sorted(range(len(texts)), key=lines.__getitem__):
            names.setdefault(token_of_code[code], texts[code])
        # Objects, not a fixed-width string array: one long label would
        # otherwise set the width of every row's token.
        values = np.array([names[token] for token in range(len(index))], dtype=object)
    return values[np.array(token_of_code)]


#: Readers of the formats ``check`` reads, by file name extension.
READERS = {".npz": _read_npz, ".csv": _read_csv}


def load_data_file(path, max_bytes=DEFAULT_MAX_BYTES):
    """Read ``(X, y, sample_weight)`` from a ``.npz`` or ``.csv`` file.

    Parameters
    ----------
    path : path
        Regular file (directories, devices and pipes are refused): ``.npz``
        archive with ``.npy`` arrays ``X``, ``Y`` or ``y`` and optional
        ``sample_weight`` (read with ``allow_pickle=False``; arrays of Python
        objects are refused), or comma-separated ``.csv`` file with feature
        columns and a last column of token labels. No other format is read.
        Labels that are all decimal numbers are compared as numbers ("1" and
        "1.0" are one token): integer tokens if all are whole numbers, else
        text tokens spelled as on their earliest line. Other labels are
        compared as text.
    max_bytes : int, default=DEFAULT_MAX_BYTES
        Largest ``.csv`` file, or total uncompressed size of the arrays read
        from an ``.npz`` archive (declared sizes are checked before anything
        is decompressed, so zip bombs are refused). A ``.csv`` file is also
        refused as soon as more bytes than this are read from it.

    Returns
    -------
    X, y, sample_weight : ndarray (``sample_weight`` may be None)

    Raises
    ------
    InputError
        If the file cannot be read, is too large, or does not have the
        expected layout.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn_ntp._cli._main import load_data_file
    >>> path = Path(tempfile.mkdtemp()) / "pairs.csv"
    >>> _ = path.write_text("0,1,label\\n1.0,0.0,a\\n0.0,1.0,b\\n")
    >>> X, y, _ = load_data_file(path)
    >>> X.tolist(), y.tolist()
    ([[1.0, 0.0], [0.0, 1.0]], ['a', 'b'])
    >>> _ = path.write_text("1,0,7\\n0,1,7.0\\n0,1,2e0\\n")
    >>> load_data_file(path)[1].tolist()
    [7, 7, 2]
    """
    path = Path(path)
    try:
        # The file's type first: a directory has no format to complain about.
        with _open_regular(path) as file:
            reader = READERS.get(path.suffix.lower())
            if reader is None:
                raise InputError(f"{path}: unsupported file type {path.suffix!r}; "
                                 "expected .npz or .csv")
            return reader(path, file, max_bytes)
    # zipfile raises zlib.error on a corrupted deflate stream, RuntimeError on
    # an encrypted member and NotImplementedError on an unknown compression.
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError,
            csv.Error, RuntimeError, NotImplementedError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


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
