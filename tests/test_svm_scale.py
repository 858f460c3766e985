"""NTP-SVM paths (interior point, sequential dual, cvxpy) against independent references."""

import cvxpy as cp
import numpy as np
import pytest
from _reference import naive_ntp_svm, random_ntp_problem

from sklearn_ntp._geometry import _svm_certificate
from sklearn_ntp._geometry._infeasibility import separability_certificate
from sklearn_ntp._geometry._svm_certificate import polish
from sklearn_ntp._geometry._svm_dual_cd import project_columns, sequential_dual
from sklearn_ntp.implicit_bias import (
    CertificationError,
    NotNTPSeparableError,
    aggregate_contexts,
    ntp_svm,
)

METHODS = ["interior-point", "dual-cd", "cvxpy", "working-set", "auto"]


def planted_problem(rng, m, V, d, n_tied=1):
    """Separable by construction: the support of context j is the set of tokens
    with the largest logit under a planted decoder whose first ``n_tied`` rows
    are equal (so supports of size ``n_tied`` occur, with tied logits)."""
    H = rng.standard_normal((m, d))
    W0 = rng.standard_normal((V, d))
    W0[:n_tied] = W0[0]
    logits = H @ W0.T
    P = np.isclose(logits, logits.max(axis=1, keepdims=True), rtol=0, atol=1e-12).astype(float)
    return H, P / P.sum(axis=1, keepdims=True)


def nearly_collinear_problem(rng, m, V, d, gap):
    """One-hot labels from a planted decoder, plus a copy of context 0 moved
    by ``gap`` with a different label: separable, with a margin of order ``gap``."""
    H, P = planted_problem(rng, m, V, d)
    h = H[0] + gap * rng.standard_normal(d)
    label = (np.argmax(P[0]) + 1) % V
    return np.vstack([H, h]), np.vstack([P, np.eye(V)[label]])


def general_support_problem(rng, m, V, d):
    """Supports of every size from 1 to V - 1 (d > m, so separable by Lemma 1)."""
    H = rng.standard_normal((m, d))
    P = np.zeros((m, V))
    for j in range(m):
        size = 1 + j % (V - 1)
        P[j, rng.choice(V, size=size, replace=False)] = rng.uniform(0.1, 1.0, size)
    return H, P / P.sum(axis=1, keepdims=True)


CASES = {
    "full-rank": lambda rng: random_ntp_problem(rng, 60, 8, 80, 3),
    "rank-deficient": lambda rng: planted_problem(rng, 150, 6, 12, n_tied=2),
    "nearly-non-separable": lambda rng: nearly_collinear_problem(rng, 40, 4, 8, 1e-3),
    "general-support": lambda rng: general_support_problem(rng, 50, 7, 60),
    # Hard labels with d < m: the working set solves least-distance programs.
    "hard-labels": lambda rng: planted_problem(rng, 150, 6, 12),
}


@pytest.fixture(scope="module")
def references():
    """Each case with its naive cvxpy solution (full V x d variable), computed once."""
    out = {}
    for i, (name, make) in enumerate(CASES.items()):
        H, P = make(np.random.default_rng(i))
        W_ref, problem, *_ = naive_ntp_svm(H, P)
        assert problem.status == cp.OPTIMAL
        out[name] = H, P, W_ref
    return out


def rel_diff(A, B):
    return np.linalg.norm(A - B) / np.linalg.norm(B)


def check_constraints(W, H, P, atol=1e-8):
    """(6a)-(6b) straight from the definition."""
    logits = H @ W.T
    for j, row in enumerate(P):
        support = row > 0
        top = logits[j, support]
        assert np.ptp(top) <= atol * max(1.0, np.abs(logits).max())
        assert np.all(top.min() - logits[j, ~support] >= 1 - atol * max(1.0, np.abs(logits).max()))


# The sequential dual method is for full-row-rank embeddings: on hard-margin
# duals with d < m it converges slowly (and refuses rather than guess).
PAIRS = [(case, method) for case in CASES for method in METHODS
         if method != "dual-cd" or case in ("full-rank", "general-support")]


@pytest.mark.parametrize(("case", "method"), PAIRS)
def test_paths_agree_with_naive_formulation(references, case, method):
    H, P, W_ref = references[case]
    W = ntp_svm(H, P, method=method)
    check_constraints(W, H, P)
    # The naive solution is accurate to the conic solver's tolerance only;
    # its norm is the optimum up to that tolerance, and W must not exceed it.
    assert rel_diff(W, W_ref) < 1e-6
    assert np.linalg.norm(W) <= np.linalg.norm(W_ref) * (1 + 1e-7)


def test_500_contexts_match_naive_model():
    rng = np.random.default_rng(7)
    H, P = planted_problem(rng, 500, 4, 10)
    W_ref = naive_ntp_svm(H, P)[0]
    W = ntp_svm(H, P)  # auto: the primal path with d < m
    check_constraints(W, H, P)
    assert rel_diff(W, W_ref) < 1e-6
    H, P = random_ntp_problem(rng, 300, 4, 320, 2)
    W = ntp_svm(H, P, method="dual-cd")
    check_constraints(W, H, P)
    W_ref = naive_ntp_svm(H, P)[0]
    # Feasible and no longer than the conic solution: the optimum, up to the
    # conic solver's own accuracy (a few 1e-6 at this size).
    assert np.linalg.norm(W) <= np.linalg.norm(W_ref) * (1 + 1e-9)
    assert rel_diff(W, W_ref) < 2e-5


def test_sequential_dual_through_the_gram_matrix_takes_the_same_steps():
    H, P = random_ntp_problem(np.random.default_rng(4), 40, 6, 50, 2)
    off = (P == 0).T
    A_factor = sequential_dual(H, off, n_epochs=3, random_state=1)
    A_gram = sequential_dual(H, off, n_epochs=3, random_state=1, gram=H @ H.T)
    assert np.allclose(A_gram, A_factor, rtol=0, atol=1e-10 * np.abs(A_factor).max())


@pytest.mark.parametrize("use_gram", [False, True])
@pytest.mark.parametrize("sparse_nonzeros", [0, 10**9])
def test_conjugate_gradient_polish_matches_naive_formulation(references, monkeypatch, use_gram,
                                                             sparse_nonzeros):
    # No dense Gram matrix: the preconditioned CG polish (no sparse one either)
    # or the sparse LU of the Gram matrix, even on a small problem.
    monkeypatch.setattr(_svm_certificate, "DENSE_GENERATORS", 0)
    monkeypatch.setattr(_svm_certificate, "SPARSE_GRAM_NONZEROS", sparse_nonzeros)
    H, P, W_ref = references["general-support"]
    data = aggregate_contexts(H, P)
    Hd = data.embeddings
    # A rough dual iterate: the polish must correct its active set.
    A0 = sequential_dual(Hd, ~data.support_mask.T, n_epochs=50)
    A, W = polish(data, Hd, A0, gram=Hd @ Hd.T if use_gram else None)
    assert A is not None
    W = A @ Hd if W is None else W
    check_constraints(W, H, P)
    assert rel_diff(W, W_ref) < 1e-6


def verify_farkas(A, H, P):
    """Independent check of a Farkas certificate for (6a)-(6b)."""
    off = (P == 0).T
    assert np.allclose(A.sum(axis=0), 0.0, atol=1e-12 * np.abs(A).max())
    assert np.all(A[off] <= 0.0)
    total = -A[off].sum()
    assert total > 0
    # For any feasible W, <A H, W> >= total > 0; A H = 0 makes that impossible.
    assert np.linalg.norm(A @ H) <= 1e-9 * total * np.linalg.norm(H, axis=1).max()


@pytest.mark.parametrize("method", ["interior-point", "dual-cd", "cvxpy", "working-set"])
def test_infeasible_data_raise_with_verified_certificate(method):
    rng = np.random.default_rng(3)
    H, P = random_ntp_problem(rng, 60, 6, 8, 2)  # 60 contexts in 8 dimensions
    assert naive_ntp_svm(H, P)[1].status == cp.INFEASIBLE
    with pytest.raises(NotNTPSeparableError) as info:
        ntp_svm(H, P, method=method)
    data = aggregate_contexts(H, P)
    verify_farkas(info.value.certificate, data.embeddings, data.probabilities.toarray())


@pytest.mark.parametrize("method", ["interior-point", "dual-cd", "cvxpy", "working-set"])
@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_extreme_scales_give_the_rescaled_answer(method, scale):
    X = np.array([[1.0, 0.2], [0.3, 1.0], [-1.0, 0.4]])
    y = [0, 1, 2]
    W_ref = naive_ntp_svm(X, np.eye(3))[0]
    W = ntp_svm(X * scale, y, method=method)
    assert rel_diff(W * scale, W_ref) < 1e-6


@pytest.mark.parametrize("method", ["interior-point", "dual-cd", "cvxpy", "active-set"])
def test_badly_conditioned_features_are_solved_or_refused_for_what_they_are(method):
    # Two contexts 1e-9 apart in these features, but any two independent
    # contexts are orthonormal in other coordinates: the data are separable,
    # and only this metric makes the margin tiny. The exact solution is
    # W = [u, -u] / 2 with u = (1, -2e9) (u_1 >= 1, u_1 + 1e-9 u_2 <= -1).
    X = np.array([[1.0, 0.0], [1.0, 1e-9]])
    W_exact = np.array([[0.5, -1e9], [-0.5, 1e9]])
    try:
        W = ntp_svm(X, [0, 1], method=method)
    except CertificationError as exc:
        assert "badly conditioned" in str(exc) and exc.status == "ill_conditioned"
    else:
        assert rel_diff(W, W_exact) < 1e-6


def test_failed_lp_is_an_error_not_a_missing_certificate():
    rng = np.random.default_rng(3)
    H, P = random_ntp_problem(rng, 60, 6, 8, 2)
    data = aggregate_contexts(H, P)
    with pytest.raises(CertificationError, match="linear program") as info:
        separability_certificate(data, options={"time_limit": 0.0})
    assert info.value.status == "lp_1"


def test_projection_meets_its_kkt_conditions_and_beats_a_qp_solver():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((7, 20)) * 3
    off = rng.random((7, 20)) < 0.6
    off[rng.integers(7, size=20), np.arange(20)] = False  # a free entry per column
    A = project_columns(B, off)
    # KKT: A = B - theta - mu with mu >= 0 only on clipped off-support entries.
    assert np.allclose(A.sum(axis=0), 0.0, atol=1e-12)
    assert np.all(A[off] <= 0.0)
    theta = (B - A)[np.argmin(off, axis=0), np.arange(20)]
    mu = B - theta - A
    assert np.allclose(mu[~off], 0.0, atol=1e-12)
    assert np.all(mu[off] >= -1e-12)
    assert np.allclose(mu * A, 0.0, atol=1e-12)
    X = cp.Variable(B.shape)
    cp.Problem(cp.Minimize(cp.sum_squares(X - B)),
               [cp.sum(X, axis=0) == 0, cp.multiply(off, X) <= 0]).solve(solver=cp.CLARABEL)
    assert np.sum((A - B) ** 2) <= np.sum((X.value - B) ** 2) + 1e-9
    assert np.allclose(A, X.value, atol=1e-4)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="method"):
        ntp_svm(np.eye(2), [0, 1], method="newton")



def restricted_case(rng, n_tied, m=80, V=5, d=6):
    """Ties and margins of a planted problem in unit-norm coordinates."""
    from sklearn_ntp._geometry._generators import margin_pairs, support_pairs

    H, P = planted_problem(rng, m, V, d, n_tied=n_tied)
    data = aggregate_contexts(H / np.linalg.norm(H, axis=1).max(), P)
    return data, support_pairs(data), margin_pairs(data)


def pair_values(W, Z, pairs):
    """``(e_plus - e_minus)^T W z_j`` of every (plus, minus, context) pair."""
    plus, minus, j = pairs
    return np.einsum("ij,ij->i", Z[j], W[plus] - W[minus])


@pytest.mark.parametrize("n_tied", [1, 2])
def test_restricted_problem_matches_cvxpy_and_its_kkt_conditions(n_tied):
    from sklearn_ntp._geometry._svm_working_set import _restricted_primal

    data, ties, (top, v, i) = restricted_case(np.random.default_rng(7), n_tied)
    assert (ties[0].size > 0) == (n_tied > 1)
    Z, V = np.asarray(data.embeddings), data.n_tokens
    keep = np.arange(top.size) % 3 == 0  # a working set: every third margin
    margins = (top[keep], v[keep], i[keep])
    W, multipliers = _restricted_primal(ties, margins, Z, V)
    # The same problem written with a (V, d) variable in cvxpy.
    W_ref = cp.Variable(W.shape)
    logits = Z @ W_ref.T
    constraints = [logits[margins[2], margins[0]] - logits[margins[2], margins[1]] >= 1]
    if ties[0].size:
        constraints.append(logits[ties[2], ties[0]] == logits[ties[2], ties[1]])
    cp.Problem(cp.Minimize(cp.sum_squares(W_ref)), constraints).solve(solver="CLARABEL")
    np.testing.assert_allclose(W, W_ref.value, atol=1e-6 * np.abs(W_ref.value).max())
    # KKT of min 1/2 ||W||^2: feasible, complementary, and W minus the
    # multipliers' combination of the margin rows is a combination of tie rows.
    slack = pair_values(W, Z, margins) - 1.0
    assert slack.min() >= -1e-7 and multipliers.min() >= -1e-9
    assert np.abs(multipliers * slack).max() <= 1e-7 * multipliers.max()
    rest = W.copy()
    np.add.at(rest, margins[0], -multipliers[:, None] * Z[margins[2]])
    np.add.at(rest, margins[1], multipliers[:, None] * Z[margins[2]])
    if ties[0].size:
        assert np.abs(pair_values(W, Z, ties)).max() <= 1e-7
        rows = np.zeros((ties[0].size, V, Z.shape[1]))
        rows[np.arange(ties[0].size), ties[0]] += Z[ties[2]]
        rows[np.arange(ties[0].size), ties[1]] -= Z[ties[2]]
        rows = rows.reshape(ties[0].size, -1)
        rest = rest.ravel() - rows.T @ np.linalg.lstsq(rows.T, rest.ravel(), rcond=None)[0]
    assert np.abs(rest).max() <= 1e-7 * np.abs(W).max()


def test_infeasible_restricted_problem_raises():
    from sklearn_ntp._geometry._svm_working_set import InfeasibleWorkingSet, _restricted_primal

    data, ties, (top, v, i) = restricted_case(np.random.default_rng(8), 1)
    # The same pair in both directions: no W gives both margins a 1.
    margins = (np.r_[top[:1], v[:1]], np.r_[v[:1], top[:1]], np.r_[i[:1], i[:1]])
    with pytest.raises(InfeasibleWorkingSet):
        _restricted_primal(ties, margins, np.asarray(data.embeddings), data.n_tokens)


@pytest.mark.parametrize("method", ["interior-point", "dual-cd", "cvxpy", "active-set",
                                    "working-set"])
def test_without_the_farkas_lp_every_method_refuses_infeasible_data(method, monkeypatch):
    import sklearn_ntp._geometry._infeasibility as infeasibility
    from sklearn_ntp._geometry._svm import solve_ntp_svm

    H, P = random_ntp_problem(np.random.default_rng(3), 60, 6, 8, 2)
    data = aggregate_contexts(H, P)

    def no_lp(*args, **kwargs):
        raise AssertionError("the Farkas LP must not run")

    monkeypatch.setattr(infeasibility, "linprog", no_lp)
    with pytest.raises(CertificationError):
        solve_ntp_svm(data, method=method, farkas_lp=False)


def test_few_tokens_start_from_as_many_margins_as_unknowns(references):
    # With few tokens the first working set holds at most n_tokens * k margins
    # (a generic solution has no more active ones), ranked over all contexts
    # and not a fixed number per context (the answer is checked against the
    # naive one by test_paths_agree_with_naive_formulation).
    from sklearn_ntp._geometry._svm_working_set import FEW_TOKENS, working_set_svm

    data = aggregate_contexts(*references["hard-labels"][:2])
    assert data.n_tokens <= FEW_TOKENS
    result = working_set_svm(data, np.asarray(data.embeddings))
    assert result.converged
    unknowns, margins = data.n_tokens * data.n_features, data.n_contexts * (data.n_tokens - 1)
    assert result.sizes[0] <= unknowns < margins
