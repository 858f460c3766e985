"""Both conditions of the paper, checked together: :func:`check_ntp_separability`."""

import time
from dataclasses import dataclass, field

import numpy as np

from ._data import as_ntp_data, with_intercept_column
from ._exceptions import NotNTPSeparableError
from ._subspace import DataSubspace
from ._svm import embedding_rank, ntp_svm


@dataclass(frozen=True)
class SeparabilityReport:
    """What :func:`check_ntp_separability` found; ``str(report)`` is a summary table.

    Attributes
    ----------
    n_contexts, n_tokens, n_features : int
        ``m``, ``V`` and ``d``.
    rank : int
        Numerical rank of the distinct-context embedding matrix ``H``.
    support_sizes : ndarray of shape (n_contexts,)
        ``S_j`` for every context.
    entropy : float
        Entropy lower bound ``H`` (nats).
    is_compatible : bool
        Whether the log-odds equations (Definition 1) have an exact solution.
    compatibility_residual : float
        Largest log-odds equation violation of the least-squares ``W*``.
    is_separable : bool
        Whether (6a)-(6b) are feasible (Definition 2).
    margin : float
        Max NTP margin ``1 / ||W^mm||``; ``inf`` when every context has full
        support (no inequality), ``nan`` when not separable.
    overparameterized : bool
        ``d > m`` and ``rank(H) = m``: the sufficient condition of Lemma 1.
    finite_component : ndarray of shape (n_tokens, n_features)
        ``W*`` (the least-squares solution in ``F`` when not compatible).
    max_margin_solution : ndarray of shape (n_tokens, n_features) or None
        ``W^mm``, or None when not separable.
    subspace_dim : int
        Dimension of the data subspace ``F``.
    timings : dict
        Seconds spent on ``W*`` (``"finite_component"``) and ``W^mm``
        (``"max_margin_solution"``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import check_ntp_separability
    >>> report = check_ntp_separability(np.array([[1.0], [2.0]]), [0, 1])
    >>> report.is_separable, report.max_margin_solution is None
    (False, True)
    """

    n_contexts: int
    n_tokens: int
    n_features: int
    rank: int
    support_sizes: np.ndarray = field(repr=False)
    entropy: float
    is_compatible: bool
    compatibility_residual: float
    is_separable: bool
    margin: float
    overparameterized: bool
    finite_component: np.ndarray = field(repr=False)
    max_margin_solution: np.ndarray = field(repr=False)
    subspace_dim: int
    timings: dict = field(repr=False)

    def __str__(self):
        sizes = self.support_sizes
        size_text = (f"{sizes[0]} for every context" if np.all(sizes == sizes[0])
                     else f"min {sizes.min()}, median {np.median(sizes):g}, max {sizes.max()}")
        full = int(np.sum(sizes == self.n_tokens))
        if full:
            size_text += f" ({full} with full support)"
        if not self.is_separable:
            separable = "no (Farkas certificate found)"
        elif np.isinf(self.margin):
            separable = "trivially: every context has full support, no margin (W^mm = 0)"
        else:
            separable = f"yes, max margin 1/||W^mm|| = {self.margin:.6g}"
        lemma = "yes (d > m, rank H = m: Lemma 1 applies)" if self.overparameterized else "no"
        rows = [
            ("distinct contexts m", f"{self.n_contexts}"),
            ("tokens V", f"{self.n_tokens}"),
            ("features d", f"{self.n_features} (rank of H: {self.rank})"),
            ("support sizes S_j", size_text),
            ("entropy bound H", f"{self.entropy:.6g} nats"),
            ("dim of data subspace F", f"{self.subspace_dim}"),
            ("NTP_H-compatible", f"{'yes' if self.is_compatible else 'no'} "
                                 f"(log-odds residual {self.compatibility_residual:.2g})"),
            ("NTP-separable", separable),
            ("overparameterized", lemma),
            ("||W*||", f"{np.linalg.norm(self.finite_component):.6g}"),
        ]
        if self.max_margin_solution is not None:
            rows.append(("||W^mm||", f"{np.linalg.norm(self.max_margin_solution):.6g}"))
        width = max(len(name) for name, _ in rows)
        lines = ["NTP separability report"] + [f"  {name:<{width}}  {value}" for name, value in rows]
        return "\n".join(lines)


def _timed(func, *args):
    start = time.perf_counter()
    out = func(*args)
    return out, time.perf_counter() - start


def check_ntp_separability(X, y=None, sample_weight=None, *, fit_intercept=False):
    """Check NTP_H-compatibility and NTP-separability, and compute ``W*`` and ``W^mm``.

    Data that fail either condition are a normal outcome: they are reported,
    never raised.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features) or NTPData
        Context embeddings (identical rows are one context), or aggregated data.
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights.
    fit_intercept : bool, default=False
        Check the contexts augmented by a constant feature ``[h_j, 1]``, the
        data of a decoder with an intercept (``NTPLinearClassifier(
        fit_intercept=True)``): ``n_features`` counts the constant, and ``W*``
        and ``W^mm`` have a last column, the intercept part.

    Returns
    -------
    report : SeparabilityReport
        Sizes, rank, supports, entropy, both conditions with their evidence
        (residual, margin), ``W*`` and ``W^mm``; ``print(report)`` shows a table.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import check_ntp_separability
    >>> X = np.eye(3)
    >>> Y = np.array([[0.5, 0.5, 0, 0], [0, 0.2, 0.8, 0], [0, 0, 0, 1.0]])
    >>> report = check_ntp_separability(X, Y)
    >>> report.is_compatible, report.is_separable, report.overparameterized
    (True, True, False)
    >>> print(report)  # doctest: +ELLIPSIS
    NTP separability report
      distinct contexts m     3
      tokens V                4
      features d              3 (rank of H: 3)
    ...
    """
    data = as_ntp_data(X, y, sample_weight)
    if fit_intercept:
        data = with_intercept_column(data)
    subspace, t_subspace = _timed(DataSubspace, data)
    (W_star, residual), t_star = _timed(subspace.log_odds_solution)
    start = time.perf_counter()
    try:
        W_mm = ntp_svm(data)
    except NotNTPSeparableError:
        W_mm = None
    t_mm = time.perf_counter() - start
    if W_mm is None:
        margin = np.nan
    else:
        norm = np.linalg.norm(W_mm)
        margin = 1.0 / norm if norm > 0 else np.inf
    rank = embedding_rank(np.asarray(data.embeddings, dtype=np.float64))[1]
    return SeparabilityReport(
        n_contexts=data.n_contexts,
        n_tokens=data.n_tokens,
        n_features=data.n_features,
        rank=rank,
        support_sizes=np.asarray(data.support_sizes),
        entropy=data.entropy,
        is_compatible=bool(subspace.is_exact(residual)),
        compatibility_residual=residual,
        is_separable=W_mm is not None,
        margin=float(margin),
        overparameterized=bool(data.n_features > data.n_contexts and rank == data.n_contexts),
        finite_component=W_star,
        max_margin_solution=W_mm,
        subspace_dim=subspace.dim,
        timings={"finite_component": t_subspace + t_star, "max_margin_solution": t_mm},
    )
