"""Synthetic NTP data: the paper's random construction (App. A.2), its 2-D toy,
and data that are partially separable (beyond the paper's conditions).

The generators return distinct contexts ``(X, Y, sample_weight)``: one row of
``X`` per context, its next-token distribution as a row of the sparse ``Y``,
and its weight.
"""

import numbers

import numpy as np

from .._exceptions import NotNTPCompatibleError, NotNTPSeparableError
from .._geometry._subspace import log_odds_solution
from .._geometry._svm import ntp_svm
from ._utils import check_count, check_flag, check_seed, empirical_distributions

#: Supports of the toy contexts A, B, C: token 2 follows A only, every other
#: token follows exactly two contexts (paper Fig. 1).
TOY_SUPPORTS = ((0, 1, 2), (0, 3, 4), (1, 3, 4))
#: Redraws allowed before the toy generator gives up. About one Gaussian draw in
#: six is NTP-separable, so 100 failures in a row have probability below 1e-8.
TOY_MAX_DRAWS = 100


def make_ntp_data(n_contexts=50, vocab_size=10, n_features=60, support_size=6,
                  n_sequences=5000, *, concentration=1.0, random_state=None,
                  return_pairs=False, sparse_targets=True):
    """Random NTP data with sparse next-token distributions (paper App. A.2).

    The construction of the paper's overparameterized experiments:

    1. ``n_contexts`` context embeddings with i.i.d. standard Gaussian entries
       (distinct almost surely; at this scale the paper's step sizes apply,
       e.g. gradient descent with ``learning_rate=0.5``);
    2. for every context, a support of ``support_size`` tokens drawn uniformly
       without replacement from the ``vocab_size`` tokens;
    3. in-support probabilities ``q_j ~ Dirichlet(concentration)`` (the
       default ``concentration=1`` is the uniform law on the simplex; its mean
       entropy ``sum_{k=2}^{S} 1/k`` is ``1.45`` nats for ``S = 6``, the scale
       of the paper's draw, ``H ~ 1.445``);
    4. ``n_sequences`` raw (context, next token) pairs: every context occurs
       ``support_size`` times, once with each of its support tokens (so every
       context occurs and its support is exactly the drawn one), and the
       remaining ``n_sequences - n_contexts * support_size`` pairs pick a
       context uniformly and its next token from ``q_j``.

    ``Y`` holds the *empirical* next-token distributions of these pairs and
    ``sample_weight`` the context counts, so fitting on the distinct contexts
    and fitting on the raw pairs (``return_pairs=True``) is the same problem.

    Parameters
    ----------
    n_contexts : int, default=50
        Number of distinct contexts ``m``.
    vocab_size : int, default=10
        Number of tokens ``V`` (at least 2).
    n_features : int, default=60
        Embedding dimension ``d``. ``d > m`` makes the data NTP-compatible
        and NTP-separable almost surely (paper Lemma 1).
    support_size : int, default=6
        Support size ``S_j`` of every context, between 1 and ``vocab_size``.
    n_sequences : int, default=5000
        Number of raw (context, next token) pairs ``n``; at least
        ``n_contexts * support_size``.
    concentration : float, default=1.0
        Dirichlet parameter of the in-support probabilities; small values give
        peaked distributions, large values nearly uniform ones.
    random_state : int, RandomState instance or None, default=None
        Seed of every random draw.
    return_pairs : bool, default=False
        If True, return the raw pairs instead of the distinct contexts.
    sparse_targets : bool, default=True
        Return the distributions ``Y`` as a CSR matrix (the sparse ``P`` of
        the paper, which every function of the library takes as is), or as a
        dense ndarray if False: scikit-learn's model selection tools
        (``cross_val_score``, ``GridSearchCV``) refuse sparse targets.
        Ignored with ``return_pairs=True``.

    Returns
    -------
    X : ndarray of shape (n_contexts, n_features) or (n_sequences, n_features)
        Context embeddings; with ``return_pairs=True`` one row per pair (the
        embedding of its context), in random order.
    Y : scipy.sparse.csr_matrix or ndarray
        Of shape (n_contexts, vocab_size): empirical next-token
        distributions (rows sum to one, exactly
        ``support_size`` nonzeros each; dense with ``sparse_targets=False``);
        with ``return_pairs=True``, of shape (n_sequences,): the integer
        next-token labels in ``range(vocab_size)``.
    sample_weight : ndarray of shape (n_contexts,) or None
        Number of pairs of every context (float); ``None`` with
        ``return_pairs=True`` (every pair counts once), so
        ``fit(X, Y, sample_weight=sample_weight)`` works in both cases.

    Raises
    ------
    ValueError
        If a count is not a positive integer, ``vocab_size < 2``,
        ``support_size > vocab_size``, ``n_sequences`` is too small, or
        ``concentration`` is not a positive finite number.

    See Also
    --------
    make_toy_ntp_data : The paper's 2-D, three-context example.
    sklearn_ntp.implicit_bias.aggregate_contexts : Groups raw pairs into contexts.

    Notes
    -----
    A token that lies in no drawn support never occurs among the raw pairs;
    aggregate them with ``classes=np.arange(vocab_size)`` to keep its column.

    Examples
    --------
    >>> from sklearn_ntp.datasets import make_ntp_data
    >>> X, Y, w = make_ntp_data(n_contexts=4, vocab_size=5, n_features=6,
    ...                         support_size=2, n_sequences=100, random_state=0)
    >>> X.shape, Y.shape, Y.getnnz(axis=1).tolist(), int(w.sum())
    ((4, 6), (4, 5), [2, 2, 2, 2], 100)
    >>> X_raw, y_raw, _ = make_ntp_data(n_contexts=4, vocab_size=5, n_features=6,
    ...                                 support_size=2, n_sequences=100,
    ...                                 random_state=0, return_pairs=True)
    >>> X_raw.shape, y_raw.shape
    ((100, 6), (100,))
    >>> type(make_ntp_data(random_state=0, sparse_targets=False)[1])  # for cross_val_score
    <class 'numpy.ndarray'>
    """
    m = check_count(n_contexts, "n_contexts")
    V = check_count(vocab_size, "vocab_size", minimum=2)
    d = check_count(n_features, "n_features")
    S = check_count(support_size, "support_size")
    n = check_count(n_sequences, "n_sequences")
    if S > V:
        raise ValueError(f"support_size={S} exceeds vocab_size={V}.")
    if n < m * S:
        raise ValueError(
            f"n_sequences={n} is too small: every context occurs once with each of "
            f"its support tokens, so n_sequences must be >= n_contexts * "
            f"support_size = {m * S}."
        )
    if not (isinstance(concentration, numbers.Real) and np.isfinite(concentration)
            and concentration > 0):
        raise ValueError(
            f"concentration must be a positive finite number, got {concentration!r}."
        )
    check_flag(return_pairs, "return_pairs")
    check_flag(sparse_targets, "sparse_targets")

    rng = check_seed(random_state)
    H = rng.standard_normal((m, d))
    supports = np.sort(np.argsort(rng.random_sample((m, V)), axis=1)[:, :S], axis=1)
    q = _dirichlet(rng, float(concentration), S, m)
    extra = rng.multinomial(n - m * S, np.full(m, 1.0 / m))
    # One guaranteed pair per support token, the rest drawn from q_j.
    counts = 1 + np.array([rng.multinomial(extra[j], q[j]) for j in range(m)])

    rows = np.repeat(np.arange(m), S)
    if return_pairs:
        pair_rows = np.repeat(rows, counts.ravel())
        pair_tokens = np.repeat(supports.ravel(), counts.ravel())
        order = rng.permutation(n)
        return H[pair_rows[order]], pair_tokens[order], None
    Y, weights = empirical_distributions(rows, supports.ravel(), counts.ravel(), (m, V))
    return H, Y if sparse_targets else Y.toarray(), weights


def _dirichlet(rng, concentration, size, n_draws):
    """``n_draws`` samples of the symmetric Dirichlet(concentration) on ``size`` atoms.

    Below 1 the Gamma variates behind numpy's sampler underflow to zero (NaN
    rows from 1e-3 on), so they are drawn in log space instead, with
    ``Gamma(a) = Gamma(a + 1) U^(1/a)``: exact for every positive ``a``.
    """
    if concentration >= 1.0:
        return rng.dirichlet(np.full(size, concentration), size=n_draws)
    shape = (n_draws, size)
    log_gamma = (np.log(rng.standard_gamma(concentration + 1.0, size=shape))
                 + np.log(rng.random_sample(shape)) / concentration)
    q = np.exp(log_gamma - log_gamma.max(axis=1, keepdims=True))
    return q / q.sum(axis=1, keepdims=True)


def make_toy_ntp_data(random_state=0):
    """The paper's 2-D toy (Fig. 1-2): 3 contexts, 5 tokens, supports of size 3.

    Contexts ``A, B, C`` (rows 0, 1, 2) have supports
    ``{0, 1, 2}``, ``{0, 3, 4}`` and ``{1, 3, 4}``: the third token (index 2)
    follows context ``A`` only and every other token follows exactly two
    contexts. Embeddings are standard Gaussian in ``R^2`` and the in-support
    probabilities uniform on the simplex (Dirichlet(1, 1, 1)); both are
    redrawn until the data are NTP_H-compatible and NTP-separable (checked with
    :func:`~sklearn_ntp.implicit_bias.log_odds_solution` and
    :func:`~sklearn_ntp.implicit_bias.ntp_svm`), which with ``m = 3 > d = 2``
    is not automatic.

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=0
        Seed of the draws; the default gives a fixed example.

    Returns
    -------
    X : ndarray of shape (3, 2)
        Context embeddings of ``A``, ``B``, ``C``.
    Y : scipy.sparse.csr_matrix of shape (3, 5)
        Next-token distributions on the supports above.
    sample_weight : ndarray of shape (3,)
        Equal weights (ones): every context is equally frequent.

    Raises
    ------
    RuntimeError
        If no draw out of 100 meets both conditions (never observed).

    See Also
    --------
    make_ntp_data : Random data of any size.

    Examples
    --------
    >>> from sklearn_ntp.datasets import make_toy_ntp_data
    >>> X, Y, w = make_toy_ntp_data()
    >>> X.shape, Y.shape, w
    ((3, 2), (3, 5), array([1., 1., 1.]))
    >>> (Y.toarray() > 0).astype(int)
    array([[1, 1, 1, 0, 0],
           [1, 0, 0, 1, 1],
           [0, 1, 0, 1, 1]])
    """
    rng = check_seed(random_state)
    m, V = len(TOY_SUPPORTS), 5
    rows = np.repeat(np.arange(m), [len(s) for s in TOY_SUPPORTS])
    cols = np.concatenate(TOY_SUPPORTS)
    weights = np.ones(m)
    for _ in range(TOY_MAX_DRAWS):
        H = rng.standard_normal((m, 2))
        probabilities = np.concatenate([rng.dirichlet(np.ones(len(s))) for s in TOY_SUPPORTS])
        Y, _ = empirical_distributions(rows, cols, probabilities, (m, V))
        try:
            log_odds_solution(H, Y, weights)
            ntp_svm(H, Y, weights)
        except (NotNTPCompatibleError, NotNTPSeparableError):
            continue
        return H, Y, weights
    raise RuntimeError(
        f"No NTP-compatible and NTP-separable toy draw in {TOY_MAX_DRAWS} attempts."
    )


def partially_separable_data(n_contexts=20, vocab_size=8, n_features=30, support_size=3,
                             *, random_state=None):
    """Data that are overparameterized but for one pair of collinear contexts.

    Gaussian embeddings ``h_j ~ N(0, I)`` and supports of ``support_size``
    tokens drawn uniformly, with in-support probabilities proportional to
    ``U(0.1, 1)`` draws (none tiny); then context 1 is replaced by twice
    context 0, with a support disjoint from context 0's and
    Dirichlet(1, ..., 1) probabilities. No direction separates both contexts
    from all their off-support tokens, so the data are not NTP-separable,
    while every other off-support pair stays separable. The data of
    ``reproduce``'s experiment beyond the paper, of the tests of the general
    limit and of ``benchmarks/gd_limit_table.py``.

    Parameters
    ----------
    n_contexts, vocab_size, n_features, support_size : int
        ``m``, ``V``, ``d`` and the support size ``S`` of every context
        (``2 S <= V``, so that context 1 finds a support disjoint from
        context 0's).
    random_state : int, Generator or None, default=None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    X : ndarray of shape (n_contexts, n_features)
    Y : ndarray of shape (n_contexts, vocab_size)
        Next-token distributions.
    sample_weight : ndarray of shape (n_contexts,)
        Ones.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.datasets._synthetic import partially_separable_data
    >>> X, Y, w = partially_separable_data(random_state=0)
    >>> X.shape, Y.shape, bool(np.allclose(X[1], 2 * X[0]))
    ((20, 30), (20, 8), True)
    >>> bool(np.any((Y[0] > 0) & (Y[1] > 0)))
    False
    """
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_contexts, n_features))
    Y = np.zeros((n_contexts, vocab_size))
    for j in range(n_contexts):
        support = rng.choice(vocab_size, size=support_size, replace=False)
        p = rng.uniform(0.1, 1.0, size=support_size)
        Y[j, support] = p / p.sum()
    X[1] = 2 * X[0]
    Y[1] = 0.0
    disjoint = rng.choice(np.flatnonzero(Y[0] == 0), size=support_size, replace=False)
    Y[1, disjoint] = rng.dirichlet(np.ones(support_size))
    return X, Y, np.ones(n_contexts)
