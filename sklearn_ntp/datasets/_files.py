"""Reading ``(X, y, sample_weight)`` from the data files ``sklearn-ntp check`` reads.

Exactly two formats: ``.npz`` archives of ``.npy`` arrays (never pickles) and
comma-separated ``.csv`` files of (context features, token label) rows. Only
regular files are read, and never more than a byte budget; every problem is an
:class:`InputError` whose message names the file (and the line, for ``.csv``)
and what to change. The messages name the command line's ``--max-size``, the
option that sets the budget.
"""

import csv
import io
import math
import os
import re
import stat
import zipfile
import zlib
from array import array
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

#: Default of ``check --max-size``: the largest ``.csv`` file, or the largest
#: total uncompressed size of the arrays read from an ``.npz`` archive.
DEFAULT_MAX_BYTES = 256 * 2**20


class InputError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


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
    >>> from sklearn_ntp.datasets._files import load_data_file
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
