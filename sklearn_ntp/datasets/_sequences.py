"""Distinct contexts and empirical next-token distributions from token sequences."""

import numpy as np
from sklearn.utils import check_array

from ._utils import check_count, check_flag, check_seed, empirical_distributions

EMBEDDINGS = ("onehot", "random")


def contexts_from_sequences(sequences, context_length=None, *, autoregressive=False,
                            max_context_length=None, embedding="onehot",
                            n_features=None, vocabulary=None, random_state=None,
                            return_vocabulary=False):
    """Group the (context, next token) pairs of token sequences into distinct contexts.

    Two ways to cut sequences into pairs:

    * fixed windows (default): every position ``t >= k`` of a sequence gives
      the context ``tuple(seq[t-k:t])`` of its ``k = context_length`` previous
      tokens and the next token ``seq[t]`` (an order-``k`` Markov view).
      Sequences with at most ``k`` tokens give no pair and are skipped;
    * autoregressive (paper App. C): every prefix is a context, i.e. position
      ``t >= 1`` gives ``(tuple(seq[:t]), seq[t])``, as when a language model
      is trained on whole sequences. ``max_context_length`` keeps only the
      prefixes of at most that many tokens.

    Identical contexts are merged: row ``j`` of ``Y`` is the empirical
    next-token distribution of context ``j`` and ``sample_weight[j]`` its
    number of occurrences.

    Parameters
    ----------
    sequences : iterable of sequences of hashable tokens
        The corpus, e.g. lists of strings or ints (a string is a sequence of
        characters).
    context_length : int, default=None
        Window length ``k >= 1`` for fixed windows; ``None`` means 1 (bigram
        contexts). Must be None when ``autoregressive=True``.
    autoregressive : bool, default=False
        Use every prefix as a context instead of fixed windows.
    max_context_length : int, default=None
        Longest prefix kept in autoregressive mode (None keeps all). Must be
        None for fixed windows.
    embedding : {"onehot", "random"} or callable, default="onehot"
        Context embeddings: ``"onehot"`` gives ``X`` the identity matrix
        (one coordinate per distinct context, a dense ``m x m`` array);
        ``"random"`` draws i.i.d. ``N(0, 1/n_features)`` entries, so that rows
        have unit norm on average and near-orthogonal rows, like one-hot rows
        compressed to ``n_features`` coordinates; a callable maps a context
        tuple to a 1-D vector (contexts mapped to equal vectors are merged
        later by the estimators).
    n_features : int, default=None
        Embedding dimension; required with ``embedding="random"`` and not
        accepted otherwise.
    vocabulary : sequence of hashable, default=None
        Tokens labelling the columns of ``Y``, in order; must contain every
        token of ``sequences``. Default: the sorted distinct tokens of
        ``sequences`` (including tokens that are never predicted, which are
        out of every support).
    random_state : int, RandomState instance or None, default=None
        Seed of the random embeddings (used only with ``embedding="random"``).
    return_vocabulary : bool, default=False
        Also return the vocabulary.

    Returns
    -------
    X : ndarray of shape (n_contexts, n_features)
        Embedding of every distinct context.
    Y : scipy.sparse.csr_matrix of shape (n_contexts, n_tokens)
        Empirical next-token distributions; column ``z`` is token
        ``vocabulary[z]``.
    sample_weight : ndarray of shape (n_contexts,)
        Number of occurrences of every context (float).
    contexts : list of tuple
        The distinct contexts, in order of first occurrence in ``sequences``.
    vocabulary : list
        The column tokens; only returned with ``return_vocabulary=True``.

    Raises
    ------
    ValueError
        On a non-sequence corpus or element, unhashable or unsortable tokens
        without ``vocabulary``, tokens missing from ``vocabulary``, invalid
        lengths, an unknown ``embedding``, a misplaced or missing
        ``n_features``, a callable returning vectors of unequal length or
        non-finite entries, or a corpus that yields no pair.

    See Also
    --------
    load_python_tokens : A real corpus to feed in.
    sklearn_ntp.implicit_bias.aggregate_contexts : The same grouping for embeddings.

    Examples
    --------
    >>> from sklearn_ntp.datasets import contexts_from_sequences
    >>> X, Y, w, contexts, vocab = contexts_from_sequences(
    ...     ["abab", "abb"], context_length=1, return_vocabulary=True)
    >>> contexts, vocab
    ([('a',), ('b',)], ['a', 'b'])
    >>> Y.toarray()
    array([[0. , 1. ],
           [0.5, 0.5]])
    >>> w
    array([3., 2.])
    >>> contexts_from_sequences(["abab"], autoregressive=True)[3]
    [('a',), ('a', 'b'), ('a', 'b', 'a')]
    """
    k, max_length = _check_lengths(context_length, autoregressive, max_context_length)
    n_features = _check_embedding(embedding, n_features)
    check_flag(return_vocabulary, "return_vocabulary")
    corpus = _as_corpus(sequences)
    vocabulary = _vocabulary(corpus, vocabulary)

    column = {token: z for z, token in enumerate(vocabulary)}
    contexts, Y, sample_weight = count_contexts(corpus, k, max_length, column)
    X = _embed(contexts, embedding, n_features, random_state)
    if return_vocabulary:
        return X, Y, sample_weight, contexts, vocabulary
    return X, Y, sample_weight, contexts


def _check_lengths(context_length, autoregressive, max_context_length):
    """Return ``(k, max_length)``: window length (None if autoregressive) and prefix bound."""
    if check_flag(autoregressive, "autoregressive"):
        if context_length is not None:
            raise ValueError(
                "context_length applies to fixed windows only; with "
                "autoregressive=True bound the prefixes with max_context_length."
            )
        return None, check_count(max_context_length, "max_context_length",
                                 allow_none=True)
    if max_context_length is not None:
        raise ValueError("max_context_length applies only with autoregressive=True.")
    k = 1 if context_length is None else context_length
    return check_count(k, "context_length"), None


def _check_embedding(embedding, n_features):
    if not (callable(embedding) or (isinstance(embedding, str) and embedding in EMBEDDINGS)):
        raise ValueError(
            f"embedding must be one of {EMBEDDINGS} or a callable, got {embedding!r}."
        )
    if embedding == "random":
        if n_features is None:
            raise ValueError('n_features is required with embedding="random".')
        return check_count(n_features, "n_features")
    if n_features is not None:
        raise ValueError('n_features is only used with embedding="random".')
    return None


def _as_corpus(sequences):
    """Materialize the corpus as a list of token tuples."""
    if isinstance(sequences, (str, bytes)):
        raise ValueError(
            "sequences must be an iterable of token sequences, got a single string; "
            "wrap it in a list for character tokens."
        )
    try:
        items = list(sequences)
    except TypeError:
        raise ValueError(
            f"sequences must be an iterable of token sequences, got {type(sequences).__name__}."
        ) from None
    corpus = []
    for i, seq in enumerate(items):
        try:
            corpus.append(tuple(seq))
        except TypeError:
            raise ValueError(
                f"sequences[{i}] is not a sequence of tokens: {seq!r}."
            ) from None
    return corpus


def _vocabulary(corpus, vocabulary):
    """Column tokens: checked ``vocabulary``, or the sorted tokens of the corpus."""
    try:
        tokens = set().union(*corpus)
    except TypeError as exc:
        raise ValueError(f"tokens must be hashable: {exc}.") from None
    if vocabulary is None:
        try:
            return sorted(tokens)
        except TypeError:
            raise ValueError(
                "tokens of mixed types cannot be sorted; pass vocabulary to fix "
                "the column order."
            ) from None
    vocabulary = list(vocabulary)
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError("vocabulary contains duplicate tokens.")
    missing = tokens.difference(vocabulary)
    if missing:
        raise ValueError(
            f"vocabulary lacks {len(missing)} token(s) of sequences, e.g. "
            f"{next(iter(missing))!r}."
        )
    return vocabulary


def count_contexts(corpus, k, max_length, column):
    """Distinct contexts of ``corpus``, their next-token distributions and counts.

    ``k`` and ``max_length`` cut the sequences as in :func:`contexts_from_sequences`
    (fixed windows of ``k`` tokens, or prefixes of at most ``max_length`` tokens
    when ``k`` is None); ``column`` maps every token to its column of ``Y``, and
    its length is the number of columns. Returns ``(contexts, Y, counts)``: the
    distinct context tuples in order of first occurrence, the CSR matrix of
    their empirical next-token distributions and their numbers of occurrences.
    """
    index, rows, cols = {}, [], []
    for context, token in _pairs(corpus, k, max_length):
        rows.append(index.setdefault(context, len(index)))
        cols.append(column[token])
    if not rows:
        raise ValueError(
            "sequences yield no (context, next token) pair: every sequence is "
            "shorter than context_length + 1 (or than 2 tokens)."
        )
    contexts = list(index)
    Y, counts = empirical_distributions(
        rows, cols, np.ones(len(rows)), (len(contexts), len(column)))
    return contexts, Y, counts


def _pairs(corpus, k, max_length):
    """Yield the (context tuple, next token) pairs: fixed windows if ``k`` is set."""
    for seq in corpus:
        if k is not None:
            for t in range(k, len(seq)):
                yield seq[t - k:t], seq[t]
        else:
            stop = len(seq) if max_length is None else min(len(seq), max_length + 1)
            for t in range(1, stop):
                yield seq[:t], seq[t]


def _embed(contexts, embedding, n_features, random_state):
    m = len(contexts)
    if embedding == "onehot":
        return np.eye(m)
    if embedding == "random":
        rng = check_seed(random_state)
        # Variance 1/d keeps the Gram matrix close to the one-hot identity.
        return rng.standard_normal((m, n_features)) / np.sqrt(n_features)
    vectors = [np.asarray(embedding(context), dtype=np.float64) for context in contexts]
    shapes = {v.shape for v in vectors}
    if len(shapes) != 1 or len(vectors[0].shape) != 1:
        raise ValueError(
            "embedding must map every context to a 1-D vector of one common "
            f"length; got shapes {sorted(shapes)[:3]}."
        )
    return check_array(np.vstack(vectors), input_name="X")
