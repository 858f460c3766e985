"""The language-model shape: every token the next token of one context (V = m)."""

import cvxpy as cp
import numpy as np
import pytest
from _reference import naive_ntp_svm
from scipy.optimize import linprog

from sklearn_ntp._geometry import _infeasibility, _separable_pairs, _svm
from sklearn_ntp._geometry._infeasibility import separability_certificate
from sklearn_ntp._geometry._svm import _choose_methods
from sklearn_ntp.implicit_bias import (
    NotNTPSeparableError,
    aggregate_contexts,
    implicit_bias_limit,
    ntp_svm,
)


def test_limit_matches_the_explicit_primal_with_one_context_per_token():
    # All m (m - 1) off-support pairs are separable: U~ is the NTP-SVM of
    # the data, here against cvxpy on the explicit primal over the V x d variable.
    rng = np.random.default_rng(0)
    m, d = 60, 4
    H = rng.normal(size=(m, d))
    limit = implicit_bias_limit(H, np.arange(m))
    assert limit.status == "certified"
    assert limit.is_separable
    expected, problem, _, _ = naive_ntp_svm(H, np.eye(m))
    assert expected is not None, problem.status
    U = limit.max_margin_solution
    # Feasible on every pair, and no longer than the conic solution: the
    # optimum, to the conic solver's own accuracy (a few 1e-5 at this size).
    logits = H @ U.T
    margins = np.diag(logits)[:, None] - logits
    assert np.all(margins[~np.eye(m, dtype=bool)] >= 1 - 1e-8 * np.abs(logits).max())
    assert np.linalg.norm(U) <= np.linalg.norm(expected) * (1 + 1e-9)
    assert np.linalg.norm(U - expected) <= 1e-4 * np.linalg.norm(expected)


def explicit_primal(H):
    """The NTP-SVM of one context per token over the explicit V x d variable:
    one row vec((e_j - e_v) h_j^T) per off-support pair, built here densely."""
    m, d = H.shape
    j, v = np.nonzero(~np.eye(m, dtype=bool))
    rows = np.zeros((j.size, m, d))
    rows[np.arange(j.size), j] += H[j]
    rows[np.arange(j.size), v] -= H[j]
    w = cp.Variable(m * d)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)),
                         [rows.reshape(j.size, m * d) @ w >= 1])
    problem.solve(solver=cp.CLARABEL)
    assert problem.status == cp.OPTIMAL
    return w.value.reshape(m, d)


def test_limit_by_the_working_set_matches_the_explicit_primal():
    rng = np.random.default_rng(1)
    m, d = 80, 4
    H = rng.normal(size=(m, d))
    limit = implicit_bias_limit(H, np.arange(m), svm_method="working-set")
    assert limit.status == "certified"
    assert limit.is_separable
    U, expected = limit.max_margin_solution, explicit_primal(H)
    logits = H @ U.T
    margins = np.diag(logits)[:, None] - logits
    assert np.all(margins[~np.eye(m, dtype=bool)] >= 1 - 1e-8 * np.abs(logits).max())
    assert np.linalg.norm(U) <= np.linalg.norm(expected) * (1 + 1e-9)
    assert np.linalg.norm(U - expected) <= 1e-5 * np.linalg.norm(expected)


def test_restricted_problems_grow_linearly_with_the_contexts():
    # m (m - 1) margins, but the restricted problems stay at a few per context.
    from sklearn_ntp._geometry._svm_working_set import working_set_svm

    largest = {}
    for m in (120, 240):
        data = aggregate_contexts(np.random.default_rng(m).normal(size=(m, 4)), np.arange(m))
        result = working_set_svm(data, np.asarray(data.embeddings))
        assert result.converged
        largest[m] = max(result.sizes)
        assert largest[m] <= 20 * m
    assert largest[240] <= 2.5 * largest[120]


def test_few_tokens_start_from_a_fraction_of_the_margins():
    # 10 tokens (as digits): eight pairs a context would be eight of nine margins.
    from sklearn_ntp._geometry._svm_working_set import working_set_svm

    rng = np.random.default_rng(0)
    m, V = 300, 10
    y = rng.integers(0, V, m)
    H = 0.3 * rng.normal(size=(m, 12)) + 3 * np.eye(12)[y]
    data = aggregate_contexts(H, y)
    result = working_set_svm(data, np.asarray(data.embeddings))
    assert result.converged
    assert result.sizes[0] <= m * (V - 1) / 4
    expected = ntp_svm(H, y, method="interior-point")
    np.testing.assert_allclose(ntp_svm(H, y, method="working-set"), expected,
                               atol=1e-6 * np.abs(expected).max())


def test_limit_solves_no_linear_program_when_the_working_set_decides(monkeypatch):
    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("method"))
        return linprog(*args, **kwargs)

    for module in (_separable_pairs, _infeasibility):
        monkeypatch.setattr(module, "linprog", counted)
    m = 240
    H = np.random.default_rng(2).normal(size=(m, 4))
    limit = implicit_bias_limit(H, np.arange(m))
    assert limit.status == "certified" and limit.is_separable
    assert limit.certificate["separable_pairs_lp"] == "not needed"
    assert calls == []
    assert _choose_methods("auto", aggregate_contexts(H, np.arange(m))) == ("working-set",)


def test_working_set_on_infeasible_data_raises_as_the_other_methods():
    # h_j > 0 on one feature: a token beating every other at two contexts of
    # the same direction is impossible, so no margin is positive.
    X = np.random.default_rng(3).uniform(1.0, 2.0, size=(150, 1))
    y = np.arange(150)
    data = aggregate_contexts(X, y)  # contexts in sorted order
    off, H = ~data.support_mask.T, np.asarray(data.embeddings)
    errors = []
    for method in ("working-set", "interior-point"):
        with pytest.raises(NotNTPSeparableError) as info:
            ntp_svm(X, y, method=method)
        errors.append(info.value)
        A = info.value.certificate
        assert np.all(A[off] <= 0.0) and A[off].sum() < 0.0
        assert np.allclose(A.sum(axis=0), 0.0, atol=1e-12 * np.abs(A).max())
        assert np.linalg.norm(A @ H) <= 1e-9 * -A[off].sum()
    assert type(errors[0]) is type(errors[1])


@pytest.mark.slow
def test_partly_separable_data_skip_the_large_farkas_lp_of_the_working_set(monkeypatch):
    # Two contexts of the same direction with different tokens: two pairs are
    # not separable. The working set finds no NTP-SVM, and its Farkas LP
    # (V (m - rank) variables) is left to the limit's own paths.
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return separability_certificate(*args, **kwargs)

    monkeypatch.setattr(_svm, "separability_certificate", counted)
    m = 260
    H = np.random.default_rng(5).normal(size=(m, 3))
    H[1] = 2 * H[0]
    limit = implicit_bias_limit(H, np.arange(m))
    assert limit.status == "certified" and not limit.is_separable
    assert int((limit.effective_support & ~limit.data.support_mask).sum()) == 2
    assert calls == []
