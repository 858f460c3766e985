"""The command line, run in-process through ``main``.

Numbers it prints are checked against independent computations: entropies
summed by hand from the raw data, margins from a cvxpy NTP-SVM, bigram
statistics counted directly from the token sequences.
"""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _cli_helpers import assert_one_line_error, printed_entropy, run
from _reference import naive_ntp_svm

from sklearn_ntp._cli._main import main
from sklearn_ntp.datasets import load_python_tokens, make_ntp_data, make_toy_ntp_data

ITERATIONS = 30
SEED = 3
OPTIMIZERS = ["GD", "NGD", "Adam", "SGD", "Accelerated"]
METRICS = ["excess_loss", "norm", "alignment", "corrected_alignment", "subspace_error"]


def naive_entropy(Y, w):
    P, pi = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y), w / w.sum()
    logs = np.log(P, out=np.zeros_like(P), where=P > 0)
    return -float(np.sum(pi[:, None] * P * logs))


# --- reproduce ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    code, stdout, stderr = run(["reproduce", "-v", "--iterations", str(ITERATIONS),
                                "--seed", str(SEED), "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    return code, stdout, stderr, out, summary


@pytest.mark.slow  # the full reproduce with its figures
def test_reproduce_writes_summary_and_figures(reproduced):
    code, stdout, stderr, out, summary = reproduced
    assert code == 0
    expected = {"summary.json", "summary.md", "toy_geometry.png", "toy_probabilities.png",
                "toy_training.png", "optimizers.png", "beyond_separability.png"}
    assert expected <= {p.name for p in out.iterdir()}
    for name in summary["figures"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["settings"] == {"iterations": ITERATIONS, "seed": SEED, "init": "lecun"}
    # Progress goes to stderr: with -v each fit reports its way to 100% and its time.
    # Toy (GD), App. A.2 (three optimizers), partially separable data (GD).
    assert stderr.count(", done (") == 2 + len(OPTIMIZERS)
    assert stderr.count(f"{ITERATIONS}/{ITERATIONS} (100%)") == 2 + len(OPTIMIZERS)
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_reproduce_entropies_and_margins_match_independent_computations(reproduced):
    summary = reproduced[4]
    for key, (X, Y, w) in (("toy", make_toy_ntp_data(random_state=SEED)),
                           ("overparameterized", make_ntp_data(random_state=SEED))):
        part = summary[key]
        assert part["entropy"] == pytest.approx(naive_entropy(Y, w), rel=1e-12)
        assert (part["n_contexts"], part["n_tokens"], part["n_features"]) == (
            Y.shape[0], Y.shape[1], X.shape[1])
        W_mm = naive_ntp_svm(X, Y.toarray())[0]
        assert part["margin"] == pytest.approx(1 / np.linalg.norm(W_mm), rel=1e-5)
        assert part["is_separable"] and part["is_compatible"]


@pytest.mark.slow
def test_reproduce_optimizer_results_are_consistent(reproduced):
    summary = reproduced[4]
    results = summary["overparameterized"]["optimizers"]
    assert list(results) == OPTIMIZERS
    assert list(summary["toy"]["optimizers"]) == ["GD"]
    steps = {name: result.get("learning_rate") for name, result in results.items()}
    assert steps == {"GD": 0.5, "NGD": 0.01, "Adam": 0.01, "SGD": 0.5, "Accelerated": None}
    assert results["Accelerated"]["margin_step"] == 64.0
    assert (results["Adam"]["beta_1"], results["Adam"]["beta_2"]) == (0.9, 0.99)
    for part in (summary["toy"], summary["overparameterized"]):
        for result in part["optimizers"].values():
            assert result["n_iter"] == ITERATIONS
            initial, final = result["initial"], result["final"]
            assert 0 <= final["excess_loss"] < initial["excess_loss"]  # loss >= entropy
            assert final["subspace_error"] >= 0 and final["norm"] > 0
            assert -1 <= final["alignment"] <= 1 and -1 <= final["corrected_alignment"] <= 1
    for result in results.values():  # first iteration reaching each threshold
        for threshold, k in result["iterations_to"].items():
            reached = result["final"]["corrected_alignment"] >= float(threshold)
            assert k is None or 0 <= k <= result["n_iter"]
            assert not reached or k is not None
    # Same seed, same LeCun initialization for every optimizer. The accelerated
    # solver records its loss through NTPLoss.value, the others through
    # value_and_grad: two summations, which differ in the last bit for about one
    # initialization in ten.
    initials = [results[name]["initial"] for name in OPTIMIZERS]
    assert all(i == pytest.approx(initials[0], rel=1e-12, abs=1e-15) for i in initials)


@pytest.mark.slow
def test_reproduce_partially_separable_part_is_measured_against_the_limit(reproduced):
    part = reproduced[4]["partially_separable"]
    assert not part["is_separable"] and part["is_compatible"]
    assert 0 < part["n_separable_pairs"] < part["n_off_support_pairs"]
    assert part["loss_infimum"] > part["entropy"]
    gd = part["optimizers"]["GD"]
    # The excess loss is over L*, which CE never beats (it does beat nothing below H).
    assert 0 < gd["final"]["excess_loss"] < gd["initial"]["excess_loss"]
    assert gd["final"]["corrected_alignment"] > 0


@pytest.mark.slow
def test_reproduce_prints_tables_and_writes_markdown(reproduced):
    _, stdout, _, out, summary = reproduced
    markdown = (out / "summary.md").read_text()
    assert summary["overparameterized"]["separability_report"] in markdown
    table = stdout.split("Overparameterized data")[1]
    for name in OPTIMIZERS:
        final = summary["overparameterized"]["optimizers"][name]["final"]
        row = re.search(rf"^\s*{name}\s+(.*)$", table, flags=re.MULTILINE).group(1).split()
        assert float(row[1]) == pytest.approx(final["excess_loss"], rel=1e-3)
        assert f"| {name} |" in markdown
    assert "\\|\\|W\\|\\|" in markdown  # pipes in headers escaped: a valid table
    assert str(out / "summary.json") in stdout


@pytest.mark.slow
def test_reproduce_explains_the_general_limit_names_before_the_tables(reproduced):
    """The tables say L*, W~, U~, P_G; the notes say what these are on the paper's data."""
    notes = (reproduced[3] / "summary.md").read_text().split("\n## ")[0]
    for general, paper in (("L*", "H"), ("W~", "W*"), ("U~", "W^mm"), ("G", "F")):
        assert general in notes and paper in notes
    assert "P_G" in notes and "cos(W - W~, U~)" in notes


def test_reproduce_quick_is_quiet_and_draws_no_figures(tmp_path):
    code, stdout, stderr = run(["reproduce", "--quick", "--iterations", "20", "--seed",
                                str(SEED), "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["figures"] == [] and not list(tmp_path.glob("*.png"))
    assert "No figures were drawn" in (tmp_path / "summary.md").read_text()
    # One line per optimizer (and per geometry step and title), no per-iteration lines.
    fit_lines = [line for line in stderr.splitlines() if "iterations, CE - L* =" in line]
    assert len(fit_lines) == 2 + len(OPTIMIZERS)
    # Per experiment (three of them): a title and a geometry line.
    assert "(100%)" not in stderr and len(stderr.splitlines()) == 6 + len(fit_lines)
    for name, line in zip(["GD", *OPTIMIZERS, "GD"], fit_lines):
        assert line.split()[0] == name and "20 iterations" in line


def test_reproduce_reports_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, stderr = run(["reproduce", "--iterations", "1", "--out", str(blocker)])
    assert_one_line_error(code, stderr)


@pytest.mark.parametrize("argv", [["reproduce", "--iterations", "0"],
                                  ["reproduce", "--iterations", "ten"], [],
                                  ["unknown"]])
def test_usage_errors_exit_2(argv):
    code, _, stderr = run(argv)
    assert code == 2 and "usage: sklearn-ntp" in stderr


def test_help_exits_0():
    code, stdout, _ = run(["--help"])
    assert code == 0
    assert all(command in stdout for command in ("reproduce", "check", "corpus"))


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "sklearn_ntp", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert "reproduce" in out.stdout and "usage: sklearn-ntp" in out.stdout


# --- check -------------------------------------------------------------------------


def test_check_npz_with_probability_rows(tmp_path):
    X = np.eye(3)
    Y = np.array([[0.5, 0.5, 0, 0], [0, 0.2, 0.8, 0], [0, 0, 0, 1.0]])
    w = np.array([1.0, 2.0, 1.0])
    path = tmp_path / "data.npz"
    np.savez(path, X=X, Y=Y, sample_weight=w)
    code, stdout, _ = run(["check", str(path)])
    assert code == 0
    assert "NTP separability report" in stdout
    assert printed_entropy(stdout) == pytest.approx(naive_entropy(Y, w), rel=1e-5)
    W_mm = naive_ntp_svm(X, Y)[0]
    margin = float(re.search(r"1/\|\|W\^mm\|\| = ([0-9.e+-]+)", stdout).group(1))
    assert margin == pytest.approx(1 / np.linalg.norm(W_mm), rel=1e-5)


def test_check_npz_with_labels_not_separable(tmp_path):
    # Three collinear contexts in 1-D: the middle one cannot single out its token.
    X = np.array([[1.0], [2.0], [3.0]])
    path = tmp_path / "labels.npz"
    np.savez(path, X=X, y=np.array([0, 1, 0]))
    code, stdout, _ = run(["check", str(path)])
    assert code == 0
    assert re.search(r"NTP-separable\s+no", stdout)


def test_check_csv_with_header_and_string_labels(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("# raw pairs\nf1,f2,token\n1,0,a\n1,0,b\n1,0,b\n0,1,c\n")
    code, stdout, _ = run(["check", str(path)])
    assert code == 0
    # Context (1, 0) is followed by a once and b twice; (0, 1) always by c.
    expected = -(3 / 4) * ((1 / 3) * np.log(1 / 3) + (2 / 3) * np.log(2 / 3))
    assert printed_entropy(stdout) == pytest.approx(expected, rel=1e-5)
    assert re.search(r"tokens V\s+3", stdout)


class _Marker:
    """An object whose unpickling creates a file: loading must never run it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_check_refuses_pickled_objects(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([_Marker(marker), _Marker(marker)], dtype=object),
             y=np.array([0, 1]))
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert "allow_pickle" in stderr
    assert not marker.exists()


def test_check_refuses_a_pickle_disguised_as_npz(tmp_path):
    import pickle

    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(_Marker(marker)))
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert not marker.exists()


@pytest.mark.parametrize("name, content, message", [
    ("garbage.npz", b"PK\x03\x04 this is not a zip archive", "cannot read"),
    ("single.npz", None, "not an .npz archive"),
    ("nox.npz", {"Z": np.eye(2), "y": np.array([0, 1])}, "'X'"),
    ("bad_rows.npz", {"X": np.eye(2), "Y": np.array([[0.5, 0.2], [0, 1.0]])},
     "invalid data"),
    ("ragged.csv", b"1,2,a\n1,b\n", "line 2 has 2 fields, expected 3"),
    ("text.csv", b"1,x,a\n2,y,b\n", "non-numeric feature"),
    ("data.txt", b"1,2\n", "unsupported file type"),
])
def test_check_reports_malformed_files(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, dict):
        np.savez(path, **content)
    elif content is None:
        with open(path, "wb") as file:
            np.save(file, np.eye(2))
    else:
        path.write_bytes(content)
    code, stdout, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert message in stderr and stdout == ""


@pytest.mark.parametrize("name, arrays, message", [
    ("x_1d.npz", {"X": np.arange(3.0), "y": np.array([0, 1, 0])},
     "array 'X' in {path} must be 2-D, got shape (3,)"),
    ("x_0d.npz", {"X": np.array(1.0), "y": np.array([0])},
     "array 'X' in {path} must be 2-D, got shape ()"),
    ("x_complex.npz", {"X": np.eye(2) + 1j, "y": np.array([0, 1])},
     "array 'X' in {path} must hold real numbers, got dtype complex128"),
    ("y_3d.npz", {"X": np.eye(2), "y": np.zeros((2, 1, 1))},
     "array 'y' in {path} must be 1-D or 2-D, got shape (2, 1, 1)"),
    ("w_text.npz", {"X": np.eye(2), "y": np.array([0, 1]),
                    "sample_weight": np.array(["a", "b"])},
     "array 'sample_weight' in {path} must hold real numbers"),
])
def test_check_names_the_array_of_bad_shape_or_type_in_one_line(tmp_path, name, arrays,
                                                                 message):
    path = tmp_path / name
    np.savez(path, **arrays)
    code, stdout, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert message.format(path=path) in stderr and stdout == ""


@pytest.mark.parametrize("content", [
    np.random.default_rng(0).bytes(200),
    b"",
    b"\x93NUMPY not an archive",
])
def test_check_reports_files_that_are_not_zip_archives(tmp_path, content):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert f"{path} is not an .npz archive" in stderr and "pickle" not in stderr


def test_multi_line_messages_are_cut_to_their_first_line(tmp_path, monkeypatch):
    from sklearn_ntp._geometry import _report

    def fail(*args):
        raise ValueError("Input X is wrong:\narray=[0. 1.]\nReshape your data.")

    monkeypatch.setattr(_report, "check_ntp_separability", fail)
    path = tmp_path / "data.csv"
    path.write_text("0,a\n1,b\n")
    code, _, stderr = run(["check", str(path)])
    assert_one_line_error(code, stderr)
    assert stderr == f"sklearn-ntp: error: invalid data in {path}: Input X is wrong\n"


def test_check_reports_missing_file(tmp_path):
    code, _, stderr = run(["check", str(tmp_path / "missing.npz")])
    assert_one_line_error(code, stderr)
    assert "No such file" in stderr


# --- corpus ------------------------------------------------------------------------


def bigram_statistics(sequences):
    """Distinct previous tokens and the conditional entropy of the next token."""
    pairs = Counter((seq[t - 1], seq[t]) for seq in sequences for t in range(1, len(seq)))
    contexts = Counter()
    for (context, _), count in pairs.items():
        contexts[context] += count
    n = sum(pairs.values())
    entropy = -sum(c / n * np.log(c / contexts[ctx]) for (ctx, _), c in pairs.items())
    return len(contexts), entropy


def test_corpus_study_small(capsys):
    code = main(["corpus", "--vocab-size", "12", "--features", "16", "--max-files", "3"])
    stdout = capsys.readouterr().out
    assert code == 0
    n_contexts, entropy = bigram_statistics(load_python_tokens(vocab_size=12, max_files=3))
    assert f"{n_contexts} distinct contexts of 1 token(s)" in stdout
    assert printed_entropy(stdout) == pytest.approx(entropy, rel=1e-5)
    assert re.search(r"overparameterized\s+yes", stdout)  # d = 16 > m = 12
    losses = {}
    for name in ("NTPLinearClassifier", "LogisticRegression"):
        line = next(line for line in stdout.splitlines() if line.strip().startswith(name))
        ce, excess, objective, seconds = map(float, line.split()[-4:])
        assert excess >= 0 and ce == pytest.approx(entropy + excess, abs=1e-5)
        losses[name] = objective
    # The two fits minimize the same objective: they agree on its minimum.
    assert losses["NTPLinearClassifier"] == pytest.approx(losses["LogisticRegression"],
                                                          abs=1e-5)


def test_corpus_rejects_bad_arguments():
    code, _, stderr = run(["corpus", "--vocab-size", "-3"])
    assert code == 2 and "positive integer" in stderr


def test_corpus_with_too_few_tokens_is_a_one_line_error():
    code, _, stderr = run(["corpus", "--vocab-size", "1", "--max-files", "5"])
    assert_one_line_error(code, stderr)
    assert "at least 3" in stderr
