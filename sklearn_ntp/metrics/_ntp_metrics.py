"""Prediction metrics against the entropy bound, and decoder-geometry metrics.

Prediction metrics follow scikit-learn's ``metric(y_true, y_prob, ...)``
convention. Internally targets *and* predictions are summarized over distinct
contexts: with ``X`` given, identical rows of ``X`` are one context (as in the
paper); without it every row is its own context. Each metric is then a short
formula over the nonzeros of the sparse target matrix ``P``.
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, gen_batches
from sklearn.utils._param_validation import validate_params

from .._data._ntp_data import (
    PROBA_ATOL,
    NTPData,
    as_ntp_data,
    check_decoder,
    check_embeddings,
    check_matrix,
    check_sample_weight,
    check_targets,
    merge_contexts,
)
from .._loss._cross_entropy import rows_per_block


class _Contexts(NamedTuple):
    """Targets and predictions aggregated over distinct contexts."""

    data: NTPData  # weights pi, sparse targets P, supports
    proba: np.ndarray  # (n_contexts, n_tokens) weighted mean predictions Q
    eps: float  # logs of predictions are taken at max(q, eps)

    def on_support(self):
        """Return ``(pi_j, p_jz, log q_jz)`` at every nonzero ``(j, z)`` of ``P``."""
        P, rows = self.data.probabilities, self.data.support_rows
        q = self.proba[rows, P.indices]
        return self.data.weights[rows], P.data, np.log(np.maximum(q, self.eps))


#: Types of the arguments of the prediction metrics, checked by ``validate_params``
#: before any array is converted (values are checked by the ``_data`` checks).
_TARGETS = ["array-like", "sparse matrix"]
_PREDICTION_PARAMS = {"y_true": _TARGETS, "y_prob": ["array-like"],
                      "sample_weight": ["array-like", None],
                      "labels": ["array-like", None]}
_CONTEXT_PREDICTION_PARAMS = {**_PREDICTION_PARAMS, "X": ["array-like", None]}


def _validated(params):
    return validate_params(params, prefer_skip_nested_validation=True)


def _check_proba(y_prob):
    """Validate predictions; return them as float64 rows summing to one, and eps."""
    if np.ndim(y_prob) not in (1, 2):
        raise ValueError(f"y_prob must be 1-D or 2-D, got {np.ndim(y_prob)} dimensions.")
    y_prob = check_array(y_prob, ensure_2d=False, dtype=(np.float64, np.float32),
                         input_name="y_prob")
    eps = float(np.finfo(y_prob.dtype).eps)
    y_prob = y_prob.astype(np.float64)
    if y_prob.ndim == 1:
        # The positive-class column that scikit-learn scorers pass for binary classifiers.
        y_prob = np.column_stack([1.0 - y_prob, y_prob])
    if y_prob.shape[1] < 2:
        raise ValueError(
            f"y_prob must have at least two columns (or be 1-D positive-class "
            f"probabilities), got shape {y_prob.shape}."
        )
    if np.any(y_prob < 0) or np.any(y_prob > 1):
        raise ValueError("y_prob must contain probabilities in [0, 1].")
    sums = y_prob.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > PROBA_ATOL)
    if bad.size:
        raise ValueError(
            f"Rows of y_prob must sum to 1 (tolerance {PROBA_ATOL:g}); row {bad[0]} "
            f"sums to {sums[bad[0]]:.6g}."
        )
    return y_prob / sums[:, None], eps


def _token_labels(y_true, labels, n_tokens):
    """Labels of the ``n_tokens`` columns of ``y_prob``."""
    soft = sp.issparse(y_true) or np.ndim(y_true) == 2
    if labels is None and soft:
        return np.arange(n_tokens)  # check_targets then matches the columns of y_true
    # Columns follow sorted labels, as for log_loss and a classifier's classes_.
    source = "y_true" if labels is None else "labels"
    try:
        labels = np.unique(y_true if labels is None else labels)
    except TypeError as exc:  # unorderable mixed labels
        raise ValueError(f"Invalid {source}: {exc}") from exc
    if labels.size != n_tokens:
        raise ValueError(
            f"{source} has {labels.size} distinct tokens but y_prob has {n_tokens} "
            "columns; pass labels (e.g. estimator.classes_) naming the token of "
            "every column."
        )
    return labels


def _n_rows(a, name):
    shape = a.shape if sp.issparse(a) else np.shape(a)
    if not shape:
        raise ValueError(f"{name} must be array-like, got a scalar.")
    return shape[0]


def _check_n_rows(a, name, n_samples, reference):
    if _n_rows(a, name) != n_samples:
        raise ValueError(f"{name} has {_n_rows(a, name)} rows but {reference} has "
                         f"{n_samples}.")


def _target_contexts(y_true, X, sample_weight, labels=None):
    """Validate targets, contexts and weights once; merge rows of the same context.

    Returns the :class:`NTPData` and the validated weights.
    """
    n_samples = _n_rows(y_true, "y_true")
    try:
        Y, labels = check_targets(y_true, n_samples, labels)
    except ValueError as exc:
        raise ValueError(f"Invalid y_true: {exc}") from exc
    if X is None:
        X = np.arange(n_samples, dtype=np.float64)[:, None]  # every row its own context
    else:
        _check_n_rows(X, "X", n_samples, "y_true")
        X = check_embeddings(X)
    w = check_sample_weight(sample_weight, n_samples)
    return merge_contexts(X, Y, w, labels), w


def _aggregate(y_true, y_prob, X, sample_weight, labels):
    """Validate all inputs and merge rows of the same context: :class:`_Contexts`."""
    Q, eps = _check_proba(y_prob)
    n_samples, n_tokens = Q.shape
    _check_n_rows(y_true, "y_true", n_samples, "y_prob")
    labels = _token_labels(y_true, labels, n_tokens)
    data, w = _target_contexts(y_true, X, sample_weight, labels)
    return _Contexts(data, _merge_predictions(Q, data, w), eps)


def _merge_predictions(Q, data, w):
    """Weighted mean prediction of each context (rows of one context agree for a model of X)."""
    rows = np.flatnonzero(data.context_index >= 0)
    group = sp.csr_matrix((w[rows], (data.context_index[rows], rows)),
                          shape=(data.n_contexts, Q.shape[0]))
    return (group @ Q) / np.asarray(group.sum(axis=1))


@_validated(_PREDICTION_PARAMS)
def ntp_cross_entropy(y_true, y_prob, *, sample_weight=None, labels=None):
    """Weighted mean next-token cross-entropy of predicted distributions.

    ``CE = -sum_i w_i sum_z y_iz log q_iz / sum_i w_i``: the NTP loss of the
    paper when ``y_prob`` are a model's predictions. For hard labels it equals
    :func:`sklearn.metrics.log_loss`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Next-token labels, or soft targets (nonnegative rows summing to one,
        dense or scipy.sparse).
    y_prob : array-like of shape (n_samples, n_tokens) or (n_samples,)
        Predicted next-token probabilities (rows summing to one within
        ``1e-6``; they are renormalized exactly). A 1-D array is the
        probability of the second of two tokens, as scikit-learn's scorers
        pass for binary classifiers.
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative row weights.
    labels : array-like of shape (n_tokens,), default=None
        Token of every column of ``y_prob`` (columns follow sorted labels). By
        default the distinct labels of 1-D ``y_true``, which must then number
        ``n_tokens``; for 2-D ``y_true`` columns are tokens already.

    Returns
    -------
    loss : float
        Cross-entropy in nats.

    Raises
    ------
    ValueError
        On shape mismatches, invalid targets or probabilities, or labels that
        do not name every column.

    See Also
    --------
    excess_ntp_loss : The cross-entropy minus its entropy lower bound.
    sklearn.metrics.log_loss : The same loss for hard labels.

    Notes
    -----
    As in :func:`~sklearn.metrics.log_loss`, predictions are clipped below at
    the machine epsilon of ``y_prob``'s dtype before taking logs, so the loss
    stays finite (about ``36`` nats per unit of target mass on a token
    predicted with probability zero, in float64) instead of being infinite.

    Examples
    --------
    >>> from sklearn_ntp.metrics import ntp_cross_entropy
    >>> y_true = [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    >>> y_prob = [[0.5, 0.5, 0.0], [0.1, 0.1, 0.8]]
    >>> round(ntp_cross_entropy(y_true, y_prob), 6)  # (log 2 - log 0.8) / 2
    0.458145
    """
    pi, p, log_q = _aggregate(y_true, y_prob, None, sample_weight, labels).on_support()
    return float(-np.sum(pi * p * log_q))


_CONTEXT_PARAMS = """\
    y_true : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Next-token labels, or soft targets (nonnegative rows summing to one,
        dense or scipy.sparse).
    y_prob : array-like of shape (n_samples, n_tokens) or (n_samples,)
        Predicted next-token probabilities, as for :func:`ntp_cross_entropy`.
    X : array-like of shape (n_samples, n_features), default=None
        Context embeddings: identical rows are one context, whose targets and
        predictions are merged (weighted means). With ``X=None`` every row is
        its own context, which is right for soft targets of distinct
        contexts; hard labels of repeated contexts need ``X``, otherwise
        every row has a one-token support (zero entropy).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative row weights.
    labels : array-like of shape (n_tokens,), default=None
        Token of every column of ``y_prob``, as for :func:`ntp_cross_entropy`."""


def _with_context_params(func):
    func.__doc__ = func.__doc__.replace("    {context_params}", _CONTEXT_PARAMS)
    return func


@_validated({"y_true": _TARGETS + [NTPData], "X": ["array-like", None],
             "sample_weight": ["array-like", None]})
def entropy_lower_bound(y_true, *, X=None, sample_weight=None):
    """Entropy lower bound ``H`` of the NTP cross-entropy of any predictions.

    ``H = -sum_j pi_j sum_{z in S_j} p_jz log p_jz`` over distinct contexts
    ``j``, with ``pi_j`` their weights and ``p_j`` their empirical next-token
    distributions (paper Section 2). It depends on the targets only. Every
    prediction has cross-entropy at least ``H``; for predictions that are
    constant within each context (those of a model of ``X``),
    ``excess_ntp_loss = ntp_cross_entropy - entropy_lower_bound`` with the
    same ``X``.

    The same function is exported by :mod:`sklearn_ntp.implicit_bias`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_tokens), or NTPData
        Next-token labels, or soft targets (nonnegative rows summing to one,
        dense or scipy.sparse); or data aggregated by
        :func:`~sklearn_ntp.implicit_bias.aggregate_contexts` (then ``X`` and
        ``sample_weight`` must be None).
    X : array-like of shape (n_samples, n_features), default=None
        Context embeddings: identical rows are one context, whose targets are
        merged (weighted mean), as in :func:`excess_ntp_loss`. With
        ``X=None`` every row is its own context, which is right for soft
        targets of distinct contexts; hard labels of repeated contexts need
        ``X``, otherwise every row has a one-token support (zero entropy).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative row weights.

    Returns
    -------
    entropy : float
        ``H`` in nats, nonnegative.

    Raises
    ------
    ValueError
        On invalid targets, weights or contexts, mismatched row counts, or
        ``X`` or ``sample_weight`` passed with an NTPData.

    See Also
    --------
    excess_ntp_loss : The cross-entropy minus this bound.
    sklearn_ntp.implicit_bias.aggregate_contexts : Aggregated data, whose
        ``entropy`` attribute is the same bound.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.metrics import entropy_lower_bound
    >>> entropy_lower_bound([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])  # (log 2) / 2
    0.3465...
    >>> X = np.array([[1.0], [1.0], [2.0]])
    >>> round(entropy_lower_bound(["a", "b", "a"], X=X), 6)  # (2/3) log 2
    0.462098
    >>> entropy_lower_bound(["a", "b", "a"])  # every row its own context
    0.0
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> round(entropy_lower_bound(aggregate_contexts(X, ["a", "b", "a"])), 6)
    0.462098
    """
    if isinstance(y_true, NTPData):
        if X is not None or sample_weight is not None:
            raise ValueError("X and sample_weight must be None when y_true is an NTPData "
                             "(aggregated data hold their contexts and weights).")
        return y_true.entropy
    return _target_contexts(y_true, X, sample_weight)[0].entropy


@_validated(_CONTEXT_PREDICTION_PARAMS)
@_with_context_params
def excess_ntp_loss(y_true, y_prob, *, X=None, sample_weight=None, labels=None):
    """Cross-entropy minus the entropy lower bound: a weighted KL divergence.

    ``CE - H = sum_j pi_j KL(p_j || q_j)`` over distinct contexts ``j``, with
    ``p_j`` the empirical next-token distribution and ``q_j`` the prediction.
    It is nonnegative, and tends to zero along gradient descent on
    NTP-separable data (paper Lemma 2), where no finite decoder attains zero.

    Parameters
    ----------
    {context_params}

    Returns
    -------
    excess : float
        Excess loss in nats (computed term by term, without cancellation).

    Raises
    ------
    ValueError
        On shape mismatches, invalid targets or probabilities, or labels that
        do not name every column.

    See Also
    --------
    ntp_cross_entropy : The cross-entropy itself.
    entropy_lower_bound : The bound ``H``.

    Notes
    -----
    Predictions are clipped below at machine epsilon before taking logs, as in
    :func:`ntp_cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.metrics import excess_ntp_loss
    >>> X = np.array([[1.0], [1.0], [2.0]])
    >>> y_true = ["a", "b", "a"]  # context 1.0 has p = (1/2, 1/2)
    >>> y_prob = [[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]]
    >>> round(excess_ntp_loss(y_true, y_prob, X=X), 6)  # (1/3) KL(e_a || q)
    0.03512
    """
    pi, p, log_q = _aggregate(y_true, y_prob, X, sample_weight, labels).on_support()
    return float(np.sum(pi * p * (np.log(p) - log_q)))


@_validated(_CONTEXT_PREDICTION_PARAMS)
@_with_context_params
def out_of_support_mass(y_true, y_prob, *, X=None, sample_weight=None, labels=None):
    """Weighted mean probability predicted outside each context's support.

    ``sum_j pi_j sum_{v not in S_j} q_jv``. Gradient descent on NTP-separable
    data drives it to zero by growing the max-margin component ``W^mm``.

    Parameters
    ----------
    {context_params}

    Returns
    -------
    mass : float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        On shape mismatches, invalid targets or probabilities, or labels that
        do not name every column.

    See Also
    --------
    ntp_margin : The margin that controls this mass.

    Examples
    --------
    >>> from sklearn_ntp.metrics import out_of_support_mass
    >>> y_true = [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    >>> y_prob = [[0.4, 0.4, 0.2], [0.1, 0.1, 0.8]]
    >>> round(out_of_support_mass(y_true, y_prob), 6)  # (0.2 + 0.2) / 2
    0.2
    """
    contexts = _aggregate(y_true, y_prob, X, sample_weight, labels)
    outside = np.where(contexts.data.support_mask, 0.0, contexts.proba).sum(axis=1)
    return float(contexts.data.weights @ outside)


@_validated(_CONTEXT_PREDICTION_PARAMS)
@_with_context_params
def log_odds_error(y_true, y_prob, *, X=None, sample_weight=None, labels=None):
    """Largest error of the predicted log-odds between in-support tokens.

    ``max_j max_{z, z' in S_j} |log(q_jz / q_jz') - log(p_jz / p_jz')|``, that is
    ``max_j (max_z d_jz - min_z d_jz)`` with ``d = log q - log p`` on ``S_j``.
    It is zero exactly when every prediction equals ``p_j`` on its support up
    to renormalization, as for the finite component ``W*`` of the paper
    (Theorem 2: ``P_F(W_k) -> W*``). Contexts with one-token support add
    nothing; weights only decide which rows count and how targets merge.

    Parameters
    ----------
    {context_params}

    Returns
    -------
    error : float
        Nonnegative, in nats.

    Raises
    ------
    ValueError
        On shape mismatches, invalid targets or probabilities, or labels that
        do not name every column.

    See Also
    --------
    sklearn_ntp.implicit_bias.log_odds_solution : The finite component ``W*``.

    Examples
    --------
    >>> from sklearn_ntp.metrics import log_odds_error
    >>> y_true = [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    >>> log_odds_error(y_true, [[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])
    0.0
    >>> round(log_odds_error(y_true, [[0.6, 0.2, 0.2], [0.1, 0.1, 0.8]]), 6)  # log 3
    1.098612
    """
    contexts = _aggregate(y_true, y_prob, X, sample_weight, labels)
    _, p, log_q = contexts.on_support()
    d = log_q - np.log(p)
    starts = contexts.data.probabilities.indptr[:-1]  # every row has a nonzero
    return float(np.max(np.maximum.reduceat(d, starts) - np.minimum.reduceat(d, starts)))


@_validated({"W": ["array-like"], "X": ["array-like", NTPData],
             "y": _TARGETS + [None], "sample_weight": ["array-like", None]})
def ntp_margin(W, X, y=None, *, sample_weight=None):
    """NTP margin of a decoder: worst in-support over out-of-support logit gap.

    ``min_{j, z in S_j, v not in S_j} (e_z - e_v)^T W h_j`` over the distinct
    contexts of ``X`` (raw, not normalized by ``||W||``). The NTP-SVM solution
    has margin exactly 1 (``ntp_margin(W_mm, X, y) == 1``), and the largest
    margin of a unit-norm matrix in ``F``'s complement is ``1 / ||W_mm||``.

    Parameters
    ----------
    W : array-like of shape (n_tokens, n_features)
        Decoder (rows are word embeddings).
    X : array-like of shape (n_samples, n_features) or NTPData
        Context embeddings (identical rows are one context), or aggregated
        data (then ``y`` is ignored).
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights (only which rows have positive weight matters).

    Returns
    -------
    margin : float
        Negative when some out-of-support token beats an in-support one;
        ``inf`` when every context has full support (no pair to compare).

    Raises
    ------
    ValueError
        If ``W`` has the wrong shape or is not finite, or on invalid data.

    See Also
    --------
    sklearn_ntp.implicit_bias.ntp_svm : The max-margin decoder ``W^mm``.
    margin_alignment : Cosine between a decoder and ``W^mm``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import ntp_svm
    >>> from sklearn_ntp.metrics import ntp_margin
    >>> X = np.eye(2)
    >>> Y = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    >>> round(ntp_margin(ntp_svm(X, Y), X, Y), 6)
    1.0
    >>> ntp_margin(np.zeros((3, 2)), X, Y)
    0.0
    """
    data = as_ntp_data(X, y, sample_weight)
    (W, w_exp), (H, h_exp) = _unit_scale(check_decoder(W, data)), _unit_scale(data.embeddings)
    constrained = data.support_sizes < data.n_tokens
    if not constrained.any():
        return float("inf")
    gaps = np.empty(data.n_contexts)
    # Row blocks within working_memory: the logits and two masked copies.
    for rows in gen_batches(data.n_contexts, rows_per_block(3 * 8 * data.n_tokens)):
        logits = H[rows] @ W.T
        mask = data.probabilities[rows].toarray() > 0
        gaps[rows] = (np.where(mask, logits, np.inf).min(axis=1)
                      - np.where(mask, -np.inf, logits).max(axis=1))
    with np.errstate(over="ignore"):  # overflow is reported below
        margin = float(np.ldexp(np.min(gaps[constrained]), w_exp + h_exp))
    if not np.isfinite(margin):
        raise ValueError(f"The margin of W overflows float64 (W has entries up to "
                         f"{np.ldexp(np.max(np.abs(W)), w_exp):.3g}); rescale W.")
    return margin


def _unit_scale(A):
    """Return ``(B, e)`` with ``A = B * 2**e`` and ``max |B|`` in ``[0.5, 1)``.

    Products of ``B`` neither overflow nor underflow, and scaling by a power of
    two is exact: results are rescaled once at the end (scale-free metrics).
    """
    A = np.asarray(A, dtype=np.float64)
    exponent = int(np.frexp(np.max(np.abs(A)))[1]) if A.size else 0
    return np.ldexp(A, -exponent), exponent


@_validated({"W": ["array-like"], "W_ref": ["array-like"]})
def margin_alignment(W, W_ref):
    """Cosine similarity ``<W, W_ref> / (||W|| ||W_ref||)`` in the Frobenius product.

    The paper's measure of implicit bias: Theorems 1-2 state that
    ``margin_alignment(W_k, W_mm) -> 1`` along gradient descent and the
    regularization path.

    Parameters
    ----------
    W : array-like of shape (n_tokens, n_features)
        A decoder, e.g. an estimator's ``coef_``.
    W_ref : array-like of shape (n_tokens, n_features)
        Reference matrix, e.g. the NTP-SVM solution ``W^mm``.

    Returns
    -------
    cosine : float
        In ``[-1, 1]``; invariant to positive scaling of either matrix.

    Raises
    ------
    ValueError
        If the shapes differ, either matrix is zero, or contains NaN/inf.

    See Also
    --------
    sklearn_ntp.implicit_bias.ntp_svm : The max-margin decoder ``W^mm``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.metrics import margin_alignment
    >>> margin_alignment([[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]])
    0.7071...
    """
    W, W_ref = check_matrix(W, "W"), check_matrix(W_ref, "W_ref")
    if W.shape != W_ref.shape:
        raise ValueError(f"W has shape {W.shape} but W_ref has shape {W_ref.shape}.")
    (W, _), (W_ref, _) = _unit_scale(W), _unit_scale(W_ref)  # the scales cancel
    norms = np.linalg.norm(W), np.linalg.norm(W_ref)
    for name, norm in zip(("W", "W_ref"), norms):
        if norm == 0:
            raise ValueError(f"{name} is the zero matrix: its direction is undefined.")
    # Rounding can push the quotient just past +-1.
    return float(np.clip(np.vdot(W, W_ref) / (norms[0] * norms[1]), -1.0, 1.0))
