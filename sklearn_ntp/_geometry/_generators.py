"""Rank-one generators ``(e_a - e_b) h_j^T`` and least-squares solves in their span.

Both implicit-bias objects are built from such generators: the data subspace
``F`` is spanned by ``(e_z - e_z0) h_j^T`` (in-support pairs), and the NTP-SVM
solution is a combination of those and ``(e_z0 - e_v) h_j^T`` (support vectors).
Working with generator coefficients keeps every computation at the size of
their Gram matrix ``G_gk = K_{j_g j_k} <e_a - e_b, e_c - e_d>`` (``K = H H^T``);
no matrix indexed by ``(token, feature)`` pairs is ever formed.
"""

from functools import partial

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, lsqr
from sklearn.utils import gen_batches

from .._linalg._pivoted import PivotedCholesky
from .._loss._cross_entropy import rows_per_block

#: Relative eigenvalue cut-off below which generator directions are dependent.
RANK_RTOL = 1e-10
#: Iterative-refinement steps after a dense normal-equations solve.
REFINEMENT_STEPS = 2
#: Relative tolerances of LSQR on the generator map: round-off, so that the
#: Krylov path decides compatibility as the dense one does.
LSQR_RTOL = 1e-14
#: Condition-number estimate at which LSQR stops: far above any the
#: generators of real data reach, so only round-off ends it.
LSQR_CONLIM = 1e14


def gram_logits(A, Z, gram=None):
    """``A Z Z^T``: the logits of ``W = A Z``, token by context (shape (V, m)).

    One product with ``gram = Z Z^T`` when it is stored, else two thin ones.
    """
    return A @ gram if gram is not None else (A @ Z) @ Z.T


class PairGenerators:
    """The generators ``(e_plus[g] - e_minus[g]) h_{context[g]}^T``.

    Parameters
    ----------
    plus, minus, context : ndarray of int, shape (n_generators,)
        Token pair and context of every generator.
    H : ndarray of shape (n_contexts, n_features)
        Context embeddings.
    n_tokens : int
        Vocabulary size ``V``.
    """

    def __init__(self, plus, minus, context, H, n_tokens):
        self.plus, self.minus, self.context = plus, minus, context
        self.H = np.asarray(H, dtype=np.float64)
        self.n_tokens = n_tokens

    def __len__(self):
        return self.plus.size

    def dense_rows(self, max_entries):
        """The rows ``vec(generator)`` on the tokens they touch, token-major, or
        None when that matrix would have more than ``max_entries`` entries."""
        tokens, index = np.unique(np.r_[self.plus, self.minus], return_inverse=True)
        n, k, d = len(self), tokens.size, self.H.shape[1]
        if n * k * d > max_entries:
            return None
        rows, g = np.zeros((n, k, d)), np.arange(n)
        rows[g, index[:n]] += self.H[self.context]
        rows[g, index[n:]] -= self.H[self.context]
        return rows.reshape(n, k * d)

    def gram(self):
        """Gram matrix of the generators in the Frobenius inner product.

        ``G_gk = <e_plus[g] - e_minus[g], e_plus[k] - e_minus[k]> h_g^T h_k``
        is zero unless the two pairs share a token: the context products are
        taken densely (one BLAS-3 call), then kept only on the sparse token
        pattern, in place.
        """
        n = len(self)
        cols = np.arange(n)
        E = sp.csr_matrix(
            (np.r_[np.ones(n), -np.ones(n)], (np.r_[self.plus, self.minus], np.r_[cols, cols])),
            shape=(self.n_tokens, n),
        )
        tokens = (E.T @ E).tocoo()
        Hg = self.H[self.context]
        G = Hg @ Hg.T
        values = tokens.data * G[tokens.row, tokens.col]
        G[...] = 0.0
        G[tokens.row, tokens.col] = values
        return G

    def sparse_gram(self, max_nonzeros):
        """:meth:`gram` as a sparse CSC matrix, formed only on the pairs of
        generators that share a token (no dense (n, n) product), or None when
        they are more than ``max_nonzeros``."""
        n = len(self)
        cols = np.arange(n)
        E = sp.csr_matrix(
            (np.r_[np.ones(n), -np.ones(n)], (np.r_[self.plus, self.minus], np.r_[cols, cols])),
            shape=(self.n_tokens, n),
        )
        counts = np.diff(E.indptr)
        if int(np.sum(counts.astype(np.int64) ** 2)) > max_nonzeros:
            return None
        tokens = (E.T @ E).tocoo()
        Hg = self.H[self.context]
        values = tokens.data * np.einsum("ij,ij->i", Hg[tokens.row], Hg[tokens.col])
        return sp.csc_matrix((values, (tokens.row, tokens.col)), shape=(n, n))

    def normal_matrix(self):
        """``M^T M`` on the tokens the generators touch, ``M`` their rows ``vec(generator)``.

        Returns ``(tokens, A)``: the ``k`` touched tokens and ``A`` of shape
        ``(k d, k d)``, token-major. Block ``(a, b)`` is
        ``sum_g <e_a, e_plus - e_minus> <e_b, e_plus - e_minus> h_g h_g^T``:
        one ``d x d`` Gram matrix of the contexts per unordered token pair,
        added to two diagonal blocks and subtracted from two off-diagonal ones.
        """
        tokens, index = np.unique(np.r_[self.plus, self.minus], return_inverse=True)
        n, k, d = len(self), tokens.size, self.H.shape[1]
        a, b = index[:n], index[n:]
        key = np.minimum(a, b) * k + np.maximum(a, b)
        order = np.argsort(key, kind="stable")
        pairs, start = np.unique(key[order], return_index=True)
        contexts = np.split(self.context[order], start[1:])
        blocks = np.array([self.H[c].T @ self.H[c] for c in contexts]).reshape(-1, d, d)
        lo, hi = pairs // k, pairs % k
        A = np.zeros((k, d, k, d))
        for rows, cols, sign in [(lo, lo, 1.0), (hi, hi, 1.0), (lo, hi, -1.0), (hi, lo, -1.0)]:
            np.add.at(A, (rows, slice(None), cols, slice(None)), sign * blocks)
        return tokens, A.reshape(k * d, k * d)

    def dual_matrix(self, coef):
        """The (n_tokens, n_contexts) sparse ``A`` with
        ``sum_g coef[g] (e_plus - e_minus) h_g^T = A H``."""
        return sp.csr_matrix(
            (np.r_[coef, -coef], (np.r_[self.plus, self.minus], np.r_[self.context, self.context])),
            shape=(self.n_tokens, self.H.shape[0]),
        )

    def _dense_dual(self, coef):
        """:meth:`dual_matrix` as a dense (n_tokens, n_contexts) array.

        A dense dual matrix turns products with ``H`` into one BLAS-3 call,
        far faster than a sparse-dense product on a thin ``H``.
        """
        V, m = self.n_tokens, self.H.shape[0]
        plus, minus = self.plus * m + self.context, self.minus * m + self.context
        return (np.bincount(plus, coef, V * m) - np.bincount(minus, coef, V * m)).reshape(V, m)

    def combine(self, coef):
        """``sum_g coef[g] (e_plus - e_minus) h_g^T`` as a (n_tokens, n_features) array."""
        return self._dense_dual(coef) @ self.H

    def _logit_differences(self, logits):
        """``logits[context, plus] - logits[context, minus]`` of (n_contexts, n_tokens) logits."""
        return logits[self.context, self.plus] - logits[self.context, self.minus]

    def inner(self, W):
        """``<(e_plus - e_minus) h_g^T, W>`` for every generator ``g``.

        That is a difference of two logits of ``W`` in context ``g``: one
        (m, V) product, then a gather (faster than gathering rows of ``W``).
        """
        return self._logit_differences(self.H @ np.asarray(W, dtype=np.float64).T)

    def gram_matvec(self, coef, gram=None):
        """``G coef`` for the generators' Gram matrix ``G``, which is never formed.

        ``G coef = inner(combine(coef))``: the logits of ``A H`` (``A`` the
        dense dual matrix of ``coef``) are ``A K`` with ``K = H H^T``, one
        product when ``gram = K`` is stored (:func:`gram_logits`).
        """
        logits = gram_logits(self._dense_dual(coef), self.H, gram)
        return self._logit_differences(logits.T)


class GramSolver:
    """Minimum-norm least-squares solves ``G c = b`` for a PSD Gram matrix.

    Cholesky when ``G`` is well conditioned (independent generators), else a
    pseudo-inverse from the eigendecomposition with relative cut-off
    :data:`RANK_RTOL`. ``rank`` is the dimension of the generators' span.
    """

    def __init__(self, G):
        n = G.shape[0]
        self._chol = None
        #: Smallest squared Cholesky pivot over the largest diagonal entry (0
        #: when the Cholesky factorization is not used): about ``1 / cond(G)``.
        self.pivot_ratio = 0.0
        scale = max(float(np.max(np.diag(G), initial=0.0)), np.finfo(float).tiny)
        if n:
            try:
                chol = la.cho_factor(G, lower=True)
                ratio = float(np.min(np.diag(chol[0])) ** 2) / scale
                if ratio > RANK_RTOL:
                    self._chol, self.rank, self.pivot_ratio = chol, n, ratio
            except la.LinAlgError:
                pass
        if self._chol is None:
            vals, vecs = la.eigh(G) if n else (np.zeros(0), np.zeros((0, 0)))
            keep = vals > RANK_RTOL * scale
            self._vecs, self._vals = vecs[:, keep], vals[keep]
            self.rank = int(keep.sum())

    def solve(self, b):
        """Return the minimum-norm least-squares solution ``c`` of ``G c = b``."""
        if self._chol is not None:
            return la.cho_solve(self._chol, b)
        return self._vecs @ ((self._vecs.T @ b) / self._vals)


class GeneratorSpaceSolver:
    """Exact least squares in the generators' span through their (N, N) Gram matrix.

    ``G = M M^T`` is factored by pivoted Cholesky (:class:`PivotedCholesky`,
    rank cut-off :data:`RANK_RTOL`). ``M^T c`` is the same matrix for every
    least-squares solution ``c`` of ``G c = b`` (they differ by ``null(G) =
    null(M^T)``), so the basic solution on the pivots suffices.
    """

    def __init__(self, generators):
        self.generators = generators
        self._factor = PivotedCholesky(generators.gram(), RANK_RTOL)
        self.rank = self._factor.rank

    def solve_matrix(self, b):
        """The matrix ``W`` in the span with least-squares inner products ``b``."""
        return _refined(lambda e: self.generators.combine(self._factor.basic_solution(e)),
                        self.generators.inner, b)

    def projection_norms(self, b):
        """``||P(X_k)||`` for the columns ``b[:, k] = M vec(X_k)`` (one solve for all)."""
        return np.linalg.norm(self._factor.lstsq(b), axis=0)


class WeightSpaceSolver:
    """Exact least squares in the generators' span through ``M^T M``, of size ``k d``.

    For many generators on few tokens (``N > k d``, ``k`` the tokens they
    touch) the normal equations ``M^T M w = M^T b`` are the smaller system.
    They are consistent, and their minimum-norm solution ``(M^T M)^+ M^T b``
    is the minimum-norm least-squares solution of ``M w = b`` (it lies in the
    span): one pivoted Cholesky factorization (:class:`PivotedCholesky`).
    Untouched tokens have zero rows in every matrix of the span.
    """

    def __init__(self, generators):
        self.generators = generators
        self._tokens, normal = generators.normal_matrix()
        self._factor = PivotedCholesky(normal, RANK_RTOL)
        self.rank = self._factor.rank
        # Signed incidence of the touched tokens (rows) and the generators:
        # what combines many right-hand sides at once in projection_norms.
        index = np.searchsorted(self._tokens, np.r_[generators.plus, generators.minus])
        n = len(generators)
        self._plus, self._minus = index[:n], index[n:]
        self._incidence = sp.csr_matrix(
            (np.r_[np.ones(n), -np.ones(n)], (index, np.r_[np.arange(n), np.arange(n)])),
            shape=(self._tokens.size, n))

    def solve_matrix(self, b):
        """The matrix ``W`` in the span with least-squares inner products ``b``."""
        return _refined(self._solve_once, self.generators.inner, b)

    def _solve_once(self, b):
        """One unrefined solve: :meth:`_solve_batch` of one column, on every token."""
        contexts = self.generators.H[self.generators.context]
        W = np.zeros((self.generators.n_tokens, contexts.shape[1]))
        W[self._tokens] = self._solve_batch(np.asarray(b, dtype=np.float64)[:, None],
                                            contexts)[0]
        return W

    def projection_norms(self, b):
        """``||P(X_k)||`` for the columns ``b[:, k] = M vec(X_k)``: the refined
        solves of :meth:`solve_matrix` for many columns at once, in batches of
        columns whose (n_generators, n_features) products fit in ``working_memory``."""
        b = np.asarray(b, dtype=np.float64)
        contexts = self.generators.H[self.generators.context]
        width = rows_per_block(8 * contexts.size)
        return np.concatenate([np.zeros(0)] + [
            self._batch_norms(b[:, columns], contexts)
            for columns in gen_batches(b.shape[1], width)])

    def _batch_norms(self, b, contexts):
        W = _refined(partial(self._solve_batch, contexts=contexts),
                     partial(self._batch_inner, contexts=contexts), b)
        return np.linalg.norm(W.reshape(W.shape[0], -1), axis=1)

    def _batch_inner(self, W, contexts):
        """The generators' inner products with each matrix of a batch ``W`` of
        shape (n_columns, n_touched, n_features): shape (n_generators, n_columns)."""
        return np.einsum("knd,nd->nk", W[:, self._plus] - W[:, self._minus], contexts)

    def _solve_batch(self, b, contexts):
        """``(M^T M)^+ M^T b`` for each column of ``b`` (``contexts``: the
        generators' rows of ``H``), on the touched tokens: shape (n_columns,
        n_touched, n_features)."""
        (n, K), (k, d) = b.shape, (self._tokens.size, contexts.shape[1])
        rhs = self._incidence @ (b[:, :, None] * contexts[:, None, :]).reshape(n, K * d)
        rhs = rhs.reshape(k, K, d).transpose(0, 2, 1).reshape(k * d, K)
        return self._factor.pinv_solve(rhs).reshape(k, d, K).transpose(2, 0, 1)


def _refined(solve, inner, b):
    """``solve(b)`` corrected by solves of its residuals, all in the span
    (``inner``: the generators' inner products with a solution).

    Normal equations lose accuracy as the square of the generators'
    condition number; each step solves for the residual's least-squares
    correction (the part of the residual orthogonal to the span maps to zero).
    """
    W = solve(b)
    for _ in range(REFINEMENT_STEPS):
        W += solve(b - inner(W))
    return W


def _projection_norms(solver, b):
    return np.array([np.linalg.norm(solver.solve_matrix(col)) for col in np.asarray(b).T])


class KrylovSolver:
    """Minimum-norm least-squares solves in the generators' span, matrix-free.

    LSQR on the generator map ``W -> <generator_g, W>`` (one logits product
    per application, its adjoint one more), started at ``W = 0``: every
    iterate is a combination of generators, so the limit is the minimum-norm
    least-squares solution and lies in their span. No Gram matrix is formed.
    """

    def __init__(self, generators, tol=LSQR_RTOL):
        self.generators = generators
        self.tol = tol
        shape = (generators.n_tokens, generators.H.shape[1])
        self._shape = shape
        self._operator = LinearOperator(
            (len(generators), shape[0] * shape[1]),
            matvec=lambda w: generators.inner(w.reshape(shape)),
            rmatvec=lambda c: generators.combine(c).ravel(),
            dtype=np.float64,
        )

    def solve_matrix(self, b):
        """The matrix ``W`` in the span with least-squares inner products ``b``."""
        if not np.any(b):
            return np.zeros(self._shape)
        x = lsqr(self._operator, b, atol=self.tol, btol=self.tol, conlim=LSQR_CONLIM,
                 iter_lim=10 * len(self.generators) + 100)[0]
        return x.reshape(self._shape)

    def projection_norms(self, b):
        """``||P(X_k)||`` for the columns ``b[:, k] = M vec(X_k)``."""
        return _projection_norms(self, b)


def _anchor_layout(data):
    """For each nonzero of ``P``: its context, the position of its context's anchor,
    and whether it is not the anchor itself (the anchor is the first token of ``S_j``)."""
    P, context = data.probabilities, data.support_rows
    anchor_pos = np.repeat(P.indptr[:-1], data.support_sizes)
    return context, anchor_pos, np.arange(P.nnz) != anchor_pos


def support_pairs(data):
    """In-support pairs ``(z, z0_j, j)``: each context's tokens against its anchor.

    The ``S_j - 1`` pairs of a context span all its in-support differences, so
    with the embeddings they span ``F``.
    """
    P = data.probabilities
    context, anchor_pos, rest = _anchor_layout(data)
    return P.indices[rest], P.indices[anchor_pos[rest]], context[rest]


def support_log_odds(data):
    """``log(p_jz / p_jz0)`` for the pairs of :func:`support_pairs`, in the same order."""
    P = data.probabilities
    _, anchor_pos, rest = _anchor_layout(data)
    # A difference of logs: the quotient overflows when p_z0 is subnormal.
    return np.log(P.data[rest]) - np.log(P.data[anchor_pos[rest]])


def margin_pairs(data):
    """Out-of-support pairs ``(z0_j, v, j)`` for ``v`` not in ``S_j``.

    Under the equalities (6a) every in-support token has the same logit, so
    the inequalities (6b) only need the anchor ``z0_j`` of each context.
    """
    mask = data.support_mask
    context, token = np.nonzero(~mask)
    P = data.probabilities
    anchor = P.indices[P.indptr[:-1]][context]
    return anchor, token, context
