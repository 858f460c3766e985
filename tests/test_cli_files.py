"""What ``check`` accepts and refuses, and the command line's argument checks.

Every refusal is one line on stderr (no traceback); accepted files are checked
against entropies summed by hand from the raw rows.
"""

import io
import re
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from test_cli import assert_one_line_error, printed_entropy, run

from sklearn_ntp._reproduce import reproduce

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


def test_numeric_first_row_is_data_when_its_label_is_a_token(tmp_path):
    path = tmp_path / "onehot.csv"
    path.write_text("0,1,a\n1,0,a\n1,0,b\n")
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
