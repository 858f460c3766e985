"""Synthetic NTP data with the statistics of natural language, at language-model sizes."""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from ._utils import check_count, empirical_distributions

#: Default largest support: heavy enough a tail, and a bounded number of draws.
DEFAULT_MAX_SUPPORT = 1000
#: Rows of ``X`` drawn at once (bounds the float64 scratch of a float32 ``X``).
_ROW_CHUNK = 4096


def make_zipf_ntp_data(n_contexts, vocab_size, n_features, *, exponent=1.1,
                       support_exponent=2.0, max_support=None, dtype=np.float64,
                       random_state=None):
    """Random NTP data with Zipfian tokens and heavy-tailed supports.

    A corpus is observed context by context, as in natural language:

    1. context ``j`` gets a support size ``S_j`` from the truncated power law
       ``P(S = s) ~ s^(-support_exponent)`` on ``1, ..., max_support`` (most
       contexts are followed by one or two tokens, a few by hundreds);
    2. its next tokens are drawn independently from Zipf's law over the
       vocabulary, ``P(token z) ~ (z + 1)^(-exponent)`` (token 0 is the most
       frequent), until ``S_j`` distinct tokens have been seen;
    3. ``Y_j`` is the empirical distribution of these ``n_j`` draws and the
       weight of context ``j`` is ``n_j``: frequent contexts are the ones with
       large supports, as in a real corpus.

    Since the stopping rule looks only at past draws, the pooled next-token
    counts ``sum_j n_j Y_j`` follow Zipf's law in expectation (Wald's
    identity): their rank-frequency plot has slope ``-exponent``. Contexts are
    i.i.d. ``N(0, 1/n_features)`` vectors (distinct almost surely, of unit
    norm on average). Memory is proportional to the nonzeros of ``Y`` and to
    ``X``; no ``(n_contexts, vocab_size)`` array is formed. The number of draws
    of a context grows like ``S_j^exponent`` times a constant, so large
    ``max_support`` with ``exponent`` far above 1 is slow.

    Parameters
    ----------
    n_contexts : int
        Number of distinct contexts ``m``.
    vocab_size : int
        Number of tokens ``V`` (at least 2), e.g. 50257 for GPT-2.
    n_features : int
        Embedding dimension ``d``, e.g. 768.
    exponent : float, default=1.1
        Zipf exponent of the token frequencies (about 1 in natural language);
        positive.
    support_exponent : float, default=2.0
        Power-law exponent of the support sizes; positive.
    max_support : int, default=None
        Largest support size, at most ``vocab_size``; None means
        ``min(vocab_size, 1000)``.
    dtype : {np.float64, np.float32}, default=np.float64
        Dtype of ``X`` and of the values of ``Y``.
    random_state : int, RandomState instance or None, default=None
        Seed of every random draw.

    Returns
    -------
    X : ndarray of shape (n_contexts, n_features)
        Context embeddings.
    Y : scipy.sparse.csr_matrix of shape (n_contexts, vocab_size)
        Next-token distributions: rows sum to one, row ``j`` has exactly
        ``S_j`` nonzeros (sorted indices).
    sample_weight : ndarray of shape (n_contexts,)
        Number of draws ``n_j`` of every context (float64).

    Raises
    ------
    ValueError
        If a count is not a positive integer, ``vocab_size < 2``,
        ``max_support > vocab_size``, an exponent is not a positive finite
        number, or ``dtype`` is not float32 or float64.

    See Also
    --------
    make_ntp_data : The paper's construction, uniform supports of one size.
    next_token_statistics : The same kind of data from a real corpus and model.

    Examples
    --------
    >>> from sklearn_ntp.datasets import make_zipf_ntp_data
    >>> X, Y, w = make_zipf_ntp_data(1000, 50257, 16, random_state=0)
    >>> X.shape, Y.shape
    ((1000, 16), (1000, 50257))
    >>> sizes = Y.getnnz(axis=1)
    >>> bool(sizes.min() >= 1 and sizes.max() <= 1000), bool((sizes == 1).mean() > 0.5)
    (True, True)
    >>> counts = Y.T @ w  # pooled next-token counts: token 0 is the most frequent
    >>> int(counts.argmax())
    0
    """
    m = check_count(n_contexts, "n_contexts")
    V = check_count(vocab_size, "vocab_size", minimum=2)
    d = check_count(n_features, "n_features")
    s_max = check_count(min(V, DEFAULT_MAX_SUPPORT) if max_support is None else max_support,
                        "max_support")
    if s_max > V:
        raise ValueError(f"max_support={s_max} exceeds vocab_size={V}.")
    token_p = _power_law(V, _check_exponent(exponent, "exponent"))
    support_p = _power_law(s_max, _check_exponent(support_exponent, "support_exponent"))
    dtype = _check_dtype(dtype)

    rng = check_random_state(random_state)
    sizes = 1 + rng.choice(s_max, size=m, p=support_p)
    token_cdf = np.cumsum(token_p)
    rows, tokens = [], []
    for j, size in enumerate(sizes):
        drawn = _draws_until_distinct(rng, token_cdf, size)
        rows.append(np.full(drawn.size, j))
        tokens.append(drawn)
    Y, weights = empirical_distributions(np.concatenate(rows), np.concatenate(tokens),
                                         np.ones(sum(map(len, tokens))), (m, V))
    return _embeddings(rng, m, d, dtype), Y.astype(dtype), weights


def _check_exponent(value, name):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not np.isfinite(value) or value <= 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


def _check_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be np.float32 or np.float64, got {dtype!r}.")
    return dtype


def _power_law(n, exponent):
    """The probabilities ``(k + 1)^(-exponent) / sum`` of ``k = 0, ..., n - 1``."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def _draws_until_distinct(rng, cdf, n_distinct):
    """I.i.d. draws from ``cdf`` up to the one that brings ``n_distinct`` distinct values."""
    drawn = np.empty(0, dtype=np.intp)
    n_next = 2 * n_distinct
    while True:
        # Inverse CDF; clipped because the last cumulative sum may round below 1.
        more = np.minimum(np.searchsorted(cdf, rng.random_sample(n_next), side="right"),
                          cdf.size - 1)
        drawn = np.concatenate([drawn, more])
        _, first = np.unique(drawn, return_index=True)
        if first.size >= n_distinct:
            return drawn[:np.sort(first)[n_distinct - 1] + 1]
        n_next = drawn.size  # double the draws until enough distinct values appear


def _embeddings(rng, m, d, dtype):
    """``N(0, 1/d)`` rows, drawn in chunks so that float32 needs no (m, d) float64 copy."""
    X = np.empty((m, d), dtype=dtype)
    for start in range(0, m, _ROW_CHUNK):
        stop = min(start + _ROW_CHUNK, m)
        X[start:stop] = rng.standard_normal((stop - start, d)) / np.sqrt(d)
    return X
