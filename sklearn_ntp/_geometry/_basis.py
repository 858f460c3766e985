"""Orthonormal coordinates of the contexts: the geometry without the user's units.

Every quantity of the implicit-bias limit that gradient descent cannot tell
apart under an invertible change of features ``h -> A^T h`` -- the separable
pairs ``T``, the loss infimum ``L*``, the in-support logits of ``W~``, the
compatibility of the log-odds equations -- depends on the embeddings ``H``
only through the column space of ``H`` in ``R^m``. Computing them from an
orthonormal basis ``Q`` of that column space (``H = Q B^T``) makes them
independent of the features' units, offsets and mixing: a feature measured
in years next to an intercept column is as well conditioned as its centred
version.

The basis comes from a Householder QR with column pivoting of ``H`` with
unit-norm columns (a column scaling, itself invertible). Householder QR is
backward stable column by column, so the residual of each pivot column after
the previous ones -- the sine of its angle with their span -- is accurate to
round-off *relative to that column*; a column whose sine is below
:data:`SPAN_RESOLUTION` counts as in the span of the others. That tolerance is
the resolution of the whole geometry, and it is reported.

The computed ``Q`` spans the kept columns only up to that backward error:
the sine of the largest angle between its span and theirs is estimated as
the residual ``||H_kept - Q R||_F`` (plus the round-off of evaluating it)
over the smallest singular value of ``R`` (:attr:`ContextBasis.span_error`).
It is round-off for well-conditioned features, and grows like ``eps`` over
the smallest sine for nearly dependent ones; the limit's bounds on ``L*``
allow for it.
"""

from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property

import numpy as np
import scipy.linalg as la

from .._linalg._gram import GramFactor

#: Sine of the angle between a (pivoted) feature column of ``H`` and the span
#: of the previous ones below which it adds no dimension. Far above the QR's
#: round-off (about ``m * eps``); directions of the contexts that differ by less
#: than this relative amount are treated as one.
SPAN_RESOLUTION = 1e-10
#: Smallest Cholesky pivot ratio of ``H H^T`` for a wide ``H`` (``d > m``)
#: taken as proof of independent contexts without the QR.
INDEPENDENT_PIVOTS = 1e-12


class BasisStatus(Enum):
    """How the rank of ``H`` and the basis ``Q`` were decided."""

    #: Every embedding is zero: rank 0 (one zero coordinate keeps the shapes).
    ZERO = "zero embeddings"
    #: ``d > m`` and the Cholesky pivots of ``H H^T`` prove independent
    #: contexts: ``Q = I``, rank ``m``.
    INDEPENDENT_CONTEXTS = "independent contexts"
    #: Householder QR with column pivoting, cut at :data:`SPAN_RESOLUTION`.
    PIVOTED_QR = "pivoted QR"


@dataclass(frozen=True, eq=False)
class ContextBasis:
    """``H = Q B^T`` with ``Q`` (n_contexts, rank) orthonormal.

    Build it with :func:`context_basis`. The logits of a decoder ``W`` are
    ``H W^T = Q (W B)^T``: ``M = W B`` is the same decoder in orthonormal
    coordinates, and :meth:`to_features` maps such an ``M`` back.

    Attributes
    ----------
    Q : ndarray of shape (n_contexts, rank)
        Orthonormal basis of the column space of ``H``; its rows ``z_j`` are the
        contexts in orthonormal coordinates (``||z_j|| <= 1``).
    B : ndarray of shape (n_features, rank)
        ``H = Q B^T`` up to the dropped directions.
    rank : int
        Dimension of the column space at :data:`SPAN_RESOLUTION`.
    status : BasisStatus
        How the rank was decided.
    smallest_sine : float
        Smallest sine of the angle between a kept pivot column and the span of
        the previous ones (1 for a single column): how close the contexts' span
        comes to losing a dimension, in any coordinates. For independent
        contexts of a wide ``H`` (``Q = I``), the square root of the smallest
        Cholesky pivot ratio of ``H H^T`` instead.
    gram : GramFactor or None
        ``H H^T`` and its Cholesky factor for a wide ``H`` (``d > m``), shared
        with every later user of the same embeddings (the NTP-SVM, its
        certificates); None otherwise.
    span_error : float
        Estimated sine of the largest angle between the span of ``Q`` and the
        exact span of the kept columns (module docstring); 0 when ``Q = I``
        or every embedding is zero.
    """

    Q: np.ndarray
    B: np.ndarray
    rank: int
    smallest_sine: float
    status: BasisStatus
    gram: GramFactor | None = field(default=None, repr=False)
    span_error: float = 0.0

    @property
    def certificate(self):
        """The entries of the limit's certificate that the basis decides."""
        return {"span_resolution": SPAN_RESOLUTION, "smallest_sine": self.smallest_sine,
                "span_error": self.span_error}

    def to_orthonormal(self, W):
        """``M = W B``: a decoder of the features as a decoder of the rows of ``Q``."""
        return np.asarray(W, dtype=np.float64) @ self.B

    def to_features(self, M):
        """The minimum-norm ``W`` with ``W B = M`` (the same logits on every context).

        Its rows lie in the row space of ``H``; the system is solved by least
        squares on ``B^T`` (never through ``B^T B``, whose condition number is
        the square of the features').
        """
        M = np.asarray(M, dtype=np.float64)
        if self.rank == 0:
            return np.zeros((M.shape[0], self.B.shape[0]))
        if self.status is BasisStatus.INDEPENDENT_CONTEXTS:
            # Q = I and B = H^T: W = (M (H H^T)^-1) H in O(m^2 V). The Gram
            # matrix squares the features' condition number; one step of
            # iterative refinement on the logits' residual M - W B brings the
            # error back to the round-off of forming those logits.
            W = self.gram.solve(M.T).T @ self.B.T
            return W + self.gram.solve((M - W @ self.B).T).T @ self.B.T
        return la.lstsq(self.B.T, M.T, lapack_driver="gelsd")[0].T

    @cached_property
    def condition_number(self):
        """Condition number of ``B``: how far the features are from orthonormal
        coordinates of the contexts (1 when ``H`` has orthonormal columns)."""
        s = np.linalg.svd(self.B, compute_uv=False)
        return float(s[0] / s[-1]) if s.size else 1.0


def context_basis(H, gram=None):
    """:class:`ContextBasis` of the embeddings ``H`` (see the module docstring).

    ``gram``, the :class:`GramFactor` of ``H`` when the caller holds one,
    saves forming and factoring ``H H^T`` again (it is used when ``d > m``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._geometry._basis import context_basis
    >>> x = np.array([0.0, 1.0, 3.0])
    >>> H = np.c_[np.ones(3), x + 1e6]  # an intercept and a shifted feature
    >>> basis = context_basis(H)
    >>> basis.rank, bool(np.allclose(basis.Q @ basis.B.T, H))
    (2, True)
    >>> bool(np.allclose(basis.Q.T @ basis.Q, np.eye(2)))
    True
    """
    H = np.asarray(H, dtype=np.float64)
    m, d = H.shape
    norms = np.linalg.norm(H, axis=0)
    if not norms.any():
        # Every logit is zero whatever the decoder: one zero coordinate keeps
        # the shapes of the computations that follow.
        return ContextBasis(Q=np.zeros((m, 1)), B=np.zeros((d, 1)), rank=0, smallest_sine=0.0,
                            status=BasisStatus.ZERO)
    if d <= m:
        gram = None
    elif gram is None:
        gram = GramFactor(H)
    elif not gram.belongs_to(H):
        raise ValueError("gram must be the GramFactor of H.")
    if gram is not None and gram.pivot_ratio > INDEPENDENT_PIVOTS:
        return _independent_contexts(H, gram)
    scales = np.where(norms > 0, norms, 1.0)
    unit_columns = H / scales
    Q, R, perm = la.qr(unit_columns, mode="economic", pivoting=True)
    sines = np.abs(np.diag(R))
    # Pivoting orders the residual norms: the kept columns are a prefix.
    rank = int(np.sum(sines > SPAN_RESOLUTION))
    # H[:, perm] / scales[perm] = Q R, so H = Q (R P^T D) on the kept rows.
    B = np.zeros((d, rank))
    B[perm] = (R[:rank].T * scales[perm][:, None])
    Q = np.ascontiguousarray(Q[:, :rank])
    return ContextBasis(Q=Q, B=B, rank=rank,
                        smallest_sine=float(sines[rank - 1]) if rank else 0.0,
                        status=BasisStatus.PIVOTED_QR, gram=gram,
                        span_error=_span_error(unit_columns[:, perm[:rank]], Q, R[:rank, :rank]))


def _span_error(kept, Q, R):
    """Estimated sine of the largest angle between ``span(Q)`` and ``span(kept)``.

    ``kept + E = Q R`` (the QR's backward error ``E``, read off as the
    residual plus the round-off of forming ``Q R``): the spans then differ by
    an angle whose sine is at most about ``||E|| / sigma_min(R)``.
    """
    if R.size == 0:
        return 0.0
    residual = np.linalg.norm(kept - Q @ R)
    residual += np.finfo(np.float64).eps * np.sqrt(R.shape[0]) * np.linalg.norm(R)
    smallest = float(np.linalg.svd(R, compute_uv=False)[-1])
    return float(residual / smallest) if smallest > 0 else np.inf


def _independent_contexts(H, gram):
    """``Q = I`` when ``d > m`` and the contexts are clearly independent.

    The column space is then all of ``R^m``, and any orthonormal basis of it
    will do: the identity costs nothing, and ``H = I H``. Independence is read
    off the Cholesky factor of ``H H^T`` (one matrix product, far cheaper
    than a pivoted QR of a wide ``H``, and needed anyway to map decoders
    back): pivots above :data:`INDEPENDENT_PIVOTS` relative leave no doubt
    about the rank, whatever the features' scales (else the pivoted QR decides).
    """
    m = H.shape[0]
    return ContextBasis(Q=np.eye(m), B=np.ascontiguousarray(H.T), rank=m,
                        smallest_sine=float(np.sqrt(gram.pivot_ratio)),
                        status=BasisStatus.INDEPENDENT_CONTEXTS, gram=gram)


def orthonormal_data(data, basis):
    """``data`` with the rows of ``basis.Q`` as its context embeddings."""
    return replace(data, embeddings=basis.Q)
