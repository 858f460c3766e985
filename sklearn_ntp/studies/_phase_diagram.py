"""Monte Carlo phase diagram of NTP-separability and NTP_H-compatibility."""

from numbers import Integral

import numpy as np
from joblib import Parallel, delayed
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from .._geometry._report import check_ntp_separability
from ..datasets import make_ntp_data
from ..datasets._utils import check_count

#: Columns of the returned table that are fractions of the draws of a cell.
_FRACTIONS = ("separable_fraction", "compatible_fraction",
              "separable_and_compatible_fraction", "overparameterized_fraction")


def _root_seed(random_state):
    """The :class:`numpy.random.SeedSequence` every draw's seed derives from."""
    if isinstance(random_state, Integral):
        return np.random.SeedSequence(int(random_state))
    return np.random.SeedSequence(
        int(check_random_state(random_state).randint(np.iinfo(np.int32).max)))


def _draw(n_contexts, n_features, n_tokens, support_size, n_sequences, seed):
    """One random data set of :func:`make_ntp_data`, seeded by a SeedSequence."""
    rng = np.random.RandomState(np.random.MT19937(seed))
    return make_ntp_data(n_contexts=n_contexts, vocab_size=n_tokens, n_features=n_features,
                         support_size=support_size, n_sequences=n_sequences,
                         random_state=rng)


def _cell(n_contexts, n_features, n_tokens, support_size, n_sequences, seed, n_draws):
    """Counts over the ``n_draws`` draws of one grid cell.

    Returns the numbers of separable, compatible, both, and overparameterized
    draws, and the sum of the margins of the separable ones.
    """
    counts, margin_sum = np.zeros(4, dtype=np.int64), 0.0
    for child in seed.spawn(n_draws):
        report = check_ntp_separability(
            *_draw(n_contexts, n_features, n_tokens, support_size, n_sequences, child))
        counts += (report.is_separable, report.is_compatible,
                   report.is_separable and report.is_compatible, report.overparameterized)
        if report.is_separable:
            margin_sum += report.margin
    return counts, margin_sum


@validate_params(
    {
        "n_contexts": ["array-like"],
        "n_features": ["array-like"],
        "n_tokens": [Interval(Integral, 2, None, closed="left")],
        "support_size": [Interval(Integral, 1, None, closed="left")],
        "n_draws": [Interval(Integral, 1, None, closed="left")],
        "sequences_per_context": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def separability_phase_diagram(*, n_contexts=(10, 20, 40), n_features=(2, 5, 10, 15, 20, 30, 40),
                               n_tokens=5, support_size=2, n_draws=10,
                               sequences_per_context=20, random_state=None, n_jobs=None,
                               verbose=0):
    """Fraction of random NTP data sets that are separable and compatible, per ``(m, d)``.

    For every pair ``(m, d)`` of ``n_contexts`` x ``n_features``, ``n_draws``
    data sets are drawn with the construction of
    :func:`~sklearn_ntp.datasets.make_ntp_data` (Gaussian embeddings, uniform
    random supports of ``support_size`` out of ``n_tokens`` tokens,
    ``sequences_per_context * m`` sampled next tokens) and each is checked with
    :func:`~sklearn_ntp.implicit_bias.check_ntp_separability`: NTP-separability
    (Definition 2, decided with a Farkas certificate when infeasible) and
    NTP_H-compatibility (Definition 1). Lemma 1 guarantees both when ``d > m``;
    where the transition lies below ``d = m`` is the paper's open Remark 1.

    The grid cells run as :class:`joblib.Parallel` tasks, so
    ``with joblib.parallel_backend("dask"):`` runs them on a dask cluster.
    Every draw's seed derives from ``random_state`` through
    :class:`numpy.random.SeedSequence` (one child per cell, one grandchild per
    draw), so the results are bit-identical for any ``n_jobs`` and backend.

    Parameters
    ----------
    n_contexts : array-like of int, default=(10, 20, 40)
        Numbers of distinct contexts ``m``.
    n_features : array-like of int, default=(2, 5, 10, 15, 20, 30, 40)
        Embedding dimensions ``d``.
    n_tokens : int, default=5
        Vocabulary size ``V``.
    support_size : int, default=2
        Support size ``S`` of every context, at most ``n_tokens``. ``n_tokens=2,
        support_size=1`` is binary one-hot data, where Cover's theorem gives the
        answer (separable with probability 1/2 at ``d / m = 1/2``).
    n_draws : int, default=10
        Random data sets per grid cell.
    sequences_per_context : int, default=20
        Sampled (context, next token) pairs per context, at least
        ``support_size``; the next-token distributions are their empirical
        frequencies, as in :func:`~sklearn_ntp.datasets.make_ntp_data`.
    random_state : int, RandomState instance or None, default=None
        Seed of all draws.
    n_jobs : int, default=None
        Parallel tasks (one per grid cell); None means 1 unless in a
        :func:`joblib.parallel_config` context, -1 means all processors.
    verbose : int, default=0
        joblib's progress messages.

    Returns
    -------
    results : dict of ndarray
        Equal-length arrays, one entry per grid cell (``pandas.DataFrame(results)``
        makes a table): ``n_contexts``, ``n_features``, ``features_per_context``
        (``d / m``), ``n_tokens``, ``support_size``, ``n_draws``,
        ``separable_fraction``, ``compatible_fraction``,
        ``separable_and_compatible_fraction``, ``overparameterized_fraction``
        (``d > m`` with full-rank embeddings: Lemma 1's condition) and
        ``mean_margin`` (mean max margin ``1 / ||W^mm||`` over the separable
        draws; NaN if there is none, ``inf`` when ``support_size == n_tokens``).

    See Also
    --------
    sklearn_ntp.plotting.PhaseDiagramDisplay : Heat map of the results.
    sklearn_ntp.implicit_bias.check_ntp_separability : The check of one data set.

    Examples
    --------
    >>> from sklearn_ntp.studies import separability_phase_diagram
    >>> results = separability_phase_diagram(n_contexts=[6], n_features=[2, 8],
    ...                                      n_draws=3, random_state=0)
    >>> results["n_features"], results["separable_fraction"]
    (array([2, 8]), array([0., 1.]))
    """
    ms = [check_count(m, "n_contexts") for m in np.ravel(n_contexts)]
    ds = [check_count(d, "n_features") for d in np.ravel(n_features)]
    if not ms or not ds:
        raise ValueError("n_contexts and n_features must each hold at least one value.")
    if support_size > n_tokens:
        raise ValueError(f"support_size={support_size} exceeds n_tokens={n_tokens}.")
    if sequences_per_context < support_size:
        raise ValueError(f"sequences_per_context={sequences_per_context} must be at least "
                         f"support_size={support_size}.")
    grid = [(m, d) for m in ms for d in ds]
    seeds = _root_seed(random_state).spawn(len(grid))
    cells = Parallel(n_jobs=n_jobs, verbose=verbose)(
        delayed(_cell)(m, d, n_tokens, support_size, sequences_per_context * m, seed,
                       n_draws)
        for (m, d), seed in zip(grid, seeds))
    counts = np.array([c for c, _ in cells])
    separable = counts[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_margin = np.array([s for _, s in cells]) / separable
    m_col, d_col = (np.array(col) for col in zip(*grid))
    results = {
        "n_contexts": m_col,
        "n_features": d_col,
        "features_per_context": d_col / m_col,
        "n_tokens": np.full(len(grid), n_tokens),
        "support_size": np.full(len(grid), support_size),
        "n_draws": np.full(len(grid), n_draws),
    }
    results.update({name: counts[:, i] / n_draws for i, name in enumerate(_FRACTIONS)})
    results["mean_margin"] = np.where(separable > 0, mean_margin, np.nan)
    return results
