"""Comparison of two decoders, e.g. a language model's and one fitted on its hidden states.

A decoder ``W`` of shape (n_tokens, n_features) gives the logits ``W h``, and
the softmax does not change when the same number is added to every logit: ``W``
and ``W + 1 v^T`` (a vector ``v`` added to every row) are the same predictor.
Gradient descent from zero stays in the centered decoders (the rows of every
gradient sum to zero), a language model's decoder need not. Both metrics
therefore center the rows by default: they compare ``W - 1 mean(W)^T``.
"""

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .._data._ntp_data import check_matrix
from ._ntp_metrics import _unit_scale, _validated

_METHODS = ("procrustes", "cka")


@_validated({"W": ["array-like"], "W_ref": ["array-like"], "center": ["boolean"],
             "align": ["boolean"]})
def token_cosine_similarity(W, W_ref, *, center=True, align=False):
    """Cosine similarity of every token's rows in two decoders.

    ``cos_z = <w_z, w'_z> / (||w_z|| ||w'_z||)`` for every token ``z``, where
    ``w_z`` and ``w'_z`` are the rows of the (centered) decoders. With
    ``align=True``, ``W`` is first rotated onto ``W_ref`` by the orthogonal
    Procrustes solution ``Q = argmax_{Q^T Q = I} <W Q, W_ref> = U V^T`` (from
    the singular value decomposition ``W^T W_ref = U S V^T``), so that decoders
    living in rotated feature spaces can be compared token by token.

    Parameters
    ----------
    W : array-like of shape (n_tokens, n_features)
        A decoder, e.g. a language model's output embedding matrix.
    W_ref : array-like of shape (n_tokens, n_features)
        Another decoder over the same tokens and features, e.g. a fitted ``coef_``.
    center : bool, default=True
        Subtract each decoder's mean row first (see the module's description:
        it removes the part of ``W`` that the softmax ignores).
    align : bool, default=False
        Rotate ``W`` onto ``W_ref`` first (orthogonal Procrustes).

    Returns
    -------
    cosines : ndarray of shape (n_tokens,)
        In ``[-1, 1]``; 0 for a token whose row is zero in either decoder, as
        in :func:`sklearn.metrics.pairwise.cosine_similarity`. Invariant to
        positive scaling of either decoder and, with ``align=True``, to an
        orthogonal change of features of either (``W Q1``, ``W_ref Q2``).

    Raises
    ------
    ValueError
        If the shapes differ or a matrix contains NaN/inf.

    See Also
    --------
    decoder_similarity : One rotation-invariant number for the whole decoders.
    margin_alignment : The Frobenius cosine of two decoders.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.metrics import token_cosine_similarity
    >>> W = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    >>> rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    >>> token_cosine_similarity(W, W @ rotation)
    array([0., 0., 0.])
    >>> token_cosine_similarity(W, W @ rotation, align=True)
    array([1., 1., 1.])
    """
    W, W_ref = _check_pair(W, W_ref, center, same_features=True)
    if align:
        W = W @ _procrustes_rotation(W, W_ref)
    norms = np.linalg.norm(W, axis=1) * np.linalg.norm(W_ref, axis=1)
    dots = np.einsum("ij,ij->i", W, W_ref)
    cosines = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return np.clip(cosines, -1.0, 1.0)  # rounding can push a quotient just past +-1


@_validated({"W": ["array-like"], "W_ref": ["array-like"],
             "method": [StrOptions(set(_METHODS))], "center": ["boolean"]})
def decoder_similarity(W, W_ref, *, method="procrustes", center=True):
    """Rotation-invariant similarity of two decoders over the same tokens.

    With ``A`` and ``B`` the (centered) decoders ``W`` and ``W_ref``:

    * ``"procrustes"``: the cosine after the best rotation,
      ``max_Q <A Q, B> / (||A|| ||B||) = ||A^T B||_* / (||A|| ||B||)`` (the
      maximum over matrices ``Q`` with orthonormal rows or columns, reached
      by the orthogonal Procrustes solution; ``||.||_*`` is the nuclear norm,
      the sum of singular values, and ``||.||`` the Frobenius norm). It is 1
      exactly when ``B = c A Q`` for some ``c > 0`` and such a ``Q``;
    * ``"cka"``: linear centered kernel alignment of the tokens' rows,
      ``||A^T B||^2 / (||A^T A|| ||B^T B||)``, the cosine between the Gram
      matrices ``A A^T`` and ``B B^T`` of the tokens (Kornblith et al., 2019);
      with ``center=False`` it is the RV coefficient. It is 1 exactly when
      the two Gram matrices are proportional.

    Both lie in ``[0, 1]`` and are invariant to an orthogonal change of
    features (``W Q1`` and ``W_ref Q2``, even with different numbers of
    features) and to positive scaling of either decoder; with ``center=True``
    also to adding a vector to every row (which leaves the softmax of the
    logits unchanged). Neither is invariant to a general invertible change of
    features, nor to permuting the tokens of one decoder only.

    Unrelated decoders do not score zero: the best rotation fits more of a
    random pair the more features there are per token. For independent
    Gaussian matrices the Procrustes cosine is about ``0.85 sqrt(d / V)``
    when ``d << V`` (0.1 at ``V = 50257``, ``d = 768``) and grows towards 1
    as ``d`` approaches ``V``; compare with a random decoder of the same shape.

    Parameters
    ----------
    W : array-like of shape (n_tokens, n_features)
        A decoder, e.g. a language model's output embedding matrix.
    W_ref : array-like of shape (n_tokens, n_features_ref)
        Another decoder over the same tokens (in the same order), e.g. a
        fitted ``coef_`` or the ``W~`` or ``U~`` of an implicit-bias limit.
    method : {"procrustes", "cka"}, default="procrustes"
        The similarity, as above.
    center : bool, default=True
        Subtract each decoder's mean row first.

    Returns
    -------
    similarity : float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        If the numbers of tokens differ, a matrix contains NaN/inf, or a
        (centered) decoder is zero, so that its direction is undefined.

    See Also
    --------
    token_cosine_similarity : The cosine of every token's rows.
    margin_alignment : The Frobenius cosine, not invariant to rotations.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.metrics import decoder_similarity
    >>> rng = np.random.default_rng(0)
    >>> W = rng.standard_normal((50, 4))
    >>> Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))  # a random rotation
    >>> round(decoder_similarity(W, 3.0 * W @ Q), 12)
    1.0
    >>> round(decoder_similarity(W, W @ Q + [1.0, 2.0, 0.0, 0.0], method="cka"), 12)
    1.0
    >>> bool(decoder_similarity(W, rng.standard_normal((50, 4))) < 0.5)
    True
    """
    A, B = _check_pair(W, W_ref, center, same_features=False)
    for name, M in (("W", A), ("W_ref", B)):
        if not np.any(M):
            why = " after centering (all its rows are equal)" if center else ""
            raise ValueError(f"{name} is zero{why}: its direction is undefined.")
    A, B = A / np.linalg.norm(A), B / np.linalg.norm(B)
    if method == "procrustes":
        value = np.linalg.svd(A.T @ B, compute_uv=False).sum()
    else:
        value = np.linalg.norm(A.T @ B) ** 2 / (np.linalg.norm(A.T @ A)
                                                 * np.linalg.norm(B.T @ B))
    return float(np.clip(value, 0.0, 1.0))


def _check_pair(W, W_ref, center, same_features):
    """Validated decoders, centered if asked, each scaled by a power of two.

    Every result is invariant to positive scaling, so the exact power-of-two
    scale keeps products from overflowing or underflowing at any norm.
    """
    W, W_ref = check_matrix(W, "W"), check_matrix(W_ref, "W_ref")
    if W.shape[0] != W_ref.shape[0] or (same_features and W.shape != W_ref.shape):
        what = "shape" if same_features else "number of tokens (rows)"
        raise ValueError(f"W and W_ref must have the same {what}, got shapes "
                         f"{W.shape} and {W_ref.shape}.")
    (W, _), (W_ref, _) = _unit_scale(W), _unit_scale(W_ref)
    if center:
        W, W_ref = W - W.mean(axis=0), W_ref - W_ref.mean(axis=0)
    return W, W_ref


def _procrustes_rotation(A, B):
    """The orthogonal ``Q`` maximizing ``<A Q, B>``: ``U V^T`` for ``A^T B = U S V^T``."""
    U, _, Vt = np.linalg.svd(A.T @ B)
    return U @ Vt
