"""Property-based robustness of every public function and of the CLI loaders.

Hostile inputs (random shapes; float16/32/64, int, bool and object dtypes;
scales from 1e-300 to 1e300; NaN and inf; sparse targets with explicitly
stored zeros; read-only arrays; lists and DataFrames) either give a finite
result that matches an independent computation, or raise a single
``ValueError`` or ``TypeError`` whose message names an argument. Inputs are
never modified, and the command line never prints a traceback.
"""

import contextlib
import io
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cosine
from scipy.special import logsumexp
from scipy.special import softmax as scipy_softmax

from sklearn_ntp import NTPLinearClassifier, NTPSeparabilityChecker
from sklearn_ntp._cli._main import main
from sklearn_ntp.datasets import (
    contexts_from_sequences,
    load_python_tokens,
    make_ntp_data,
    make_toy_ntp_data,
)
from sklearn_ntp.datasets._files import InputError, load_data_file
from sklearn_ntp.implicit_bias import (
    NotNTPCompatibleError,
    NotNTPSeparableError,
    aggregate_contexts,
    check_ntp_separability,
    data_subspace,
    log_odds_solution,
    ntp_loss,
    ntp_loss_gradient,
    ntp_svm,
)
from sklearn_ntp.metrics import (
    entropy_lower_bound,
    excess_ntp_loss,
    log_odds_error,
    margin_alignment,
    neg_ntp_cross_entropy_scorer,
    ntp_cross_entropy,
    ntp_margin,
    out_of_support_mass,
)

pd = pytest.importorskip("pandas")

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])
#: Geometry (interior point, LP) is slower: fewer and tinier examples.
GEOMETRY_SETTINGS = settings(SETTINGS, max_examples=25)
# Hostile values are drawn often enough to be exercised, not so often that
# nearly every example is refused.
DTYPES = ["float64"] * 4 + ["float32", "float16", "int64", "bool", "object"]
SCALES = [0] * 6 + [-300, -170, -150, -20, 20, 150, 170, 300]
CONTAINERS = ["array"] * 3 + ["read-only", "list", "frame"]


# --------------------------------------------------------------------- strategies


def _container(A, kind):
    if kind == "read-only":
        A = A.copy()
        A.flags.writeable = False
        return A
    if kind == "list":
        return A.tolist()
    if kind == "frame":
        return pd.DataFrame(A) if A.ndim == 2 else pd.Series(A)
    return A


@st.composite
def matrices(draw, n_rows, n_cols):
    """A Gaussian matrix at a random scale, dtype and container, maybe with NaN/inf."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    A = rng.standard_normal((n_rows, n_cols)) * 10.0 ** draw(st.sampled_from(SCALES))
    if draw(st.integers(0, 14)) == 0:
        A.flat[rng.integers(A.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        A = A.astype(draw(st.sampled_from(DTYPES)))
    return _container(A, draw(st.sampled_from(CONTAINERS)))


@st.composite
def targets(draw, n_rows, n_tokens, subnormal=True):
    """Labels (ints, strings, floats, mixed) or probability rows (dense, sparse, frame)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["int"] * 3 + ["str", "soft", "soft", "sparse", "sparse",
                                 "soft-frame", "float", "mixed", "soft-bad"]))
    codes = rng.integers(0, n_tokens, size=n_rows)
    if kind == "int":
        return _container(codes, draw(st.sampled_from(CONTAINERS)))
    if kind == "str":
        return np.array([f"t{c}" for c in codes])
    if kind == "float":
        return codes + rng.uniform(0, 0.5, size=n_rows)  # continuous: invalid labels
    if kind == "mixed":
        return np.array([c if c % 2 else f"t{c}" for c in codes], dtype=object)
    P = rng.dirichlet(np.ones(n_tokens), size=n_rows)
    P[rng.random(P.shape) < 0.4] = 0.0
    P[np.arange(n_rows), codes] += 1e-3
    P /= P.sum(axis=1, keepdims=True)
    if subnormal and draw(st.booleans()):
        P[0] = 0.0
        P[0, codes[0]] = 1.0 - 1e-310
        P[0, (codes[0] + 1) % n_tokens] = 1e-310  # subnormal probability
    if kind == "soft-bad":
        P[rng.integers(n_rows)] *= draw(st.sampled_from([2.0, -1.0, np.nan, 1e300]))
    if kind == "sparse":
        Y = sp.csr_matrix(P)
        # Explicitly stored zeros, which must survive untouched.
        Y = sp.csr_matrix((np.append(Y.data, 0.0), np.append(Y.indices, 0),
                           np.append(Y.indptr[:-1], Y.indptr[-1] + 1)), shape=P.shape)
        return Y
    if kind == "soft-frame":
        return pd.DataFrame(P)
    return P


@st.composite
def weights(draw, n_rows):
    kind = draw(st.sampled_from(["none"] * 4 + ["positive"] * 3 + [
        "zeros", "negative", "nan", "huge", "int", "wrong-length"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.uniform(0.5, 2.0, size=n_rows)
    return {"none": None, "positive": w, "zeros": np.zeros(n_rows), "negative": -w,
            "nan": np.full(n_rows, np.nan), "huge": w * 1e300,
            "int": np.ones(n_rows, dtype=int), "wrong-length": w[:-1]}[kind]


@st.composite
def problems(draw, max_rows=8, max_features=4, max_tokens=4, subnormal=True):
    n = draw(st.integers(1, max_rows))
    d = draw(st.integers(1, max_features))
    V = draw(st.integers(2, max_tokens))
    # Repeated rows: contexts with several next tokens.
    X = draw(matrices(n, d))
    if draw(st.booleans()) and n > 1 and isinstance(X, np.ndarray) and X.flags.writeable:
        X[-1] = X[0]
    return X, draw(targets(n, V, subnormal)), draw(weights(n))


# ------------------------------------------------------------------------ helpers


def _copy(value):
    if sp.issparse(value):
        return value.copy()
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.copy(deep=True)
    return np.array(value, dtype=object) if isinstance(value, list) else (
        value.copy() if isinstance(value, np.ndarray) else value)


def _assert_unchanged(before, after):
    if sp.issparse(before):
        for attr in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(before, attr), getattr(after, attr))
    elif isinstance(before, (pd.DataFrame, pd.Series)):
        assert before.equals(after)
    elif isinstance(before, np.ndarray):
        old, new = before.astype(object).ravel(), np.asarray(after, dtype=object).ravel()
        assert old.shape == new.shape
        assert all(a == b or (a != a and b != b) for a, b in zip(old, new))  # NaN == NaN


def outcome(func, *args, names, **kwargs):
    """``func(*args, **kwargs)``, or None if it raised a clear error.

    A clear error is one ValueError or TypeError naming one of ``names``;
    inputs are checked unchanged either way.
    """
    inputs = list(args) + list(kwargs.values())
    snapshots = [_copy(value) for value in inputs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = func(*args, **kwargs)
        event(f"{getattr(func, '__name__', func)}: result")
        return result
    except (NotNTPSeparableError, NotNTPCompatibleError):
        return None  # conditions of the data, with their certificates
    except (ValueError, TypeError) as exc:
        event(f"{getattr(func, '__name__', func)}: refused")
        pattern = r"\b(" + "|".join(map(re.escape, names)) + r")\b"
        assert re.search(pattern, str(exc)), f"{func}: {exc!r} names none of {names}"
        return None
    finally:
        for before, after in zip(snapshots, inputs):
            _assert_unchanged(before, after)


def _dense(P):
    return P.toarray() if sp.issparse(P) else np.asarray(P)


def _naive_entropy(data):
    P, pi = _dense(data.probabilities), data.weights
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(P > 0, -P * np.log(np.where(P > 0, P, 1.0)), 0.0)
    return float(pi @ terms.sum(axis=1))


DATA_NAMES = ("X", "y", "sample_weight")


# ------------------------------------------------------------------ aggregation


@SETTINGS
@given(problems())
def test_aggregate_contexts(problem):
    X, y, w = problem
    data = outcome(aggregate_contexts, X, y, w, names=DATA_NAMES)
    if data is None:
        return
    P = _dense(data.probabilities)
    assert np.all(np.isfinite(data.embeddings)) and np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert data.weights.sum() == pytest.approx(1.0, rel=1e-12)
    assert np.isfinite(data.entropy) and data.entropy >= 0
    assert data.entropy == pytest.approx(_naive_entropy(data), rel=1e-9, abs=1e-300)
    # Every distinct row of positive weight is one context.
    rows = np.asarray(X, dtype=np.float64)[np.asarray(
        np.ones(len(data.context_index)) if w is None else w) > 0]
    assert data.n_contexts == len({tuple(r) for r in rows})


@SETTINGS
@given(problems())
def test_entropy_lower_bound(problem):
    X, y, w = problem
    H = outcome(entropy_lower_bound, y, X=X, sample_weight=w,
                names=("X", "y", "y_true", "sample_weight"))
    if H is not None:
        assert np.isfinite(H) and H >= 0
        assert H == pytest.approx(_naive_entropy(aggregate_contexts(X, y, w)),
                                  rel=1e-9, abs=1e-300)


# ----------------------------------------------------------------- loss, metrics


@SETTINGS
@given(problems(), st.integers(0, 2**32 - 1), st.sampled_from([-300, -20, 0, 2]))
def test_ntp_loss_and_gradient(problem, seed, w_exponent):
    X, y, w = problem
    data = outcome(aggregate_contexts, X, y, w, names=DATA_NAMES)
    if data is None:
        return
    W = np.random.default_rng(seed).standard_normal(
        (data.n_tokens, data.n_features)) * 10.0 ** w_exponent
    logits = data.embeddings.astype(np.float64) @ W.T
    if not np.all(np.isfinite(logits)) or np.abs(logits).max() > 1e150:
        return  # logits beyond float64's comfortable range: refused by design
    loss = outcome(ntp_loss, W, X, y, w, names=("W",) + DATA_NAMES)
    grad = outcome(ntp_loss_gradient, W, X, y, w, names=("W",) + DATA_NAMES)
    P, pi, H = _dense(data.probabilities), data.weights, data.embeddings
    expected = float(pi @ (logsumexp(logits, axis=1) - np.sum(P * logits, axis=1)))
    scale = max(1.0, float(np.abs(logits).max()))
    assert loss == pytest.approx(expected, rel=1e-9, abs=1e-12 * scale)
    expected_grad = (pi[:, None] * (scipy_softmax(logits, axis=1) - P)).T @ H
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-7,
                               atol=1e-10 * np.abs(H).max() + 1e-300)


@st.composite
def predictions(draw, n_rows, n_tokens):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    Q = scipy_softmax(rng.standard_normal((n_rows, n_tokens)) * 5, axis=1)
    kind = draw(st.sampled_from(["ok", "ok", "zeros", "float32", "nan", "bad-sum",
                                 "1-D", "frame"]))
    if kind == "zeros":
        Q[:, 0] = 0.0
        Q /= Q.sum(axis=1, keepdims=True)
    return {"ok": Q, "zeros": Q, "float32": Q.astype(np.float32),
            "nan": np.where(Q > 0.9, np.nan, Q), "bad-sum": Q * 1.5,
            "1-D": Q[:, 0], "frame": pd.DataFrame(Q)}[kind]


METRIC_NAMES = ("y_true", "y_prob", "X", "sample_weight", "labels", "y")


@SETTINGS
@given(problems(max_tokens=3), st.data())
def test_prediction_metrics(problem, draw):
    X, y, w = problem
    n_rows = len(y) if not sp.issparse(y) else y.shape[0]
    n_tokens = _dense(y).shape[1] if np.ndim(_dense(y)) == 2 else 3
    Q = draw.draw(predictions(n_rows, n_tokens))
    labels = None if np.ndim(_dense(y)) == 2 else [f"t{i}" for i in range(3)] if (
        np.asarray(y).dtype.kind == "U") else None
    ce = outcome(ntp_cross_entropy, y, Q, sample_weight=w, labels=labels, names=METRIC_NAMES)
    excess = outcome(excess_ntp_loss, y, Q, sample_weight=w, labels=labels,
                     names=METRIC_NAMES)
    mass = outcome(out_of_support_mass, y, Q, X=X, sample_weight=w, labels=labels,
                   names=METRIC_NAMES)
    error = outcome(log_odds_error, y, Q, X=X, sample_weight=w, labels=labels,
                    names=METRIC_NAMES)
    # Every row its own context; one distinct label is refused without labels.
    H = outcome(entropy_lower_bound, y, sample_weight=w, names=METRIC_NAMES)
    if ce is not None and excess is not None and H is not None:
        assert np.isfinite(ce) and ce >= 0
        assert ce == pytest.approx(H + excess, rel=1e-9, abs=1e-12)
    if mass is not None:
        assert -1e-12 <= mass <= 1 + 1e-12
    if error is not None:
        assert np.isfinite(error) and error >= 0


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1),
       st.sampled_from(SCALES), st.sampled_from(SCALES), st.sampled_from(DTYPES))
def test_margin_alignment(n_tokens, n_features, seed, e1, e2, dtype):
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((2, n_tokens, n_features))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        W, W_ref = (A * 10.0 ** e1).astype(dtype), (B * 10.0 ** e2).astype(dtype)
    cos = outcome(margin_alignment, W, W_ref, names=("W", "W_ref"))
    if cos is None:
        return
    Wf, Rf = np.asarray(W, dtype=np.float64), np.asarray(W_ref, dtype=np.float64)
    # scipy's cosine at unit scale (entries rescaled by their largest magnitude).
    expected = 1 - cosine((Wf / np.abs(Wf).max()).ravel(), (Rf / np.abs(Rf).max()).ravel())
    assert cos == pytest.approx(expected, abs=1e-9)


@SETTINGS
@given(problems(), st.integers(0, 2**32 - 1), st.sampled_from(SCALES))
def test_ntp_margin(problem, seed, exponent):
    X, y, w = problem
    data = outcome(aggregate_contexts, X, y, w, names=DATA_NAMES)
    if data is None:
        return
    W = np.random.default_rng(seed).standard_normal((data.n_tokens, data.n_features))
    margin = outcome(ntp_margin, W * 10.0 ** exponent, X, y, sample_weight=w,
                     names=("W",) + DATA_NAMES)
    if margin is None:
        return
    # The same margin at unit scale, by hand over every (j, z in S_j, v not in S_j).
    H = data.embeddings.astype(np.float64)
    h_scale = np.abs(H).max() or 1.0
    logits, mask = (H / h_scale) @ W.T, _dense(data.probabilities) > 0
    gaps = [logits[j, z] - logits[j, v] for j in range(data.n_contexts)
            for z in np.flatnonzero(mask[j]) for v in np.flatnonzero(~mask[j])]
    if not gaps:
        assert margin == np.inf
    else:
        assert margin == pytest.approx(min(gaps) * h_scale * 10.0 ** exponent,
                                       rel=1e-9, abs=1e-300)


# -------------------------------------------------------------------- geometry


# Subnormal probabilities: see the log_odds_solution case below.
@GEOMETRY_SETTINGS
@given(problems(max_rows=4, max_features=3, max_tokens=3, subnormal=False))
def test_geometry_functions_certify_or_refuse(problem):
    X, y, w = problem
    data = outcome(aggregate_contexts, X, y, w, names=DATA_NAMES)
    if data is None:
        return
    H = data.embeddings.astype(np.float64)
    if np.abs(H).max() > 1e100 or np.abs(H[H != 0]).min(initial=1.0) < 1e-100:
        return  # extreme scales: see the rescaling cases below
    W_mm = outcome(ntp_svm, X, y, w, names=DATA_NAMES)
    if W_mm is not None and not np.all(data.support_sizes == data.n_tokens):
        assert ntp_margin(W_mm, data) == pytest.approx(1.0, abs=1e-6)
    outcome(log_odds_solution, X, y, w, names=DATA_NAMES)
    outcome(data_subspace, X, y, w, names=DATA_NAMES)
    report = outcome(check_ntp_separability, X, y, w, names=DATA_NAMES)
    if report is not None:
        # U~ exists exactly when some off-support pair is separable.
        assert (report.n_separable_pairs > 0) == (report.max_margin_solution is not None)


def test_ntp_svm_at_tiny_scale_is_the_rescaled_solution():
    X, Y, w = make_toy_ntp_data()
    W = ntp_svm(X, Y, w)
    np.testing.assert_allclose(ntp_svm(X * 1e-150, Y, w), W * 1e150, rtol=1e-6)


def test_nearly_identical_contexts_are_not_reported_separable_with_a_large_margin():
    X, y = np.array([[1.0, 0.0], [1.0, 1e-9], [0.0, 1.0]]), [0, 1, 2]
    report = check_ntp_separability(X, y)
    # The first two contexts differ by 1e-9 (in any coordinates: their rows in
    # an orthonormal basis of the column space do) and need different top
    # tokens: the margin of those two pairs is below 1e-9, under the reported
    # resolution, so they are outside T; every other pair is separable.
    conflicting = np.zeros((3, 3), dtype=bool)
    conflicting[0, 1] = conflicting[1, 0] = True
    order = np.lexsort(X.T[::-1])  # contexts in the order of aggregate_contexts
    conflicting = conflicting[order]
    T = report.limit.separable_pairs
    np.testing.assert_array_equal(T, (~report.limit.data.support_mask) & ~conflicting)
    assert report.limit.certificate["farkas_bound"] <= 1e-5
    assert not report.is_separable
    # W~ is pulled apart along the 1e-9 difference of the two contexts: no
    # error bound can be claimed for it, and the status says why (the same
    # reason in any coordinates), while T and U~ hold.
    status = report.limit.status
    assert status.startswith("uncertified: finite component W~ (no curvature bound"), status
    assert "separable pairs" not in status and "U~" not in status


def test_log_odds_solution_with_subnormal_probabilities():
    tiny = 1e-310
    P = np.array([[tiny, 1.0 - tiny], [0.0, 1.0]])
    W = log_odds_solution(np.eye(2), P)
    logits = W.T  # rows: contexts e_0, e_1
    assert logits[0, 1] - logits[0, 0] == pytest.approx(np.log1p(-tiny) - np.log(tiny),
                                                        rel=1e-12)


# ------------------------------------------------------------------ estimators


@SETTINGS
@given(problems(max_rows=6, max_features=3, max_tokens=3, subnormal=False), st.booleans(),
       st.data())
def test_classifier(problem, implicit_bias, draw):
    X, y, w = problem
    clf = NTPLinearClassifier(max_iter=20, compute_implicit_bias=implicit_bias)
    fitted = outcome(clf.fit, X, y, w, names=DATA_NAMES)
    if fitted is None:
        return
    assert np.all(np.isfinite(clf.coef_)) and np.isfinite(clf.entropy_)
    new_proba = outcome(clf.predict_proba, draw.draw(matrices(3, clf.n_features_in_)),
                        names=("X",))
    if new_proba is not None:
        assert np.all(np.isfinite(new_proba))
        np.testing.assert_allclose(new_proba.sum(axis=1), 1.0, rtol=1e-5)
    proba = outcome(clf.predict_proba, X, names=("X",))
    if proba is not None:
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        score = outcome(clf.score, X, y, w, names=DATA_NAMES)
        assert score is None or (np.isfinite(score) and score <= -clf.entropy_ + 1e-5
                                 or w is not None)
        scorer = outcome(neg_ntp_cross_entropy_scorer, clf, X, y, names=METRIC_NAMES)
        assert scorer is None or np.isfinite(scorer)


@GEOMETRY_SETTINGS
@given(problems(max_rows=4, max_features=3, max_tokens=3, subnormal=False))
def test_separability_checker(problem):
    X, y, w = problem
    H = np.asarray(X, dtype=np.float64) if not isinstance(X, list) else np.array(X, float)
    if np.isfinite(H).all() and H.size and (np.abs(H).max() > 1e100
                                            or np.abs(H[H != 0]).min(initial=1) < 1e-100):
        return  # extreme scales: see the ntp_svm rescaling cases
    checker = NTPSeparabilityChecker(on_failure="ignore")
    if outcome(checker.fit, X, y, w, names=DATA_NAMES) is not None:
        assert bool(checker.separable_pairs_.any()) == (
            checker.max_margin_solution_ is not None)


# ------------------------------------------------------------------- datasets


def _mostly(valid):
    """``valid`` values most of the time, otherwise anything."""
    hostile = st.one_of(st.integers(-3, 0), st.floats(allow_nan=True), st.booleans(),
                        st.none(), st.text(max_size=2))
    return st.sampled_from([True] * 7 + [False]).flatmap(
        lambda is_valid: valid if is_valid else hostile)


@SETTINGS
@given(_mostly(st.integers(1, 6)), _mostly(st.integers(2, 6)), _mostly(st.integers(1, 6)),
       _mostly(st.integers(1, 2)), _mostly(st.integers(12, 200)),
       _mostly(st.sampled_from([1e-300, 1e-3, 0.5, 1.0, 1e4, 1e300])))
def test_make_ntp_data(n_contexts, vocab_size, n_features, support_size, n_sequences,
                       concentration):
    args = dict(n_contexts=n_contexts, vocab_size=vocab_size, n_features=n_features,
                support_size=support_size, n_sequences=n_sequences,
                concentration=concentration, random_state=0)
    out = outcome(make_ntp_data, **args, names=tuple(args))
    if out is not None:
        X, Y, w = out
        assert np.all(np.isfinite(X)) and np.all(np.isfinite(Y.data))
        np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-12)
        assert w.sum() == n_sequences


def corpora(tokens):
    return st.lists(st.lists(tokens, max_size=6), max_size=5)


@SETTINGS
@given(st.one_of(corpora(st.integers(0, 3)), corpora(st.sampled_from("abc")),
                 corpora(st.one_of(st.integers(0, 3), st.sampled_from("abc")))),
       st.sampled_from([1, 1, 2, 3, 0, -1]))
def test_contexts_from_sequences(sequences, k):
    out = outcome(contexts_from_sequences, sequences, k,
                  names=("sequences", "context_length", "vocabulary"))
    if out is not None:
        X, Y, w, contexts = out
        assert X.shape[0] == Y.shape[0] == len(w) == len(contexts)
        np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-12)
        pairs = sum(max(0, len(seq) - k) for seq in sequences)
        assert w.sum() == pairs


@settings(SETTINGS, max_examples=15)
@given(_mostly(st.integers(1, 30)), _mostly(st.integers(1, 2)),
       st.sampled_from([None, None, "missing-folder"]))
def test_load_python_tokens(vocab_size, max_files, path):
    names = ("vocab_size", "max_files")
    try:
        lines = outcome(load_python_tokens, vocab_size, max_files, path=path, names=names)
    except FileNotFoundError:
        assert path is not None  # a folder without Python sources: documented
        return
    if lines is not None:
        tokens = {token for line in lines for token in line}
        assert len(tokens) <= vocab_size + 1  # the kept tokens and "<unk>"
        assert all(line[-1] in ("<newline>", "<unk>") for line in lines)


@settings(SETTINGS, max_examples=10)
@given(st.one_of(st.integers(0, 2**32 - 1), st.integers(-5, -1), st.just(2**32),
                 st.floats(), st.text(max_size=2)))
@example(2**32)  # numpy's own message for these names only a "Seed"
@example(-1)
def test_make_toy_ntp_data(random_state):
    out = outcome(make_toy_ntp_data, random_state, names=("random_state", "seed"))
    if out is not None:
        X, Y, w = out
        assert X.shape == (3, 2) and Y.shape == (3, 5)
        np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-12)


# ------------------------------------------------------------------ CLI loaders


def _check_command(path):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(["check", str(path)])
    stderr = err.getvalue()
    assert "Traceback" not in stderr
    assert code in (0, 1)
    if code == 1:
        assert stderr.startswith("sklearn-ntp: error: ") and stderr.count("\n") == 1
    return code


CSV_TEXT = st.lists(
    st.lists(st.one_of(st.sampled_from(["0", "1", "-2.5", "1e308", "1e-320", "nan", "inf",
                                        "a", "b", "", " ", "#", "\ufeff1", "label", "x;y"]),
                       st.text(max_size=3)), min_size=0, max_size=4),
    max_size=6).map(lambda rows: "\n".join(",".join(row) for row in rows))


@SETTINGS
@given(CSV_TEXT)
@example("0,1,label\n1,0,a\n0,1,b\n")
@example("\ufeff1,0,a\n0,1,b\n")
def test_check_on_random_csv_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_text(text, encoding="utf-8")
    _check_command(path)


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from([".npz", ".csv"]))
def test_check_on_random_bytes(tmp_path_factory, content, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"data{suffix}"
    path.write_bytes(content)
    _check_command(path)


@SETTINGS
@given(st.data())
def test_check_on_random_npz_arrays(tmp_path_factory, draw):
    n = draw.draw(st.integers(0, 5))
    arrays = {}
    for name in draw.draw(st.sets(st.sampled_from(["X", "Y", "y", "sample_weight", "Z"]))):
        shape = draw.draw(st.sampled_from([(n,), (n, 2), (n, 1, 1), ()]))
        A = np.resize(np.asarray(draw.draw(matrices(max(n, 1), 2)), dtype=np.float64), shape)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            A = A.astype(draw.draw(st.sampled_from(
                ["float64", "float16", "int64", "bool", "U2", "complex128"])))
        arrays[name] = A
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    np.savez(path, **arrays)
    if _check_command(path) == 0:
        X, y, w = load_data_file(path)
        assert X.ndim == 2


def test_load_data_file_raises_input_error_only(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    with pytest.raises(InputError, match="must hold arrays 'X'"):
        load_data_file(path)


def _valid_npz_bytes(compressed):
    buffer = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    # Random numbers: a deflate stream long enough for flips to land in it.
    X = np.random.default_rng(0).standard_normal((30, 8))
    save(buffer, X=X, y=np.arange(30) % 3, sample_weight=np.ones(30))
    return buffer.getvalue()


@settings(SETTINGS, max_examples=40)
@given(st.booleans(), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                               min_size=1, max_size=4), st.booleans())
def test_check_on_corrupted_npz_archives(tmp_path_factory, compressed, flips, truncate):
    content = bytearray(_valid_npz_bytes(compressed))
    for position, value in flips:
        content[position % len(content)] = value
    if truncate:
        content = content[: flips[0][0] % len(content)]
    path = tmp_path_factory.mktemp("corrupt") / "data.npz"
    path.write_bytes(bytes(content))
    _check_command(path)


# ------------------------------------------------------------------- plotting


@settings(SETTINGS, max_examples=12)
@given(st.integers(1, 4), st.integers(2, 4), st.data())
def test_plots(n_rows, n_tokens, draw):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_ntp.plotting import plot_probability_matrix, plot_word_embeddings

    y = draw.draw(targets(n_rows, n_tokens, subnormal=False))
    X = draw.draw(matrices(n_rows, 2))
    try:
        ax = outcome(plot_probability_matrix, y, names=("y",))
        assert ax is None or ax.get_xlabel() == "token $z$"
        H = np.asarray(X, dtype=np.float64) if not isinstance(X, list) else np.array(X)
        if not (np.all(np.isfinite(H)) and 1e-100 < np.abs(H).max() < 1e100):
            return  # extreme scales: see the ntp_svm rescaling cases
        axes = outcome(plot_word_embeddings, X, y, names=DATA_NAMES)
        assert axes is None or len(axes) == 2
    finally:
        plt.close("all")
