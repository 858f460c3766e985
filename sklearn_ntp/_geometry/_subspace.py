"""The data subspace ``F`` and the finite log-odds component ``W*`` on it.

``F = span{(e_z - e_z') h_j^T : z, z' in S_j}`` (paper Eq. 5). The log-odds
equations of Definition 1 read ``<(e_z - e_z0) h_j^T, W> = log(p_jz / p_jz0)``:
their left-hand side is the adjoint of the generator map, so their unique
solution inside ``F`` is ``W* = sum_g c_g (e_z - e_z0) h_j^T`` with ``G c = ell``.
"""

from abc import ABC, abstractmethod

import numpy as np
import scipy.linalg as la

from .._data._ntp_data import as_ntp_data
from .._exceptions import NotNTPCompatibleError
from .._utils._array_api import from_host, namespace
from ._basis import context_basis, orthonormal_data
from ._generators import (
    GeneratorSpaceSolver,
    KrylovSolver,
    PairGenerators,
    WeightSpaceSolver,
    support_log_odds,
    support_pairs,
)

#: Largest violation of a log-odds equation accepted as an exact solution,
#: relative to ``max(1, max |log-odds|)``.
LOG_ODDS_RTOL = 1e-8
#: Largest dense generator matrix (rows ``vec(generator)`` on the tokens they
#: touch) projected on by orthogonal factorization (about 160 MB).
DENSE_GENERATOR_ENTRIES = 20_000_000
#: Size of the smaller dense system (Gram or normal matrix) up to which
#: ``method="auto"`` factors it: about 15 s and 1 GiB at this size.
DENSE_MAX_SIZE = 12000
SUBSPACE_METHODS = ("auto", "dense", "krylov")


class DecoderSubspace(ABC):
    """A subspace of (n_tokens, n_features) decoders, with orthogonal projections.

    The common type of the data subspace ``F`` (:class:`DataSubspace`) and of
    the subspace ``G`` of the effective supports
    (:attr:`ImplicitBiasLimit.effective_subspace`). A matrix ``W`` is seen
    through linear ``coordinates``, from which the distances of many
    projections to a reference follow at once.

    Attributes
    ----------
    dim : int or None
        Dimension of the subspace (None when it is not computed).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import DecoderSubspace, implicit_bias_limit
    >>> limit = implicit_bias_limit(np.array([[1.0], [2.0]]), [0, 1])
    >>> G = limit.effective_subspace
    >>> isinstance(G, DecoderSubspace), G.dim
    (True, 1)
    >>> G.project(np.array([[1.0], [3.0]]))
    array([[-1.],
           [ 1.]])
    """

    dim = None

    @abstractmethod
    def project(self, W):
        """Orthogonal projection ``P(W)`` of a (n_tokens, n_features) matrix."""

    @abstractmethod
    def coordinates(self, W):
        """Linear coordinates of ``W``: what the projection sees of it, flattened."""

    @abstractmethod
    def distances(self, coordinates, W_ref):
        """``||P(W_k) - W_ref||`` for many ``W_k`` given by their :meth:`coordinates`.

        Parameters
        ----------
        coordinates : ndarray of shape (n_matrices, n_coordinates)
            Rows :meth:`coordinates` of the matrices ``W_k``.
        W_ref : ndarray of shape (n_tokens, n_features)
            A matrix in the subspace.

        Returns
        -------
        distances : ndarray of shape (n_matrices,)
        """

    @abstractmethod
    def coordinate_map(self, like):
        """:meth:`coordinates` for arrays of the namespace, device and dtype of
        ``like`` (a function computed there, without copies to the host)."""

    def project_orthogonal(self, W):
        """Orthogonal projection ``W - P(W)`` onto the complement."""
        return np.asarray(W, dtype=np.float64) - self.project(W)


def _mover(like):
    """``(xp, move)``: the namespace of ``like`` and a copy of host arrays to its device."""
    xp, _ = namespace(like)
    return xp, lambda a: from_host(np.asarray(a), xp, like.device, like.dtype)


class DataSubspace(DecoderSubspace):
    """The subspace ``F`` of (n_tokens, n_features) matrices, with projections.

    Built by :func:`data_subspace`. With ``N = sum_j (S_j - 1)`` generators
    touching ``k`` tokens, ``method="dense"`` factors the smaller of their
    (N, N) Gram matrix and the ``(k d, k d)`` normal matrix ``M^T M`` (``M``
    the rows ``vec(generator)``) by pivoted Cholesky; both give the
    minimum-norm least-squares solutions exactly. ``method="krylov"`` never
    forms either and solves by LSQR on the generator map started at 0, so
    every solution stays in ``F`` (each iteration costs two passes over the
    generators). ``"auto"`` is dense while the smaller system has at most
    12,000 rows, Krylov above.

    Parameters
    ----------
    data : NTPData
        Aggregated data.
    method : {"auto", "dense", "krylov"}, default="auto"
        Linear-algebra path (see above).

    Attributes
    ----------
    dim : int or None
        Dimension of ``F`` (0 for one-hot data); None on the Krylov path,
        which never forms the Gram matrix whose rank it is.
    n_generators : int
        Number of in-support equations ``sum_j (S_j - 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import DataSubspace, aggregate_contexts
    >>> data = aggregate_contexts(np.eye(2), np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    >>> F = DataSubspace(data)
    >>> F.dim, F.n_generators
    (1, 1)
    >>> W = np.arange(6.0).reshape(3, 2)
    >>> bool(np.allclose(F.project(W) + F.project_orthogonal(W), W))
    True
    """

    def __init__(self, data, method="auto"):
        if method not in SUBSPACE_METHODS:
            raise ValueError(f"method must be one of {SUBSPACE_METHODS}, got {method!r}.")
        self.data = data
        self.generators = PairGenerators(*support_pairs(data), data.embeddings,
                                         data.n_tokens)
        self.n_generators = len(self.generators)
        n_tokens = np.unique(np.r_[self.generators.plus, self.generators.minus]).size
        weight_space = n_tokens * data.embeddings.shape[1] < self.n_generators
        if method == "auto":
            small = min(self.n_generators, n_tokens * data.embeddings.shape[1])
            method = "dense" if small <= DENSE_MAX_SIZE else "krylov"
        if method == "krylov":
            self._solver, self.dim = KrylovSolver(self.generators), None
        else:
            self._solver = (WeightSpaceSolver if weight_space else GeneratorSpaceSolver)(
                self.generators)
            self.dim = self._solver.rank

    def _solve(self, rhs):
        return self._solver.solve_matrix(rhs)

    def project(self, W):
        """Orthogonal projection ``P_F(W)`` of a (n_tokens, n_features) matrix."""
        return self._solve(self.generators.inner(W))

    def coordinates(self, W):
        """Inner products of ``W`` with the generators: what ``P_F`` sees of ``W``."""
        return self.generators.inner(W)

    def distances(self, coordinates, W_ref):
        """``||P_F(W_k) - W_ref||`` for many ``W_k`` given by their coordinates.

        Parameters
        ----------
        coordinates : ndarray of shape (n_matrices, n_generators)
            Rows :meth:`coordinates` of the matrices ``W_k``.
        W_ref : ndarray of shape (n_tokens, n_features)
            A matrix in ``F`` (e.g. ``W*``).

        Returns
        -------
        distances : ndarray of shape (n_matrices,)
        """
        diff = np.atleast_2d(coordinates) - self.coordinates(W_ref)
        return self._solver.projection_norms(diff.T)

    def coordinate_map(self, like):
        """:meth:`coordinates` on the device of ``like``: a product with the
        contexts and a gather of the generators' logit pairs."""
        xp, move = _mover(like)
        generators, V = self.generators, self.generators.n_tokens
        H = move(generators.H)
        plus = xp.asarray(generators.context * V + generators.plus, device=like.device)
        minus = xp.asarray(generators.context * V + generators.minus, device=like.device)

        def coordinates(W):
            logits = xp.reshape(H @ W.T, (-1,))
            return xp.take(logits, plus) - xp.take(logits, minus)

        return coordinates

    def log_odds(self):
        """Right-hand sides ``log(p_jz / p_jz0)`` of the log-odds equations."""
        return support_log_odds(self.data)

    def log_odds_solution(self):
        """Return ``(W*, residual)``: least-squares ``W*`` in ``F`` and its worst violation."""
        ell = self.log_odds()
        W = self._solve(ell)
        residual = float(np.max(np.abs(self.generators.inner(W) - ell), initial=0.0))
        return W, residual

    def is_exact(self, residual):
        """Whether a log-odds residual counts as an exact solution."""
        scale = max(1.0, float(np.max(np.abs(self.log_odds()), initial=0.0)))
        return residual <= LOG_ODDS_RTOL * scale


class CenteredRowSpace(DecoderSubspace):
    """The span of ``(e_z - e_z') h_j^T`` over all token pairs and contexts.

    It is ``{W : the tokens' rows sum to zero, rows in the row space of H}``,
    so ``P(W) = (I - 11^T / V) W B B^T`` with ``B`` an orthonormal basis of
    the row space, and ``(I - 11^T / V) W B`` are orthonormal coordinates:
    the subspace ``F`` (and ``G``) when every support is the whole
    vocabulary, without its ``m (V - 1)`` generators.

    Parameters
    ----------
    H : ndarray of shape (n_contexts, n_features)
        Context embeddings.
    rank : int
        Dimension of their row space.
    n_tokens : int
        Vocabulary size ``V``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._geometry._subspace import CenteredRowSpace
    >>> G = CenteredRowSpace(np.array([[1.0, 0.0]]), rank=1, n_tokens=2)
    >>> G.dim, G.project(np.array([[1.0, 2.0], [3.0, 4.0]]))
    (1, array([[-1.,  0.],
           [ 1.,  0.]]))
    """

    def __init__(self, H, rank, n_tokens):
        self.basis = la.svd(np.asarray(H, dtype=np.float64), full_matrices=False)[2][:rank].T
        self.dim = (n_tokens - 1) * rank

    def coordinates(self, W):
        """Orthonormal coordinates ``(I - 11^T / V) W B`` of ``P_G(W)``, flattened."""
        C = np.asarray(W, dtype=np.float64) @ self.basis
        return (C - C.mean(axis=0)).ravel()

    def project(self, W):
        """Orthogonal projection onto ``G``."""
        return self.coordinates(W).reshape(len(W), -1) @ self.basis.T

    def distances(self, coordinates, W_ref):
        """``||P_G(W_k) - W_ref||`` for many ``W_k`` given by their coordinates."""
        return np.linalg.norm(np.atleast_2d(coordinates) - self.coordinates(W_ref), axis=1)

    def coordinate_map(self, like):
        """:meth:`coordinates` on the device of ``like``: ``W B``, centred."""
        xp, move = _mover(like)
        basis = move(self.basis)

        def coordinates(W):
            C = W @ basis
            return xp.reshape(C - xp.mean(C, axis=0), (-1,))

        return coordinates


def project_on_subspace(data, W):
    """``P_F(W)`` for the supports of ``data``, in its features' coordinates.

    While the generator matrix is small (:data:`DENSE_GENERATOR_ENTRIES`),
    from an orthonormal basis of its row space (SVD: ``eps cond`` of the
    features, where the generators' Gram matrix of :class:`DataSubspace`
    loses its square); else by that class.
    """
    generators = PairGenerators(*support_pairs(data), data.embeddings, data.n_tokens)
    if not len(generators):
        return np.zeros_like(np.asarray(W, dtype=np.float64))
    rows = generators.dense_rows(DENSE_GENERATOR_ENTRIES)
    if rows is None:
        return DataSubspace(data).project(W)
    tokens = np.unique(np.r_[generators.plus, generators.minus])
    span = la.orth(rows.T)
    projected = np.zeros_like(np.asarray(W, dtype=np.float64))
    projected[tokens] = (span @ (span.T @ W[tokens].ravel())).reshape(tokens.size, -1)
    return projected


def data_subspace(X, y=None, sample_weight=None, *, method="auto"):
    """Build the data subspace ``F`` spanned by in-support token differences.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or NTPData
        Context embeddings (or already aggregated data, then ``y`` is ignored).
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights (they do not change ``F``, only which rows count).
    method : {"auto", "dense", "krylov"}, default="auto"
        Dense Gram factorization or matrix-free LSQR (see :class:`DataSubspace`).

    Returns
    -------
    subspace : DataSubspace
        Object with ``dim``, ``project(W)`` = ``P_F(W)`` and
        ``project_orthogonal(W)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import data_subspace
    >>> X = np.eye(2)
    >>> Y = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    >>> F = data_subspace(X, Y)
    >>> F.dim
    1
    >>> F.project(np.ones((3, 2))).round(3)
    array([[0., 0.],
           [0., 0.],
           [0., 0.]])
    """
    return DataSubspace(as_ntp_data(X, y, sample_weight), method=method)


def log_odds_solution(X, y=None, sample_weight=None, *, allow_inexact=False, method="auto"):
    """Finite component ``W*``: the log-odds solution inside the data subspace.

    ``W*`` is the unique matrix in ``F`` with
    ``(e_z - e_z')^T W* h_j = log(p_jz / p_jz')`` for all contexts ``j`` and
    ``z, z'`` in ``S_j`` (paper Definition 1 and Theorem 2).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or NTPData
        Context embeddings, or aggregated data (then ``y`` is ignored).
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights.
    allow_inexact : bool, default=False
        If the equations have no exact solution (the data are not
        NTP_H-compatible), return the least-squares solution in ``F`` instead
        of raising.
    method : {"auto", "dense", "krylov"}, default="auto"
        Dense factorization (the Gram or the normal matrix, whichever is
        smaller; up to 12,000 rows with ``"auto"``) or matrix-free LSQR
        started at 0 (see :class:`DataSubspace`). Both give the same decision
        through the same residual test.

    Returns
    -------
    W_star : ndarray of shape (n_tokens, n_features)
        The finite component (zero for one-hot data).

    Raises
    ------
    NotNTPCompatibleError
        If the largest equation residual exceeds ``1e-8 * max(1, max|log-odds|)``
        and ``allow_inexact`` is False.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import log_odds_solution
    >>> X = np.eye(2)
    >>> Y = np.array([[0.75, 0.25, 0.0], [0.0, 0.0, 1.0]])
    >>> W = log_odds_solution(X, Y)
    >>> float(W[0, 0] - W[1, 0]), float(np.log(3))
    (1.0986..., 1.0986...)
    >>> bool(np.allclose(log_odds_solution(X, Y, method="krylov"), W))
    True
    """
    data = as_ntp_data(X, y, sample_weight)
    # Solved in orthonormal coordinates of the contexts (the same equations
    # in any units), then expressed in the features' coordinates.
    basis = context_basis(data.embeddings)
    subspace = DataSubspace(orthonormal_data(data, basis), method=method)
    M, residual = subspace.log_odds_solution()
    if not allow_inexact and not subspace.is_exact(residual):
        raise NotNTPCompatibleError(
            "The data are not NTP_H-compatible: no W satisfies every log-odds "
            f"equation (largest least-squares residual {residual:.3g}). Pass "
            "allow_inexact=True for the least-squares solution in F.",
            residual=residual,
        )
    return project_on_subspace(data, basis.to_features(M))
