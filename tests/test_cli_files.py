"""What ``check`` accepts and refuses, and the command line's argument checks.

Every refusal is one line on stderr (no traceback); accepted files are checked
against entropies summed by hand from the raw rows.
"""

import io
import os
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from _cli_helpers import assert_one_line_error, printed_entropy, run

from sklearn_ntp.datasets._files import READERS, InputError, _BoundedReader, load_data_file
from sklearn_ntp.studies._reproduce import reproduce

LOG2 = np.log(2.0)


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# --- .npz ----------------------------------------------------------------------------


def test_npz_members_that_are_not_npy_arrays_are_one_line_errors(tmp_path):
    path = _zip(tmp_path / "raw.npz", {"X": b"not an array", "y": b"0,1"})
    code, stdout, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert "member 'X'" in stderr and "not a .npy array" in stderr and stdout == ""


def test_sparse_y_given_to_savez_asks_for_a_dense_array(tmp_path):
    path = tmp_path / "sparse.npz"
    np.savez(path, X=np.eye(2), Y=sp.csr_matrix(np.eye(2)))
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert "array 'Y'" in stderr and "dense array" in stderr
    assert "Object arrays cannot be loaded" not in stderr


def test_zip_bomb_is_refused_from_declared_sizes(tmp_path):
    # 16 MB of zeros deflate to a few kB: the declared size gives it away.
    path = _zip(tmp_path / "bomb.npz", {"X.npy": _npy_bytes(np.zeros((2000, 1000))),
                                        "y.npy": _npy_bytes(np.arange(2000) % 2)},
                compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**20
    code, _, stderr = run(["check", "--max-size", "1M", str(path)])
    assert_one_line_error(code, stderr)
    assert "--max-size 1048576" in stderr and "16016" in stderr


def test_npy_header_declaring_more_data_than_the_member_holds_is_refused(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    path = _zip(tmp_path / "lie.npz", {"X.npy": header.getvalue() + bytes(64),
                                       "y.npy": _npy_bytes(np.array([0, 1]))})
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert "declares shape (1000000, 1000000)" in stderr


def test_arrays_within_the_size_limit_are_read(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), y=np.array([0, 1, 1]))
    code, stdout, _ = run(["check", "--max-size", "4K", str(path)])
    assert code == 0
    assert printed_entropy(stdout) == pytest.approx(2 / 3 * LOG2, rel=1e-6)


# --- .csv ----------------------------------------------------------------------------


def test_numeric_header_written_by_pandas_is_skipped(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    frame["label"] = ["a", "b", "b"]
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    assert path.read_text().startswith("0,1,label\n")
    code, stdout, _ = run(["check", str(path)])
    assert code == 0
    # Context (1, 0) is followed by a and b (weight 2/3); (0, 1) by b only.
    assert printed_entropy(stdout) == pytest.approx(2 / 3 * LOG2, rel=1e-6)
    assert re.search(r"tokens V\s+2\n", stdout)  # "label" is not a token


@pytest.mark.parametrize("content", [
    "0,1,a\n1,0,a\n1,0,b\n",
    "0,1,1.0\n1,0,1\n1,0,2\n",  # its label equals a token as a number
])
def test_numeric_first_row_is_data_when_its_label_is_a_token(tmp_path, content):
    path = tmp_path / "onehot.csv"
    path.write_text(content)
    code, stdout, _ = run(["check", str(path)])
    assert code == 0
    assert re.search(r"distinct contexts m\s+2\n", stdout)


def test_utf8_bom_keeps_the_first_row(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("1,0,a\n0,1,b\n1,0,b\n".encode("utf-8-sig"))
    code, stdout, _ = run(["check", str(path)])
    assert code == 0
    assert printed_entropy(stdout) == pytest.approx(2 / 3 * LOG2, rel=1e-6)


@pytest.mark.parametrize("content, message", [
    ("1;0;a\n0;1;b\n", "look ';'-separated"),
    ("1\t0\ta\n0\t1\tb\n", "look tab-separated"),
    ("", "has no data rows"),
    ("# only a comment\n", "has no data rows"),
    ("f1,f2,token\n", "has a header row but no data rows"),
    ("1,0,a\n0,1\n", "line 2 has 2 fields, expected 3"),
])
def test_csv_layout_errors_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, stdout, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert message in stderr and "rows of equal length" not in stderr and stdout == ""


def test_csv_larger_than_max_size_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("1,0,a\n" * 400)
    code, _, stderr = run(["check", "--max-size", "1K", str(path)])
    assert_one_line_error(code, stderr)
    assert "2400 bytes, more than --max-size 1024" in stderr


@pytest.mark.parametrize("size", ["0", "-1K", "lots", "1T"])
def test_max_size_must_be_a_positive_byte_count(tmp_path, size):
    code, _, stderr = run(["check", f"--max-size={size}", str(tmp_path / "x.csv")])
    assert code == 2 and "expected a size in bytes" in stderr


# --- reproduce and corpus arguments -------------------------------------------------


@pytest.mark.parametrize("command", ["reproduce", "corpus"])
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_out_of_range_seeds_are_usage_errors_and_create_nothing(tmp_path, command, seed):
    out = tmp_path / "results"
    extra = ["--out", str(out)] if command == "reproduce" else []
    code, stdout, stderr = run([command, "--seed", seed, *extra])
    assert code == 2 and "expected a seed between 0 and 2**32 - 1" in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists()


def test_reproduce_function_with_a_bad_seed_creates_no_folder(tmp_path):
    out = tmp_path / "results"
    with pytest.raises(ValueError):
        reproduce(out, iterations=1, seed=-1)
    assert not out.exists()


def test_out_pointing_at_a_file_is_named_as_such(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, stderr = run(["reproduce", "--iterations", "1", "--out", str(blocker)])
    assert_one_line_error(code, stderr)
    assert f"--out {blocker} is a file, not a folder" in stderr
    assert "Errno" not in stderr


@pytest.mark.parametrize("alpha", ["inf", "nan", "-1", "0"])
def test_corpus_alpha_must_be_finite_and_positive_before_anything_is_printed(alpha):
    code, stdout, stderr = run(["corpus", "--alpha", alpha])
    assert code == 2 and "expected a positive finite number" in stderr
    assert stdout == ""


def _compressed_npz_bytes():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, X=np.random.default_rng(0).standard_normal((100, 100)),
                        y=np.arange(100) % 2)
    return bytearray(buffer.getvalue())


def test_corrupted_deflate_stream_is_a_one_line_error(tmp_path):
    content = _compressed_npz_bytes()
    content[2000] ^= 0xFF  # inside the compressed data of X.npy
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(content))
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert f"cannot read {path}" in stderr


def test_encrypted_member_is_a_one_line_error(tmp_path):
    content = _compressed_npz_bytes()
    # Set the "encrypted" flag of the first member in both zip headers.
    content[content.find(b"PK\x03\x04") + 6] |= 1
    content[content.find(b"PK\x01\x02") + 8] |= 1
    path = tmp_path / "encrypted.npz"
    path.write_bytes(bytes(content))
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert "encrypted" in stderr


# --- files that are not regular files ----------------------------------------------


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.timeout(30)  # reading /dev/zero never ends: a regression must not hang
@pytest.mark.parametrize("name", ["zeros.csv", "zeros.npz"])
def test_symlink_to_a_device_is_refused_before_reading(tmp_path, name):
    path = tmp_path / name
    path.symlink_to("/dev/zero")
    # --max-size keeps a regression of the type check from reading without end.
    code, stdout, stderr = run(["check", "--max-size", "1K", str(path)])
    assert_one_line_error(code, stderr)
    assert f"{path} is a character device (through a symbolic link)" in stderr
    assert "regular files" in stderr and stdout == ""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.timeout(30)  # opening a pipe without a writer blocks: must not hang
@pytest.mark.parametrize("name", ["pipe.csv", "pipe.npz"])
def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path, name):
    path = tmp_path / name
    os.mkfifo(path)
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert f"{path} is a named pipe; check reads only regular files" in stderr


@pytest.mark.parametrize("name", ["data", "data.csv"])
def test_directory_is_named_as_such(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert f"{path} is a directory; give the path of a .npz or .csv file" in stderr
    assert "unsupported file type" not in stderr and "Errno" not in stderr


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_bytes_read_are_capped_when_the_size_on_disk_is_wrong(tmp_path):
    # /proc files are regular files of size 0 that hold text: only counting
    # the bytes read can apply --max-size to them (or to a growing file).
    source = Path("/proc/self/status")
    assert source.stat().st_size == 0 and len(source.read_bytes()) > 100
    path = tmp_path / "status.csv"
    path.symlink_to(source)
    code, _, stderr = run(["check", "--max-size", "100", str(path)])
    assert_one_line_error(code, stderr)
    assert f"{path} has more bytes than --max-size 100" in stderr


@pytest.mark.parametrize("limit, refused", [(10, False), (9, True)])
def test_bounded_reader_gives_exactly_the_limit(tmp_path, limit, refused):
    reader = io.BufferedReader(_BoundedReader(tmp_path, io.BytesIO(b"x" * 10), limit))
    if refused:
        with pytest.raises(InputError, match=f"more bytes than --max-size {limit}"):
            reader.read()
    else:
        assert reader.read() == b"x" * 10


def test_check_help_states_the_formats_and_the_label_rule():
    code, stdout, _ = run(["check", "--help"])
    text = " ".join(stdout.split())
    assert code == 0 and "in one of two formats (no other is read)" in text
    assert all(suffix in text for suffix in READERS)
    assert "compared as numbers (1, 1.0 and 1e0 are one token)" in text


# --- .csv token labels ---------------------------------------------------------------


def _csv_entropy(rows):
    """Entropy of the next token given the context, tokens compared as floats."""
    pairs = Counter((tuple(row[:-1]), float(row[-1])) for row in rows)
    contexts = Counter(tuple(row[:-1]) for row in rows)
    n = len(rows)
    return -sum(c / n * np.log(c / contexts[ctx]) for (ctx, _), c in pairs.items())


@pytest.mark.parametrize("spelling", ["1.0", "1.", "1e0", "+1", "01", " 1.000 "])
def test_numeric_labels_are_compared_as_numbers(tmp_path, spelling):
    rows = [["1", "0", "1"], ["1", "0", spelling], ["0", "1", "2"], ["0", "1", "2"],
            ["1", "0", "2"]]
    path = tmp_path / "numeric.csv"
    path.write_text("".join(",".join(row) + "\n" for row in rows))
    code, stdout, _ = run(["check", str(path)])
    assert code == 0
    assert re.search(r"tokens V\s+2\n", stdout)
    assert printed_entropy(stdout) == pytest.approx(_csv_entropy(rows), rel=1e-5)
    y = load_data_file(path)[1]
    assert y.dtype == np.int64 and y.tolist() == [1, 1, 2, 2, 2]


@pytest.mark.parametrize("labels, expected", [
    # Not all numbers: compared as text.
    pytest.param(["1", "1.0", "a"], ["1", "1.0", "a"], id="text"),
    # Numbers, not all whole: text tokens spelled as on their earliest line.
    pytest.param(["0.50", "0.5", "1.5", "15e-1"], ["0.50", "0.50", "1.5", "1.5"],
                 id="fractions"),
    # Whole numbers at the ends of the 64-bit range.
    pytest.param([str(np.iinfo(np.int64).max), "-" + str(np.iinfo(np.int64).max), "0",
                  "-0"], [np.iinfo(np.int64).max, -np.iinfo(np.int64).max, 0, 0],
                 id="int64-range"),
    # A long label that is text is only a name.
    pytest.param(["a", "1" * 100_000], ["a", "1" * 100_000], id="long-text"),
])
def test_token_values_follow_the_documented_rule(tmp_path, labels, expected):
    path = tmp_path / "labels.csv"
    path.write_text("".join(f"{i + 1},{label}\n" for i, label in enumerate(labels)))
    assert load_data_file(path)[1].tolist() == expected


@pytest.mark.parametrize("content, message", [
    pytest.param("1,0,\n0,1,\n1,0,\n",
                 "line 2 has an empty token label (its last field); give every row a "
                 "label, and remove the comma that ends the rows", id="trailing-comma"),
    pytest.param("1,0," + "1" * 100_000 + "\n0,1,2\n",
                 "line 1: the token label '111111111111...' (100000 characters) is a "
                 "number beyond the range of 64-bit integers", id="100000-digits"),
    pytest.param("1,0,9223372036854775808\n0,1,2\n",
                 "line 1: the token label '9223372036854775808' is a number beyond the "
                 "range", id="2**63"),
    pytest.param("1,0,2\n0,1,1e99999999999999999999\n",
                 "line 2: the token label '1e99999999999999999999' is a number with too "
                 "large an exponent", id="exponent"),
    pytest.param("1,0,a\n0,1," + "b" * 200_000 + "\n",
                 "line 2: field larger than field limit", id="200000-characters"),
])
def test_csv_label_errors_name_the_line_and_the_fix(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, stdout, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert f"{path} {message}" in stderr and stdout == ""
    assert "int_max_str_digits" not in stderr and "single token" not in stderr
