"""Both conditions of the paper, checked together: :func:`check_ntp_separability`."""

from dataclasses import dataclass, field

import numpy as np

from .._data._dask import as_gathered_ntp_data
from .._data._ntp_data import with_intercept_column
from ._limit import ImplicitBiasLimit, implicit_bias_limit


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
        Whether (6a)-(6b) are feasible (Definition 2): every off-support pair
        is separable.
    margin : float
        Max NTP margin ``1 / ||U~||`` on the separable pairs (``1 / ||W^mm||``
        when separable); ``inf`` when every context has full support (no
        inequality), ``nan`` when no pair is separable.
    overparameterized : bool
        ``d > m`` and ``rank(H) = m``: the sufficient condition of Lemma 1.
    finite_component : ndarray of shape (n_tokens, n_features)
        ``W~``, the finite part of the limit of gradient descent (``W*`` when
        compatible and separable; on incompatible data the minimizer over
        ``F`` of the in-support cross-entropy, not a least-squares solution).
    max_margin_solution : ndarray of shape (n_tokens, n_features) or None
        ``U~``, the max-margin solution on the separable pairs: ``W^mm`` when
        ``is_separable``, the NTP-SVM of the effective supports otherwise;
        None when no pair is separable.
    loss_infimum : float
        ``L* = inf_W CE(W)`` (nats): ``H`` exactly when compatible and separable.
    n_separable_pairs : int
        Size of ``T``, the off-support pairs some tied direction separates.
    n_off_support_pairs : int
        Size of ``O``, all off-support pairs (``T = O`` iff separable).
    effective_support_sizes : ndarray of shape (n_contexts,)
        ``|S~_j|``: supports plus their off-support tokens outside ``T``.
    limit : ImplicitBiasLimit
        The computation behind the report, with its certificates.
    subspace_dim : int
        Dimension of the data subspace ``F``.
    timings : dict
        Seconds spent on ``T`` (``"separable_pairs"``), ``W~``
        (``"finite_component"``) and ``U~`` (``"max_margin_solution"``).

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
    loss_infimum: float = float("nan")
    n_separable_pairs: int = 0
    n_off_support_pairs: int = 0
    effective_support_sizes: np.ndarray = field(default=None, repr=False)
    limit: ImplicitBiasLimit = field(default=None, repr=False)

    def __str__(self):
        size_text = _sizes_text(self.support_sizes, self.n_tokens)
        if not self.is_separable:
            separable = (f"no: {self.n_separable_pairs} of {self.n_off_support_pairs} "
                         "off-support pairs separable")
        elif np.isinf(self.margin):
            separable = "trivially: every context has full support (no inequality, no margin)"
        elif np.isnan(self.margin):
            separable = "yes, but W^mm could not be certified (see certificates)"
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
            ("loss infimum L*", f"{self.loss_infimum:.6g} nats (L* - H = "
                                f"{self.loss_infimum - self.entropy:.3g})"),
            ("effective supports |S~_j|", _sizes_text(self.effective_support_sizes,
                                                      self.n_tokens)),
            ("||W~|| (finite part)", f"{np.linalg.norm(self.finite_component):.6g}"),
        ]
        if self.max_margin_solution is not None:
            rows.append(("||U~|| (max margin)",
                         f"{np.linalg.norm(self.max_margin_solution):.6g}"))
        if self.limit is not None and not self.limit.certified:
            rows.append(("certificates", self.limit.status))
        width = max(len(name) for name, _ in rows)
        lines = ["NTP separability report"]
        lines += [f"  {name:<{width}}  {value}" for name, value in rows]
        return "\n".join(lines)


def _sizes_text(sizes, n_tokens):
    """Summary of support sizes: common value or min / median / max."""
    text = (f"{sizes[0]} for every context" if np.all(sizes == sizes[0])
            else f"min {sizes.min()}, median {np.median(sizes):g}, max {sizes.max()}")
    full = int(np.sum(sizes == n_tokens))
    return text + (f" ({full} with full support)" if full else "")


def check_ntp_separability(X, y=None, sample_weight=None, *, fit_intercept=False,
                           method="auto", svm_method="auto"):
    """Check NTP_H-compatibility and NTP-separability, and compute the limit of GD.

    The limit comes from :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`
    (one computation, kept in ``report.limit``): the finite part ``W~``, the
    max-margin solution ``U~`` on the separable pairs and the loss infimum
    ``L*``, which are ``W*``, ``W^mm`` and ``H`` when both conditions hold.

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
        fit_intercept=True)``): ``n_features`` counts the constant, and ``W~``
        and ``U~`` have a last column, the intercept part.
    method : {"auto", "lp"}, default="auto"
        How the separable pairs ``T`` are found (the size rule of
        :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`, or always the LP).
    svm_method : {"auto", "interior-point", "dual-cd", "cvxpy", "active-set", \
"working-set"}, default="auto"
        Solver of the NTP-SVM (see :func:`~sklearn_ntp.implicit_bias.ntp_svm`).

    Returns
    -------
    report : SeparabilityReport
        Sizes, rank, supports, entropy, both conditions with their evidence
        (residual, margin, separable pairs), ``W~``, ``U~`` and ``L*``;
        ``print(report)`` shows a table.

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
    data = as_gathered_ntp_data(X, y, sample_weight)
    if fit_intercept:
        data = with_intercept_column(data)
    limit = implicit_bias_limit(data, method=method, svm_method=svm_method)
    data = limit.data
    off = ~data.support_mask
    if limit.margin is not None:
        margin = limit.margin
    else:  # no separable pair: no inequality at all, or none can hold
        margin = np.nan if off.any() else np.inf
    return SeparabilityReport(
        n_contexts=data.n_contexts,
        n_tokens=data.n_tokens,
        n_features=data.n_features,
        rank=limit.rank,
        support_sizes=np.asarray(data.support_sizes),
        entropy=data.entropy,
        is_compatible=limit.is_compatible,
        compatibility_residual=limit.compatibility_residual,
        is_separable=limit.is_separable,
        margin=float(margin),
        overparameterized=bool(data.n_features > data.n_contexts
                               and limit.rank == data.n_contexts),
        finite_component=limit.finite_component,
        max_margin_solution=limit.max_margin_solution,
        subspace_dim=limit.subspace_dim,
        timings=limit.timings,
        loss_infimum=limit.loss_infimum,
        n_separable_pairs=int(limit.separable_pairs.sum()),
        n_off_support_pairs=int(off.sum()),
        effective_support_sizes=limit.effective_support.sum(axis=1),
        limit=limit,
    )
