"""Tests of sklearn_ntp.datasets against hand computations and independent counts."""

from collections import Counter, defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.stats import entropy

from sklearn_ntp._data._ntp_data import aggregate_contexts
from sklearn_ntp._exceptions import NotNTPSeparableError
from sklearn_ntp.datasets import (
    _python_tokens,
    _synthetic,
    contexts_from_sequences,
    load_python_tokens,
    make_ntp_data,
    make_toy_ntp_data,
)

SMALL = dict(n_contexts=8, vocab_size=6, n_features=5, support_size=3, n_sequences=400)


def _weighted_entropy(Y, weights):
    """Mean entropy of the rows of Y (scipy), weighted by ``weights``."""
    return np.average(entropy(Y.toarray(), axis=1), weights=weights)


def _naive_distributions(pairs):
    """Empirical next-token counts per context, by plain counting."""
    table = defaultdict(Counter)
    for context, token in pairs:
        table[context][token] += 1
    return table


# --------------------------------------------------------------- make_ntp_data


def test_make_ntp_data_defaults_follow_the_paper_setting():
    X, Y, w = make_ntp_data(random_state=0)
    assert X.shape == (50, 60) and Y.shape == (50, 10) and w.shape == (50,)
    assert sp.issparse(Y) and Y.format == "csr"
    np.testing.assert_allclose(np.asarray(Y.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    np.testing.assert_array_equal(Y.getnnz(axis=1), 6)
    assert w.sum() == 5000
    # Every context occurs, at least once with each of its support tokens.
    assert w.min() >= 6
    # Lemma 1's premise: d > m and full row rank.
    assert np.linalg.matrix_rank(X) == 50


def test_make_ntp_data_rows_are_empirical_frequencies():
    _, Y, w = make_ntp_data(**SMALL, random_state=1)
    counts = Y.multiply(w[:, None]).toarray()
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert counts[counts > 0].min() >= 1


def test_make_ntp_data_is_deterministic_given_random_state():
    a = make_ntp_data(**SMALL, random_state=3)
    b = make_ntp_data(**SMALL, random_state=np.random.RandomState(3))
    c = make_ntp_data(**SMALL, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1].toarray(), b[1].toarray())
    np.testing.assert_array_equal(a[2], b[2])
    assert not np.array_equal(a[0], c[0])


def test_pairs_aggregate_to_the_distinct_contexts():
    X, Y, w = make_ntp_data(**SMALL, random_state=5)
    X_raw, y_raw, w_raw = make_ntp_data(**SMALL, random_state=5, return_pairs=True)
    assert w_raw is None
    assert X_raw.shape == (400, 5) and y_raw.shape == (400,)
    data = aggregate_contexts(X_raw, y_raw, classes=np.arange(6))
    assert data.n_contexts == 8
    # Match contexts by embedding (aggregation sorts them).
    order = [int(np.flatnonzero((data.embeddings == h).all(axis=1))[0]) for h in X]
    np.testing.assert_allclose(data.probabilities[order].toarray(), Y.toarray(), atol=1e-12)
    np.testing.assert_allclose(data.weights[order], w / w.sum(), atol=1e-12)


def test_pairs_match_plain_counting():
    X, Y, w = make_ntp_data(**SMALL, random_state=6)
    X_raw, y_raw, _ = make_ntp_data(**SMALL, random_state=6, return_pairs=True)
    table = _naive_distributions((tuple(h), int(z)) for h, z in zip(X_raw, y_raw))
    for j, h in enumerate(X):
        counts = table[tuple(h)]
        assert sum(counts.values()) == w[j]
        expected = np.zeros(6)
        for z, c in counts.items():
            expected[z] = c / w[j]
        np.testing.assert_allclose(Y[j].toarray().ravel(), expected, atol=1e-12)


def test_pairs_are_shuffled():
    _, y_raw, _ = make_ntp_data(**SMALL, random_state=7, return_pairs=True)
    # Generated context by context, the labels would form few runs.
    assert np.count_nonzero(np.diff(y_raw)) > 200


def test_dirichlet_probabilities_have_the_expected_entropy():
    # E[entropy] of Dirichlet(1,...,1) on S atoms is sum_{k=2}^S 1/k (1.45 for S=6).
    X, Y, w = make_ntp_data(n_contexts=2000, vocab_size=10, n_features=2, support_size=6,
                            n_sequences=2000 * 2000, random_state=0)
    expected = sum(1 / k for k in range(2, 7))
    assert abs(_weighted_entropy(Y, w) - expected) < 0.03
    # A large concentration gives nearly uniform in-support probabilities.
    _, Y, w = make_ntp_data(n_contexts=20, vocab_size=10, n_features=2, support_size=6,
                            n_sequences=20 * 5000, concentration=1e4, random_state=0)
    assert abs(_weighted_entropy(Y, w) - np.log(6)) < 0.01


def test_supports_cover_tokens_uniformly():
    _, Y, _ = make_ntp_data(n_contexts=3000, vocab_size=5, n_features=2, support_size=2,
                            n_sequences=6000, random_state=0)
    frequency = Y.getnnz(axis=0) / 3000
    np.testing.assert_allclose(frequency, 2 / 5, atol=0.04)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_contexts=0), "n_contexts"),
    (dict(n_contexts=2.5), "n_contexts"),
    (dict(vocab_size=1), "vocab_size"),
    (dict(n_features=0), "n_features"),
    (dict(n_features=True), "n_features"),
    (dict(support_size=0), "support_size"),
    (dict(support_size=7), "support_size"),
    (dict(n_sequences=23), "n_sequences"),
    (dict(concentration=0.0), "concentration"),
    (dict(concentration=np.nan), "concentration"),
    (dict(concentration="1"), "concentration"),
    (dict(return_pairs="yes"), "return_pairs"),
])
def test_make_ntp_data_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_ntp_data(**{**SMALL, **kwargs})


# ----------------------------------------------------------- make_toy_ntp_data

TOY_PATTERN = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 1, 1], [0, 1, 0, 1, 1]], dtype=bool)


def _log_odds_residual(X, P):
    """Least-squares residual of the log-odds equations, as a dense system in vec(W)."""
    V = P.shape[1]
    rows, rhs = [], []
    for h, p in zip(X, P):
        support = np.flatnonzero(p)
        for z in support[1:]:
            e = np.zeros(V)
            e[z], e[support[0]] = 1.0, -1.0
            rows.append(np.kron(e, h))
            rhs.append(np.log(p[z] / p[support[0]]))
    A, b = np.array(rows), np.array(rhs)
    W = np.linalg.lstsq(A, b, rcond=None)[0]
    return np.max(np.abs(A @ W - b))


def _separable(X, mask):
    """Feasibility of (6a)-(6b) by a linear program over vec(W)."""
    V, d = mask.shape[1], X.shape[1]
    eq, ub = [], []
    for h, row in zip(X, mask):
        support = np.flatnonzero(row)
        for z in support:
            for v in range(V):
                e = np.zeros(V)
                e[z], e[v] = 1.0, -1.0
                if row[v] and v > z:
                    eq.append(np.kron(e, h))
                elif not row[v]:
                    ub.append(-np.kron(e, h))  # (e_z - e_v)^T W h >= 1
    res = linprog(np.zeros(V * d), A_ub=np.array(ub), b_ub=-np.ones(len(ub)),
                  A_eq=np.array(eq), b_eq=np.zeros(len(eq)), bounds=(None, None),
                  method="highs")
    return res.status == 0


def test_toy_has_the_papers_support_pattern():
    X, Y, w = make_toy_ntp_data()
    assert X.shape == (3, 2) and Y.shape == (3, 5) and sp.issparse(Y)
    np.testing.assert_array_equal(Y.toarray() > 0, TOY_PATTERN)
    # Token 2 follows context A only; every other token follows two contexts.
    np.testing.assert_array_equal(Y.getnnz(axis=0), [2, 2, 1, 2, 2])
    np.testing.assert_allclose(np.asarray(Y.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    np.testing.assert_array_equal(w, np.ones(3))


@pytest.mark.parametrize("seed", range(5))
def test_toy_is_compatible_and_separable(seed):
    X, Y, _ = make_toy_ntp_data(random_state=seed)
    assert _log_odds_residual(X, Y.toarray()) < 1e-10
    assert _separable(X, Y.toarray() > 0)


def test_separability_of_the_toy_pattern_is_not_automatic():
    # Why the generator checks: some 2-D embeddings cannot separate the pattern.
    rng = np.random.RandomState(0)
    outcomes = {_separable(rng.standard_normal((3, 2)), TOY_PATTERN) for _ in range(60)}
    assert outcomes == {True, False}


def test_toy_is_deterministic():
    a, b, c = make_toy_ntp_data(0), make_toy_ntp_data(0), make_toy_ntp_data(1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1].toarray(), b[1].toarray())
    assert not np.array_equal(a[0], c[0])


def test_toy_gives_up_after_bounded_redraws(monkeypatch):
    def never_separable(*args, **kwargs):
        raise NotNTPSeparableError("not separable")

    monkeypatch.setattr(_synthetic, "ntp_svm", never_separable)
    with pytest.raises(RuntimeError, match="attempts"):
        make_toy_ntp_data()


# ----------------------------------------------------- contexts_from_sequences


def test_fixed_windows_on_a_hand_made_corpus():
    corpus = [["a", "b", "a", "b"], ["a", "b", "b"], ["c"]]
    X, Y, w, contexts, vocab = contexts_from_sequences(corpus, 1, return_vocabulary=True)
    # Pairs: a->b, b->a, a->b | a->b, b->b ; "c" is too short but still a token.
    assert contexts == [("a",), ("b",)]
    assert vocab == ["a", "b", "c"]
    np.testing.assert_allclose(Y.toarray(), [[0, 1, 0], [0.5, 0.5, 0]])
    np.testing.assert_array_equal(w, [3, 2])
    np.testing.assert_array_equal(X, np.eye(2))


def test_longer_windows_skip_short_sequences():
    corpus = [[1, 2, 3, 1, 2, 4], [1, 2], [5, 1, 2, 3]]
    X, Y, w, contexts = contexts_from_sequences(corpus, context_length=2)
    # Pairs: (1,2)->3, (2,3)->1, (3,1)->2, (1,2)->4 | none | (5,1)->2, (1,2)->3
    assert contexts == [(1, 2), (2, 3), (3, 1), (5, 1)]
    expected = np.zeros((4, 5))  # columns: tokens 1..5
    expected[0, [2, 3]] = [2 / 3, 1 / 3]
    expected[1, 0] = expected[2, 1] = expected[3, 1] = 1.0
    np.testing.assert_allclose(Y.toarray(), expected)
    np.testing.assert_array_equal(w, [3, 1, 1, 1])


def test_autoregressive_prefixes_on_a_hand_made_corpus():
    corpus = ["abx", "aby", "acx", "acx"]
    X, Y, w, contexts, vocab = contexts_from_sequences(
        corpus, autoregressive=True, return_vocabulary=True)
    assert vocab == ["a", "b", "c", "x", "y"]
    assert contexts == [("a",), ("a", "b"), ("a", "c")]
    np.testing.assert_allclose(Y.toarray(), [[0, 0.5, 0.5, 0, 0],
                                             [0, 0, 0, 0.5, 0.5],
                                             [0, 0, 0, 1, 0]])
    np.testing.assert_array_equal(w, [4, 2, 2])
    _, _, w1, contexts1 = contexts_from_sequences(corpus, autoregressive=True,
                                                   max_context_length=1)
    assert contexts1 == [("a",)]
    np.testing.assert_array_equal(w1, [4])


def test_autoregressive_entropy_decreases_with_prefix_length():
    # App. C: longer prefixes have sparser supports. On the stdlib tokens the
    # per-length entropy is not monotone (prefix length 3 -> 4 rises), so the
    # property is checked on a corpus with hand-computed entropies.
    corpus = ["abx", "aby", "acx", "acx", "abxq", "acxq"]
    _, Y, w, contexts = contexts_from_sequences(corpus, autoregressive=True)
    lengths = np.array([len(c) for c in contexts])
    per_length = [_weighted_entropy(Y[lengths == t], w[lengths == t]) for t in (1, 2, 3)]
    # t=1: a -> b,b,c,c,b,c ; t=2: ab -> x,y,x ; ac -> x,x,x ; t=3: abx, acx -> q.
    expected_2 = (3 * entropy([2, 1]) + 3 * 0.0) / 6
    np.testing.assert_allclose(per_length, [np.log(2), expected_2, 0.0], atol=1e-12)
    assert per_length[0] >= per_length[1] >= per_length[2]


def test_vocabulary_fixes_the_columns():
    X, Y, w, contexts = contexts_from_sequences(["ab", "ba"], vocabulary=["b", "z", "a"])
    assert contexts == [("a",), ("b",)]
    np.testing.assert_array_equal(Y.toarray(), [[1, 0, 0], [0, 0, 1]])


def test_mixed_tokens_need_a_vocabulary():
    corpus = [[1, "a", 1, "a"]]
    with pytest.raises(ValueError, match="vocabulary"):
        contexts_from_sequences(corpus)
    _, Y, _, _ = contexts_from_sequences(corpus, vocabulary=["a", 1])
    np.testing.assert_array_equal(Y.toarray(), [[1, 0], [0, 1]])


def test_random_and_callable_embeddings():
    corpus = [list(range(300)) * 2]
    X, _, _, contexts = contexts_from_sequences(corpus, embedding="random",
                                                n_features=2000, random_state=0)
    assert X.shape == (300, 2000)
    norms = np.linalg.norm(X, axis=1)
    assert abs(norms.mean() - 1.0) < 0.01
    X2, *_ = contexts_from_sequences(corpus, embedding="random", n_features=2000,
                                     random_state=0)
    np.testing.assert_array_equal(X, X2)
    X3, _, _, contexts3 = contexts_from_sequences(
        [[3, 1, 4, 1, 5]], embedding=lambda c: [c[0], c[0] ** 2])
    assert contexts3 == [(3,), (1,), (4,)]
    np.testing.assert_array_equal(X3, [[3, 9], [1, 1], [4, 16]])


def test_python_token_windows_match_plain_counting():
    lines = load_python_tokens(vocab_size=40, max_files=5)
    _, Y, w, contexts, vocab = contexts_from_sequences(lines, 2, return_vocabulary=True)
    table = _naive_distributions(
        (tuple(line[t - 2:t]), line[t]) for line in lines for t in range(2, len(line)))
    assert set(contexts) == set(table)
    column = {tok: z for z, tok in enumerate(vocab)}
    for j, context in enumerate(contexts):
        counts = table[context]
        assert w[j] == sum(counts.values())
        for tok, count in counts.items():
            assert Y[j, column[tok]] == pytest.approx(count / w[j], abs=1e-12)


def test_fixed_window_entropy_decreases_with_window_on_python_tokens():
    lines = load_python_tokens()
    entropies = []
    for k in (1, 2, 3, 4):
        _, Y, w, _ = contexts_from_sequences(lines, k, embedding=lambda c: [0.0])
        entropies.append(_weighted_entropy(Y, w))
    assert np.all(np.diff(entropies) < 0)


def _ragged(context):
    return np.ones(len(context))


@pytest.mark.parametrize("args, kwargs, match", [
    (("abc",), {}, "single string"),
    ((5,), {}, "iterable"),
    (([1, 2],), {}, r"sequences\[0\]"),
    (([[[1], [2]]],), {}, "hashable"),
    ((["ab"],), dict(context_length=0), "context_length"),
    ((["ab"],), dict(context_length=1.5), "context_length"),
    ((["ab"],), dict(context_length=1, autoregressive=True), "context_length"),
    ((["ab"],), dict(max_context_length=2), "max_context_length"),
    ((["ab"],), dict(autoregressive=True, max_context_length=0), "max_context_length"),
    ((["ab"],), dict(autoregressive=1), "autoregressive"),
    ((["ab"],), dict(embedding="bert"), "embedding"),
    ((["ab"],), dict(embedding=np.eye(2)), "embedding"),
    ((["ab"],), dict(embedding="random"), "n_features"),
    ((["ab"],), dict(embedding="random", n_features=0), "n_features"),
    ((["ab"],), dict(n_features=3), "n_features"),
    ((["abac"],), dict(embedding=_ragged, autoregressive=True), "1-D vector"),
    ((["ab"],), dict(embedding=lambda c: [np.nan]), "NaN"),
    ((["ab"],), dict(vocabulary=["a"]), "vocabulary lacks"),
    ((["ab"],), dict(vocabulary=["a", "b", "a"]), "duplicate"),
    ((["ab"],), dict(return_vocabulary=None), "return_vocabulary"),
    ((["a", "b"],), {}, "no \\(context, next token\\) pair"),
    ((["ab"],), dict(context_length=2), "no \\(context, next token\\) pair"),
])
def test_contexts_from_sequences_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        contexts_from_sequences(*args, **kwargs)


# ---------------------------------------------------------- load_python_tokens


def _write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_python_tokens_are_deterministic_with_the_requested_vocabulary():
    lines = load_python_tokens(vocab_size=60, max_files=10)
    assert lines == load_python_tokens(vocab_size=60, max_files=10)
    vocab = Counter(tok for line in lines for tok in line)
    assert len(vocab) == 61 and "<unk>" in vocab
    # The kept tokens are the 60 most frequent of an unrestricted read.
    full = Counter(tok for line in load_python_tokens(10**6, max_files=10) for tok in line)
    kept = set(vocab) - {"<unk>"}
    assert min(full[t] for t in kept) >= max(full[t] for t in set(full) - kept)
    assert vocab["<unk>"] == sum(full[t] for t in set(full) - kept)


def test_logical_lines_drop_layout_and_abstract_literals(tmp_path):
    _write(tmp_path, {"m.py": (
        "# comment\n"
        "def f(a,\n"
        "      b):  # trailing\n"
        "    return f'{a}' + \"s\" * 2\n"
        "\n"
        "x = [1,\n"
        "     2]\n"
    )})
    assert load_python_tokens(vocab_size=100, path=tmp_path) == [
        ["def", "f", "(", "a", ",", "b", ")", ":", "<newline>"],
        ["return", "<str>", "+", "<str>", "*", "2", "<newline>"],
        ["x", "=", "[", "1", ",", "2", "]", "<newline>"],
    ]


def test_rare_tokens_become_unknown_with_ties_broken_by_text(tmp_path):
    _write(tmp_path, {"a.py": "x = 1\nx = y\n"})
    # Counts: x, =, <newline> twice; 1, y once. Two kept: "<newline>" and "=".
    assert load_python_tokens(vocab_size=2, path=tmp_path) == [
        ["<unk>", "=", "<unk>", "<newline>"], ["<unk>", "=", "<unk>", "<newline>"]]
    # One kept: "<newline>", then "<unk>" -- vocab_size + 1 distinct tokens.
    assert load_python_tokens(vocab_size=1, path=tmp_path) == [
        ["<unk>", "<unk>", "<unk>", "<newline>"]] * 2
    # Four of five kept ("1" before "y"): still five distinct tokens.
    assert load_python_tokens(vocab_size=4, path=tmp_path) == [
        ["x", "=", "1", "<newline>"], ["x", "=", "<unk>", "<newline>"]]
    # As many tokens as the corpus has distinct ones: nothing is replaced.
    assert load_python_tokens(vocab_size=5, path=tmp_path) == [
        ["x", "=", "1", "<newline>"], ["x", "=", "y", "<newline>"]]


def test_files_are_read_in_sorted_order_and_broken_ones_skipped(tmp_path):
    _write(tmp_path, {
        "b.py": "b\n",
        "a.py": "a\n",
        "aa.py": "if x:\n        y\n    z\n",  # inconsistent dedent
        "c/d.py": "d\n",
        "site-packages/e.py": "e\n",
        "notes.txt": "t\n",
    })
    first = [line[0] for line in load_python_tokens(path=tmp_path, max_files=None)]
    assert first == ["a", "b", "d"]
    assert load_python_tokens(path=tmp_path, max_files=2) == [["a", "<newline>"],
                                                              ["b", "<newline>"]]


def test_missing_sources_raise(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="No directory"):
        load_python_tokens(path=tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="No Python file"):
        load_python_tokens(path=tmp_path)
    _write(tmp_path, {"broken.py": "s = '''never closed\n"})
    with pytest.raises(FileNotFoundError, match="No Python file"):
        load_python_tokens(path=tmp_path)
    monkeypatch.setattr(_python_tokens.sysconfig, "get_paths",
                        lambda: {"stdlib": str(tmp_path / "absent")})
    with pytest.raises(FileNotFoundError, match="absent"):
        load_python_tokens()


@pytest.mark.parametrize("kwargs, match", [
    (dict(vocab_size=0), "vocab_size"),
    (dict(vocab_size="10"), "vocab_size"),
    (dict(max_files=0), "max_files"),
    (dict(max_files=2.0), "max_files"),
])
def test_load_python_tokens_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_python_tokens(**kwargs)


# ----------------------------------------------------------- tiny concentrations


@pytest.mark.parametrize("concentration", [1e-3, 1e-300])
def test_tiny_concentration_gives_one_dominant_token_per_context(concentration):
    X, Y, w = make_ntp_data(n_contexts=20, vocab_size=6, n_features=4, support_size=3,
                            n_sequences=2000, concentration=concentration, random_state=0)
    counts = np.rint(Y.toarray() * w[:, None])
    assert np.all(np.isfinite(Y.data)) and np.all(Y.getnnz(axis=1) == 3)
    np.testing.assert_allclose(counts.sum(axis=1), w)
    if concentration == 1e-300:
        # q_j is a vertex of the simplex: only the guaranteed pair of the other
        # support tokens, everything else on one token.
        assert np.all(np.sort(counts, axis=1)[:, -2] == 1)


def test_small_concentration_sampler_has_the_dirichlet_marginals():
    from scipy.stats import beta, kstest

    from sklearn_ntp.datasets._synthetic import _dirichlet

    a, size = 0.3, 4
    q = _dirichlet(np.random.RandomState(0), a, size, 4000)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-12)
    # Each coordinate of Dirichlet(a, ..., a) is Beta(a, (size - 1) a).
    for column in q.T:
        assert kstest(column, beta(a, (size - 1) * a).cdf).pvalue > 1e-3


def test_scipy_lower_bound_supports_the_lbfgs_callback():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    scipy_req = next(r for r in project["project"]["dependencies"] if r.startswith("scipy"))
    # minimize(callback=f) with f(intermediate_result) is scipy 1.11.
    major, minor = map(int, scipy_req.split(">=")[1].split(".")[:2])
    assert (major, minor) >= (1, 11)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partially_separable_data_fail_separability_only_at_the_collinear_pair(seed):
    """Checked by the explicit LP for T: some off-support pairs of contexts 0 and 1
    (h_1 = 2 h_0, disjoint supports) cannot be separated, every other one can."""
    from _reference import explicit_separable_pairs

    X, Y, w = _synthetic.partially_separable_data(random_state=seed)
    assert X.shape == (20, 30) and Y.shape == (20, 8)
    np.testing.assert_array_equal(w, 1.0)
    np.testing.assert_allclose(Y.sum(axis=1), 1.0)
    assert np.all((Y > 0).sum(axis=1) == 3)
    np.testing.assert_array_equal(X[1], 2 * X[0])
    assert not np.any((Y[0] > 0) & (Y[1] > 0))
    unseparated = (Y == 0) & ~explicit_separable_pairs(X, Y)
    assert unseparated[:2].any() and not unseparated[2:].any()


@pytest.mark.parametrize("random_state", [-1, 2**32, 1.5, "seed"])
@pytest.mark.parametrize("make", [make_ntp_data, make_toy_ntp_data])
def test_a_bad_random_state_is_refused_by_name(make, random_state):
    with pytest.raises(ValueError, match="random_state must be None, an integer between 0"):
        make(random_state=random_state)
