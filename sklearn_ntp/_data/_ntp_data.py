"""Validation of (X, y, sample_weight) and aggregation into distinct contexts.

Every public entry point of the library goes through :func:`aggregate_contexts`:
identical rows of ``X`` are merged into one distinct context ``j`` with weight
``pi_j`` and next-token distribution ``p_j``, exactly as in the paper (the raw
training set and its distinct-context summary define the same objective).
"""

from collections import Counter
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.special import entr
from sklearn.utils import check_array, column_or_1d
from sklearn.utils._param_validation import validate_params
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _check_sample_weight

#: Largest allowed deviation of a soft target row's sum from one.
PROBA_ATOL = 1e-6


@dataclass(frozen=True, eq=False)
class NTPData:
    """Distinct contexts with their sparse next-token distributions.

    Instances are built by :func:`aggregate_contexts`; all arrays are read-only.

    Attributes
    ----------
    embeddings : ndarray of shape (n_contexts, n_features)
        The distinct context embeddings ``h_j`` (rows of ``H``).
    probabilities : scipy.sparse.csr_matrix of shape (n_contexts, n_tokens)
        Next-token distributions ``p_j``; row ``j`` is supported on ``S_j``.
    weights : ndarray of shape (n_contexts,)
        Context frequencies ``pi_j``, summing to one.
    classes : ndarray of shape (n_tokens,)
        Token labels; column ``z`` of ``probabilities`` is token ``classes[z]``.
    context_index : ndarray of shape (n_samples,)
        Distinct context of each input row, or ``-1`` for rows of zero weight.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> data = aggregate_contexts(np.array([[0.0], [0.0], [1.0]]), [0, 1, 1])
    >>> data.n_contexts, data.n_tokens, data.support_sizes.tolist()
    (2, 2, [2, 1])
    >>> round(data.entropy, 4)  # (2/3) log 2
    0.4621
    """

    embeddings: np.ndarray
    probabilities: sp.csr_matrix
    weights: np.ndarray
    classes: np.ndarray
    context_index: np.ndarray

    def __sizeof__(self):
        # The arrays' bytes: dask sizes results with sys.getsizeof, and its
        # memory management and the cluster's gathers go by that size.
        P = self.probabilities
        arrays = (self.embeddings, P.data, P.indices, P.indptr, self.weights, self.classes,
                  self.context_index)
        return object.__sizeof__(self) + sum(getattr(a, "nbytes", 0) for a in arrays)

    @property
    def n_contexts(self):
        """Number of distinct contexts ``m``."""
        return self.embeddings.shape[0]

    @property
    def n_features(self):
        """Embedding dimension ``d``."""
        return self.embeddings.shape[1]

    @property
    def n_tokens(self):
        """Vocabulary size ``V``."""
        return self.probabilities.shape[1]

    @cached_property
    def support_sizes(self):
        """Support size ``S_j`` of every context, ndarray of shape (n_contexts,)."""
        return np.diff(self.probabilities.indptr)

    @cached_property
    def support_rows(self):
        """Context ``j`` of every stored nonzero ``p_jz`` of ``probabilities`` (CSR order).

        ndarray of shape (nnz,), read-only; with ``probabilities.indices`` it
        gives the coordinates of the supports.
        """
        return _read_only(np.repeat(np.arange(self.n_contexts), self.support_sizes))

    @cached_property
    def support_mask(self):
        """Boolean (n_contexts, n_tokens) matrix, True on the supports ``S_j``."""
        mask = np.zeros(self.probabilities.shape, dtype=bool)
        mask[self.support_rows, self.probabilities.indices] = True
        return _read_only(mask)

    @cached_property
    def context_norms(self):
        """Euclidean norms ``||h_j||`` in float64, ndarray of shape (n_contexts,)."""
        H = np.asarray(self.embeddings, dtype=np.float64)
        # Each row divided by its largest entry first: no square over- or
        # underflows at any scale of the embeddings.
        largest = np.max(np.abs(H), axis=1, initial=0.0)
        unit = H / np.where(largest > 0, largest, 1.0)[:, None]
        return _read_only(largest * np.sqrt(np.einsum("ij,ij->i", unit, unit)))

    @cached_property
    def entropy(self):
        """Entropy lower bound ``H = -sum_j pi_j sum_z p_jz log p_jz`` (nats)."""
        # entr(p) = -p log p stays finite for subnormal p, where 1 / p overflows;
        # adding 0.0 turns the -0.0 of one-hot data into 0.0.
        return float(np.sum(self.weights[self.support_rows]
                            * entr(self.probabilities.data))) + 0.0


def _read_only(array):
    """``array``, made read-only: a cached fact is shared by every caller."""
    array.flags.writeable = False
    return array


def checked_array(array, name, **kwargs):
    """:func:`sklearn.utils.check_array` whose errors always name the argument.

    Some of scikit-learn's messages (e.g. "could not convert string to float")
    do not say which argument was wrong.
    """
    try:
        return check_array(array, input_name=name, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Invalid {name}: {exc}") from exc


def check_sample_weight(sample_weight, n_samples):
    """Validate row weights and scale them to a largest one in ``[1/2, 1)`` (default: ones).

    Weights must be finite, nonnegative and not all zero. Only their ratios
    matter (the loss is normalized by the total weight), and scaling them
    before anything is summed keeps every total finite: weights of ``1e308``
    or ``1e-320`` give the data of weights of one. The scale is the power of
    two of the largest weight, so it is exact: weights of ordinary size give
    the very numbers they gave without it.
    """
    if sample_weight is None:
        return np.ones(n_samples)
    try:
        sample_weight = _check_sample_weight(sample_weight, np.empty((n_samples, 0)),
                                             dtype=np.float64, ensure_non_negative=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Invalid sample_weight: {exc}") from exc
    # Older scikit-learn versions accept all-zero weights.
    if not np.any(sample_weight > 0):
        raise ValueError(
            "sample_weight must have at least one positive entry (all weights are zero)."
        )
    largest = sample_weight.max()
    relative = np.ldexp(sample_weight, -np.frexp(largest)[1])
    vanished = np.flatnonzero((sample_weight > 0) & (relative == 0))
    if vanished.size:  # a row that exists, with a weight float64 cannot express
        raise ValueError(
            f"sample_weight[{vanished[0]}] = {sample_weight[vanished[0]]:.3g} is more than "
            f"2**1074 times smaller than the largest weight {largest:.3g}: float64 cannot "
            "hold their ratio. Set such weights to 0 to drop those rows.")
    return relative


def check_classes(classes):
    """Validate token labels fixing the vocabulary; return them as a new 1-D array.

    The copy matters: :class:`NTPData` makes its arrays read-only, which must
    not reach the caller's array.
    """
    classes = np.array(classes)
    if classes.ndim != 1:
        raise ValueError(f"classes must be 1-D, got shape {classes.shape}.")
    if classes.size < 2:
        raise ValueError(f"classes must name at least two tokens, got {classes.size}.")
    if np.unique(classes).size != classes.size:
        raise ValueError("classes must not contain duplicate tokens.")
    return classes


def check_targets(y, n_samples, classes=None):
    """Validate hard or soft targets and return ``(Y, classes)``.

    ``Y`` is a new CSR matrix of shape (n_samples, n_tokens) whose rows are
    probability vectors (normalized exactly); ``classes`` are the token labels
    (a new array; with ``classes`` given, in the given order). With 1-D ``y``
    and ``classes`` given, labels outside ``classes`` raise. A single column is
    read as labels (with a ``DataConversionWarning``), as by scikit-learn's
    classifiers: as probabilities it would describe a single token.
    """
    if y is None:
        raise ValueError("y is required: this function requires y to be passed, but "
                         "the target y is None (pass token labels or a probability "
                         "matrix).")
    if classes is not None:
        classes = check_classes(classes)
    if hasattr(y, "columns") and y.shape[1] > 1:  # DataFrame: column names are tokens
        y, classes = _frame_targets(y, classes)
    if sp.issparse(y):
        return _check_soft_targets(y, n_samples, classes)
    try:
        y = np.asarray(y)
    except ValueError as exc:  # e.g. rows of unequal lengths
        raise ValueError(f"Invalid y: {exc}") from exc
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim == 2:
        return _check_soft_targets(y, n_samples, classes)
    return _check_hard_targets(y, n_samples, classes)


def _frame_targets(frame, classes):
    """Probability rows of a DataFrame and its column names as the tokens.

    With ``classes`` given (scoring a fitted model) the columns are put in
    the order of ``classes``; they must be the same tokens.
    """
    columns = np.asarray(frame.columns)
    repeated = [name for name, count in Counter(columns.tolist()).items() if count > 1]
    if repeated:  # classes_ would name one token twice: predict would be ambiguous
        raise ValueError(f"y has duplicate column names {repeated[:5]}: the columns of a "
                         "DataFrame y name the tokens (classes_), which must be distinct.")
    if classes is None:
        return frame.to_numpy(), columns
    if len(columns) != len(classes) or set(columns.tolist()) != set(np.asarray(classes).tolist()):
        raise ValueError(f"The columns of y {columns[:5].tolist()} are not the tokens "
                         f"{np.asarray(classes)[:5].tolist()} of the fitted model.")
    return frame[list(classes)].to_numpy(), classes


def _check_soft_targets(y, n_samples, classes):
    Y = checked_array(y, "y", accept_sparse=("csr", "csc", "coo"), dtype=np.float64)
    # A new matrix: the caller's (possibly read-only) arrays are never rewritten
    # by the removal of explicit zeros.
    Y = sp.csr_matrix(Y, copy=True)
    Y.sum_duplicates()
    Y.eliminate_zeros()
    if Y.shape[0] != n_samples:
        raise ValueError(f"y has {Y.shape[0]} rows but X has {n_samples} samples.")
    n_tokens = Y.shape[1] if classes is None else len(classes)
    if Y.shape[1] != n_tokens:
        raise ValueError(f"y has {Y.shape[1]} columns, expected {n_tokens} tokens.")
    if n_tokens < 2:
        raise ValueError("y must describe at least two tokens (columns).")
    if np.any(Y.data < 0):
        raise ValueError("y must be nonnegative: rows are next-token probabilities.")
    sums = np.asarray(Y.sum(axis=1)).ravel()
    bad = np.flatnonzero(np.abs(sums - 1.0) > PROBA_ATOL)
    if bad.size:
        raise ValueError(
            f"Rows of y must sum to 1 (tolerance {PROBA_ATOL:g}); row {bad[0]} sums "
            f"to {sums[bad[0]]:.6g}."
        )
    Y = sp.diags(1.0 / sums) @ Y
    return sp.csr_matrix(Y), np.arange(n_tokens) if classes is None else classes


def _check_hard_targets(y, n_samples, classes):
    y = checked_array(y, "y", ensure_2d=False, dtype=None)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D labels or a 2-D probability matrix, got {y.shape}.")
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} entries but X has {n_samples} samples.")
    if classes is None:
        classes = _labels_of(y)
        if classes.size < 2:
            raise ValueError(
                f"y has a single token {str(classes[0])!r} (one class); next-token "
                "prediction needs at least two tokens."
            )
    codes = _encode(y, classes)
    Y = sp.csr_matrix(
        (np.ones(n_samples), codes, np.arange(n_samples + 1)),
        shape=(n_samples, len(classes)),
    )
    return Y, classes


def _labels_of(y):
    """Sorted distinct labels of 1-D ``y``, with errors that name ``y``.

    Tokens are discrete: continuous float labels are refused, as by every
    scikit-learn classifier. ``check_classification_targets`` is not used: it
    warns that ``y`` "could represent a regression problem" whenever more than
    half the labels are distinct, the ordinary case of next-token data (many
    tokens, few occurrences of each).
    """
    try:
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: {kind}. Token labels must be discrete "
                             "(integers or strings), not continuous values.")
        return np.unique(y)
    except (ValueError, TypeError) as exc:  # TypeError: unorderable mixed labels
        raise ValueError(f"Invalid y: {exc}") from exc


def _encode(y, classes):
    """Column of every label of ``y`` in ``classes`` (in any order)."""
    order = np.argsort(classes, kind="stable")
    try:
        position = np.minimum(np.searchsorted(classes[order], y), len(classes) - 1)
        codes = order[position]
        unknown = np.asarray(classes[codes] != y, dtype=bool)
    except TypeError as exc:  # e.g. string labels against integer classes
        raise ValueError(f"y and classes hold labels of incomparable types: {exc}") from exc
    if np.any(unknown):
        raise ValueError(f"y contains tokens not in classes: {np.unique(y[unknown])[:5]}.")
    return codes


def check_precision(X, name="X"):
    """Refuse half-precision floats (float16, bfloat16) rather than upcast them silently.

    Their 8- to 11-bit significands cannot resolve the loss or its gradient,
    and upcasting a large array doubles or quadruples its memory without a
    word: the caller converts to float32 (or float64) knowingly.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._data._ntp_data import check_precision
    >>> check_precision(np.zeros((2, 2), dtype=np.float32))
    >>> check_precision(np.zeros((2, 2), dtype=np.float16))
    Traceback (most recent call last):
    ...
    ValueError: X is float16: half precision is not supported ...
    """
    dtype = str(getattr(X, "dtype", ""))  # numpy 'float16', torch 'torch.bfloat16', ...
    if dtype.endswith("float16"):
        raise ValueError(f"{name} is {dtype.removeprefix('torch.')}: half precision is not "
                         "supported (its significand does not resolve the loss); convert "
                         f"{name} to float32, e.g. {name}.astype('float32').")


def check_embeddings(X, dtype=(np.float64, np.float32)):
    """Validate context embeddings: finite, 2-D, numeric, non-empty, not too large.

    Every computation uses inner products of rows (``H H^T``, logits): they
    must not overflow, which bounds the entries by
    ``sqrt(max float / n_features)`` (about ``1e153`` in float64).
    """
    check_precision(X)
    X = checked_array(X, "X", dtype=dtype)
    bound = np.sqrt(np.finfo(X.dtype).max / X.shape[1])
    largest = np.max(np.abs(X)) if X.size else 0.0
    if largest > bound:
        raise ValueError(
            f"X has entries up to {largest:.3g}: inner products of its rows overflow "
            f"{X.dtype} above {bound:.3g}; rescale X (e.g. with StandardScaler)."
        )
    return X


def check_matrix(W, name):
    """Validate a 2-D finite float matrix such as a decoder ``W``."""
    if np.ndim(W) != 2:
        raise ValueError(f"{name} must be a 2-D (n_tokens, n_features) matrix, got "
                         f"{np.ndim(W)} dimensions.")
    return checked_array(W, name, dtype=np.float64)


def check_decoder(W, data, name="W"):
    """Validate a decoder ``W`` of shape (n_tokens, n_features) for ``data``."""
    W = check_matrix(W, name)
    expected = (data.n_tokens, data.n_features)
    if W.shape != expected:
        raise ValueError(f"{name} must have shape {expected} (n_tokens, n_features), "
                         f"got {W.shape}.")
    return W


def with_intercept_column(data):
    """``data`` with every context augmented by a constant feature: ``[h_j, 1]``.

    A decoder of the augmented contexts is ``[W, b]``: its last column is the
    intercept, and the paper's theory applies unchanged to ``[h_j, 1]``
    (distinct contexts stay distinct).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._data._ntp_data import aggregate_contexts, with_intercept_column
    >>> with_intercept_column(aggregate_contexts(np.eye(2), [0, 1])).embeddings
    array([[0., 1., 1.],
           [1., 0., 1.]])
    """
    H = data.embeddings
    return _freeze(replace(data, embeddings=np.c_[H, np.ones(len(H), dtype=H.dtype)]))


def _unique_rows(X):
    """Distinct rows of ``X`` in lexicographic order, as a dense ``H``, and the row map.

    A sparse ``X`` is never densified as a whole: rows are grouped by their
    canonical (indices, values) bytes and only one row per group is densified.
    """
    if not sp.issparse(X):
        H, inverse = np.unique(X, axis=0, return_inverse=True)
        return H, inverse.ravel()
    X = sp.csr_matrix(X, copy=True)  # canonical form, on a copy of the caller's matrix
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    groups = {}
    first_seen = np.array([
        groups.setdefault(X.indices[start:end].tobytes() + X.data[start:end].tobytes(),
                          len(groups))
        for start, end in zip(X.indptr[:-1], X.indptr[1:])], dtype=np.intp)
    representatives = np.unique(first_seen, return_index=True)[1]
    # Sorting the few distinct rows gives exactly the contexts of the dense path.
    H, order = np.unique(X[representatives].toarray(), axis=0, return_inverse=True)
    return H, order.ravel()[first_seen]


@validate_params({"X": ["array-like", "sparse matrix"], "y": ["array-like", "sparse matrix", None],
                  "sample_weight": ["array-like", None], "classes": ["array-like", None]},
                 prefer_skip_nested_validation=True)
def aggregate_contexts(X, y, sample_weight=None, *, classes=None):
    """Merge identical rows of ``X`` into distinct contexts (the paper's ``T_m``).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Context embeddings. Identical rows are one context. A sparse ``X``
        (CSR or CSC) is aggregated on its nonzeros; only the distinct
        contexts ``H`` are stored densely.
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Either next-token labels (one raw (context, token) pair per row) or
        soft targets: nonnegative rows summing to one (tolerance ``1e-6``),
        dense, scipy.sparse or a pandas DataFrame (its column names are then
        the tokens).
    sample_weight : array-like of shape (n_samples,), default=None
        Nonnegative row weights; only their ratios matter (any positive
        uniform weights give the data of weights one). Rows of zero weight
        are ignored.
    classes : array-like of shape (n_tokens,), default=None
        Distinct token labels fixing the vocabulary and the column order of
        ``probabilities`` (in any order; copied, never modified); by default
        the sorted distinct labels of ``y``, or ``arange(n_tokens)`` for 2-D
        ``y``.

    Returns
    -------
    data : NTPData
        Distinct embeddings ``H``, sparse probabilities ``P``, weights ``pi``
        (summing to one), ``classes`` and the row-to-context map.

    Raises
    ------
    ValueError
        On NaN/inf, shape mismatches, negative or non-normalized probability
        rows, empty input, a single token, or invalid weights.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> data = aggregate_contexts(X, ["a", "b", "a"])
    >>> data.n_contexts, data.n_tokens
    (2, 2)
    >>> data.probabilities.toarray()
    array([[1. , 0. ],
           [0.5, 0.5]])
    >>> data.weights
    array([0.33333333, 0.66666667])
    """
    if sp.issparse(X):
        check_precision(X)
        X = check_array(X, accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32),
                        input_name="X")
    else:
        X = check_embeddings(X)
    n_samples = X.shape[0]
    Y, classes = check_targets(y, n_samples, classes)
    return merge_contexts(X, Y, check_sample_weight(sample_weight, n_samples), classes)


def merge_contexts(X, Y, w, classes):
    """:func:`aggregate_contexts` of inputs validated already (new arrays only).

    ``X``, ``Y``, ``w`` and ``classes`` as returned by :func:`check_embeddings`,
    :func:`check_targets` and :func:`check_sample_weight`.
    """
    n_samples = X.shape[0]
    keep = np.flatnonzero(w > 0)
    H, inverse = _unique_rows(X[keep])
    n_contexts = H.shape[0]
    # Summing weighted rows per context = weighted average of their distributions.
    group = sp.csr_matrix(
        (w[keep], (inverse, np.arange(keep.size))), shape=(n_contexts, keep.size)
    )
    counts = np.asarray(group.sum(axis=1)).ravel()
    P = sp.csr_matrix(group @ Y[keep])
    sizes = np.diff(P.indptr)
    with np.errstate(over="ignore"):
        reciprocal = np.repeat(1.0 / counts, sizes)
    # Rows scaled by 1 / counts, or divided by counts where that overflows
    # (a context whose total weight is subnormal).
    P.data = np.where(np.isfinite(reciprocal), P.data * reciprocal,
                      P.data / np.repeat(counts, sizes))
    P.eliminate_zeros()
    P.sort_indices()

    context_index = np.full(n_samples, -1, dtype=np.intp)
    context_index[keep] = inverse
    return _freeze(NTPData(H, P, counts / counts.sum(), classes, context_index))


def _freeze(data):
    for arr in (data.embeddings, data.weights, data.classes, data.context_index,
                data.probabilities.data, data.probabilities.indices,
                data.probabilities.indptr):
        arr.flags.writeable = False
    return data


def as_ntp_data(X, y=None, sample_weight=None):
    """Return ``X`` if it is already an :class:`NTPData`, else aggregate ``(X, y)``.

    An :class:`NTPData` holds its targets and weights: passing others as well
    is an error, not something to ignore silently.
    """
    if isinstance(X, NTPData):
        if y is not None or sample_weight is not None:
            raise ValueError("y and sample_weight must be None when X is an NTPData "
                             "(aggregated data hold their targets and weights).")
        return X
    return aggregate_contexts(X, y, sample_weight)


def with_support(data, mask):
    """The contexts of ``data`` with uniform next-token distributions on ``mask``.

    Only the support pattern of the result matters to its users (the
    NTP-SVM and the subspace spanned by in-support differences, built for the
    effective supports ``S~_j``); embeddings, weights and classes are shared.

    Parameters
    ----------
    data : NTPData
        Distinct contexts.
    mask : ndarray of bool, shape (n_contexts, n_tokens)
        The new supports; every row needs at least one True.

    Returns
    -------
    data : NTPData
    """
    P = sp.csr_matrix(mask / mask.sum(axis=1, keepdims=True))
    P.sort_indices()
    return _freeze(NTPData(data.embeddings, P, data.weights, data.classes,
                           data.context_index))
