"""Next-token statistics of a corpus, with contexts embedded by a language model."""

import numbers
import reprlib

import numpy as np
from sklearn.utils import Bunch

from ._sequences import _as_corpus, count_contexts
from ._utils import check_count

#: Floating dtypes narrower than float32 (``bfloat16`` comes from ``ml_dtypes``
#: and is not a NumPy floating kind): every batch in one of them is upcast.
_HALF_PRECISION = ("float16", "bfloat16")

DESCR = """Next-token statistics of a token corpus
---------------------------------------

Distinct contexts of the corpus (rows of ``data``, their final hidden states
under ``embed``), their empirical next-token distributions (rows of the sparse
``target``, one column per token id) and their frequencies (``sample_weight``,
counts over the total). Built by ``sklearn_ntp.datasets.next_token_statistics``.
"""


def next_token_statistics(sequences, embed, *, context_length=None, batch_size=64,
                          vocabulary=None):
    """Distinct contexts of a corpus, embedded in batches, with their next tokens.

    The paper's aggregation on a real corpus: every position ``t`` of a token
    sequence gives the pair (context, next token ``seq[t]``), identical
    contexts -- equal tuples of token ids -- are one context, and each
    distinct context is mapped by ``embed`` to its final hidden state once.
    Contexts are

    * the whole prefix ``seq[:t]`` (``context_length=None``, every ``t >= 1``),
      as a causal language model reads a sequence;
    * or the last ``k = context_length`` tokens ``seq[t-k:t]``, for the
      positions ``t >= k`` that have that many (the fixed windows of
      :func:`contexts_from_sequences`; shorter sequences give no pair).

    ``embed`` is called on batches of at most ``batch_size`` distinct
    contexts, in order of increasing length (so that a language model pads
    little), and its rows are put back in the order of the contexts.

    Parameters
    ----------
    sequences : iterable of sequences of int or str
        The corpus. Integer tokens are token ids in ``[0, n_tokens)``; other
        tokens are names, looked up in ``vocabulary``.
    embed : callable
        ``embed(contexts) -> array of shape (len(contexts), n_features)``:
        maps a list of contexts (tuples of token ids) to their final hidden
        states, e.g. :func:`hidden_state_embedder` of a Hugging Face model.
        Each batch is converted with :func:`numpy.asarray`; ``float16`` and
        ``bfloat16`` batches are upcast to ``float32`` (exactly: both are
        subsets of it), other floating dtypes are kept and anything else is
        converted to ``float64``.
    context_length : int, default=None
        Length ``k >= 1`` of the fixed windows; None uses whole prefixes.
    batch_size : int, default=64
        Largest number of contexts passed to one call of ``embed``.
    vocabulary : sequence of hashable or dict, default=None
        Token names: ``vocabulary[z]`` names token id ``z`` (a dict maps names
        to the ids ``0, ..., n_tokens - 1``, like a tokenizer's
        ``get_vocab()``); ``n_tokens = len(vocabulary)``. Required for
        non-integer tokens. Default: the ids ``0, ..., max id`` name
        themselves.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : ndarray of shape (n_contexts, n_features)
            The hidden state of every distinct context, float32 or float64.
        target : scipy.sparse.csr_matrix of shape (n_contexts, n_tokens)
            Empirical next-token distribution of every context; column ``z``
            is token id ``z``.
        sample_weight : ndarray of shape (n_contexts,)
            Frequency of every context: its count over the number of pairs.
        counts : ndarray of shape (n_contexts,)
            Number of occurrences of every context (float).
        contexts : list of tuple of int
            The distinct contexts as token ids, in order of first occurrence.
        target_names : list
            Name of every token id (``vocabulary`` as a list).
        DESCR : str
            Description of the data.

    Raises
    ------
    ValueError
        On an invalid corpus, length or ``batch_size``; on tokens that are
        not ids without ``vocabulary``, names missing from it or ids out of
        range; on a corpus that yields no pair; and when ``embed`` returns,
        for some batch (named by its index and first context), an array of
        the wrong shape, another ``n_features`` than earlier batches, or
        non-finite values.

    See Also
    --------
    hidden_state_embedder : ``embed`` for a Hugging Face causal language model.
    lm_decoder : The output embedding matrix of such a model.
    contexts_from_sequences : The same aggregation with one-hot or random embeddings.

    Examples
    --------
    A bag-of-tokens stand-in for a language model: the hidden state of a
    context is the mean of its tokens' rows in a fixed embedding matrix.

    >>> import numpy as np
    >>> from sklearn_ntp import NTPLinearClassifier
    >>> from sklearn_ntp.datasets import next_token_statistics
    >>> E = np.random.default_rng(0).standard_normal((4, 8))
    >>> def embed(contexts):
    ...     return np.stack([E[list(c)].mean(axis=0) for c in contexts])
    >>> stats = next_token_statistics([[0, 1, 2, 3], [0, 1, 3]], embed)
    >>> stats.contexts
    [(0,), (0, 1), (0, 1, 2)]
    >>> stats.target.toarray()
    array([[0. , 1. , 0. , 0. ],
           [0. , 0. , 0.5, 0.5],
           [0. , 0. , 0. , 1. ]])
    >>> stats.sample_weight
    array([0.4, 0.4, 0.2])
    >>> clf = NTPLinearClassifier().fit(stats.data, stats.target,
    ...                                 sample_weight=stats.sample_weight)
    >>> clf.coef_.shape
    (4, 8)
    """
    k = check_count(context_length, "context_length", allow_none=True)
    batch_size = check_count(batch_size, "batch_size")
    if not callable(embed):
        raise ValueError(f"embed must be a callable, got {type(embed).__name__}.")
    names = _token_names(vocabulary)
    corpus, n_tokens = _token_ids(_as_corpus(sequences), names)
    # ``range(n)`` maps every (checked) id to itself: columns are token ids.
    contexts, Y, counts = count_contexts(corpus, k, None, range(n_tokens))
    return Bunch(
        data=_embed_in_batches(contexts, embed, batch_size), target=Y,
        sample_weight=counts / counts.sum(), counts=counts, contexts=contexts,
        target_names=list(range(n_tokens)) if names is None else names, DESCR=DESCR,
    )


def _token_names(vocabulary):
    """``vocabulary`` as the list of names of ids ``0, 1, ...`` (None stays None)."""
    if vocabulary is None:
        return None
    if isinstance(vocabulary, dict):
        if set(vocabulary.values()) != set(range(len(vocabulary))):
            raise ValueError(
                "vocabulary, a dict of token names to ids, must map to the ids "
                f"0, ..., {len(vocabulary) - 1} exactly once each."
            )
        names = [None] * len(vocabulary)
        for name, z in vocabulary.items():
            names[z] = name
        return names
    if isinstance(vocabulary, (str, bytes)):
        raise ValueError("vocabulary must be a sequence of token names or a dict, "
                         "got a single string.")
    names = list(vocabulary)
    if not names:
        raise ValueError("vocabulary is empty.")
    if len(set(names)) != len(names):
        raise ValueError("vocabulary contains duplicate tokens.")
    return names


def _is_id(token):
    return isinstance(token, numbers.Integral) and not isinstance(token, bool)


def _token_ids(corpus, names):
    """The corpus as tuples of ids, and the number of tokens."""
    lookup = {} if names is None else {name: z for z, name in enumerate(names)}
    ids, largest = [], -1
    for i, seq in enumerate(corpus):
        seq_ids = tuple(int(t) if _is_id(t) else _lookup(lookup, t, i, names)
                        for t in seq)
        if seq_ids:
            if min(seq_ids) < 0:
                raise ValueError(f"sequences[{i}] contains a negative token id.")
            largest = max(largest, max(seq_ids))
        ids.append(seq_ids)
    n_tokens = largest + 1 if names is None else len(names)
    if largest >= n_tokens:
        raise ValueError(f"sequences contain the token id {largest}, but vocabulary "
                         f"has only {n_tokens} tokens.")
    return ids, n_tokens


def _lookup(lookup, token, i, names):
    try:
        return lookup[token]
    except (KeyError, TypeError):
        if names is None:
            raise ValueError(
                f"sequences[{i}] contains {token!r}, which is not an integer token "
                "id; pass vocabulary to name the tokens."
            ) from None
        raise ValueError(f"sequences[{i}] contains {token!r}, which is not in "
                         "vocabulary.") from None


def _embed_in_batches(contexts, embed, batch_size):
    """Embed the contexts in batches of similar lengths; rows in the order of ``contexts``."""
    order = np.array(sorted(range(len(contexts)), key=lambda j: len(contexts[j])))
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    X = None
    for b, rows in enumerate(batches):
        batch = [contexts[j] for j in rows]
        states = _checked_batch(embed(batch), batch, b, None if X is None else X.shape[1])
        if X is None:
            X = np.empty((len(contexts), states.shape[1]), dtype=states.dtype)
        elif np.result_type(X, states) != X.dtype:  # e.g. float32 batches, then float64
            X = X.astype(np.result_type(X, states))
        X[rows] = states
    return X


def _checked_batch(states, batch, b, width):
    """Batch ``b`` of hidden states as a finite float array of shape (len(batch), width)."""
    where = f"embed returned for batch {b} (first context {reprlib.repr(batch[0])})"
    try:
        states = np.asarray(states)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{where} an object that is not an array: {exc}") from None
    if states.dtype.name in _HALF_PRECISION:
        states = states.astype(np.float32)
    elif states.dtype.kind in "biu":
        states = states.astype(np.float64)
    elif states.dtype.kind != "f":
        raise ValueError(f"{where} an array of dtype {states.dtype}, not real numbers.")
    if states.ndim != 2 or states.shape[0] != len(batch) or states.shape[1] == 0:
        raise ValueError(f"{where} an array of shape {states.shape}; expected "
                         f"({len(batch)}, n_features), one row per context.")
    if width is not None and states.shape[1] != width:
        raise ValueError(f"{where} {states.shape[1]} features, but {width} for the "
                         "earlier batches.")
    if not np.all(np.isfinite(states)):
        raise ValueError(f"{where} non-finite values (NaN or inf).")
    return states
