"""A pass-through transformer that checks the paper's two conditions at fit time."""

import warnings

import numpy as np
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._data._dask import any_dask, check_dask_X, is_dask_array
from ._data._ntp_data import check_precision
from ._exceptions import (
    NotNTPCompatibleError,
    NotNTPSeparableError,
    NTPSeparabilityWarning,
)
from ._geometry._report import check_ntp_separability


class NTPSeparabilityChecker(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Check NTP_H-compatibility and NTP-separability of the training data.

    At ``fit`` the distinct contexts of ``X`` and their next-token
    distributions are checked against the paper's two conditions (Definitions
    1 and 2), and the limit of gradient descent (finite part ``W~``,
    max-margin solution ``U~``, loss infimum ``L*``; ``W*``, ``W^mm`` and
    ``H`` in the paper's regime) is stored. ``transform`` returns ``X``
    unchanged, so the checker can sit in a :class:`~sklearn.pipeline.Pipeline`
    in front of a classifier and report, at every fit, whether gradient
    descent is in the paper's regime and where it goes otherwise.

    Parameters
    ----------
    on_failure : {"ignore", "warn", "raise"}, default="warn"
        What to do when the data fail a condition: nothing, issue an
        ``NTPSeparabilityWarning``, or raise a ``ValueError``
        (:class:`~sklearn_ntp.implicit_bias.NotNTPSeparableError` or
        :class:`~sklearn_ntp.implicit_bias.NotNTPCompatibleError`). The
        fitted attributes are set in every case.
    fit_intercept : bool, default=False
        Check the contexts augmented by a constant feature ``[h_j, 1]``, as
        seen by ``NTPLinearClassifier(fit_intercept=True)``; ``W*`` and
        ``W^mm`` then have ``n_features + 1`` columns, the last one the
        intercept part.

    Attributes
    ----------
    report_ : SeparabilityReport
        Everything :func:`~sklearn_ntp.implicit_bias.check_ntp_separability`
        found; ``print(checker.report_)`` shows a table.
    is_compatible_ : bool
        Whether the log-odds equations have an exact solution (Definition 1).
    is_separable_ : bool
        Whether the NTP-separability constraints are feasible (Definition 2).
    margin_ : float
        Max NTP margin ``1 / ||W^mm||`` of a unit-norm decoder; ``inf`` when
        every context has full support, ``nan`` when not separable.
    finite_component_ : ndarray of shape (n_tokens, n_features)
        ``W~`` (``W*`` when compatible and separable).
    max_margin_solution_ : ndarray of shape (n_tokens, n_features) or None
        ``U~`` (``W^mm`` when separable), or None when no pair is separable.
    loss_infimum_ : float
        ``L* = inf CE`` (nats).
    separable_pairs_ : ndarray of bool, shape (n_contexts, n_tokens)
        ``T``, the off-support pairs some tied direction separates, in the
        context order of :func:`~sklearn_ntp.implicit_bias.aggregate_contexts`.
    entropy_ : float
        Entropy lower bound ``H`` of the NTP loss (nats).
    n_contexts_ : int
        Number of distinct contexts ``m``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    See Also
    --------
    sklearn_ntp.implicit_bias.check_ntp_separability : The same check as a function.
    sklearn_ntp.metrics.ntp_margin : Margin of any decoder.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp import NTPSeparabilityChecker
    >>> X = np.eye(3)
    >>> Y = np.array([[0.5, 0.5, 0, 0], [0, 0.2, 0.8, 0], [0, 0, 0, 1.0]])
    >>> checker = NTPSeparabilityChecker().fit(X, Y)
    >>> checker.is_compatible_, checker.is_separable_, checker.n_contexts_
    (True, True, 3)
    >>> checker.transform(X) is X
    True
    """

    _parameter_constraints = {"on_failure": [StrOptions({"ignore", "warn", "raise"})],
                              "fit_intercept": ["boolean"]}

    def __init__(self, on_failure="warn", fit_intercept=False):
        self.on_failure = on_failure
        self.fit_intercept = fit_intercept

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Check both conditions on ``(X, y)`` and store the report.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Context embeddings; identical rows are one context.
        y : array-like of shape (n_samples,) or (n_samples, n_tokens)
            Next-token labels, or soft targets (nonnegative rows summing to
            one, dense or scipy.sparse).
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative row weights.

        Returns
        -------
        self : NTPSeparabilityChecker
            The fitted checker.

        Raises
        ------
        ValueError
            On invalid input, or when ``on_failure="raise"`` and a condition
            fails.
        """
        check_precision(X)
        if any_dask(X, y, sample_weight):  # merged on the workers, never computed whole
            self.n_features_in_ = check_dask_X(X).shape[1]
        else:
            X, y = validate_data(self, X, y, dtype=(np.float64, np.float32),
                                 multi_output=True, accept_sparse=("csr", "csc"))
        report = check_ntp_separability(X, y, sample_weight,
                                        fit_intercept=self.fit_intercept)
        self.report_ = report
        self.is_compatible_ = report.is_compatible
        self.is_separable_ = report.is_separable
        self.margin_ = report.margin
        self.finite_component_ = report.finite_component
        self.max_margin_solution_ = report.max_margin_solution
        self.entropy_ = report.entropy
        self.loss_infimum_ = report.loss_infimum
        self.separable_pairs_ = report.limit.separable_pairs
        self.n_contexts_ = report.n_contexts
        # After storing: a caller catching the error can still read report_.
        self._handle_failure(report)
        return self

    def _handle_failure(self, report):
        problems = []
        if not report.is_compatible:
            problems.append(
                "not NTP_H-compatible: no decoder reproduces every in-support "
                "log-odds ratio (largest residual of the least-squares W*: "
                f"{report.compatibility_residual:.3g})"
            )
        if not report.is_separable:
            problems.append(
                "not NTP-separable: no decoder gives every context equal logits on "
                "its support and larger ones there than on all other tokens (only "
                f"{report.n_separable_pairs} of {report.n_off_support_pairs} "
                "off-support pairs are separable)"
            )
        if not report.limit.certified:
            problems.append(f"the limit of gradient descent is {report.limit.status}")
        if not problems or self.on_failure == "ignore":
            return
        message = ("The training data are " + "; and ".join(problems)
                   + ". The checker's report_ attribute has the details.")
        if self.on_failure == "warn":
            # Levels: this method, fit, scikit-learn's fit wrapper, the caller.
            warnings.warn(message, NTPSeparabilityWarning, stacklevel=4)
        elif not report.is_separable:
            raise NotNTPSeparableError(message, certificate=report.limit.farkas_certificate)
        elif not report.is_compatible:
            raise NotNTPCompatibleError(message, residual=report.compatibility_residual)
        else:
            raise ValueError(message)

    def transform(self, X):
        """Return ``X`` unchanged, after checking it matches the fitted data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The validated input (float64, or float32 kept as is).
        """
        check_is_fitted(self)
        check_precision(X)
        if is_dask_array(X):  # checked lazily: only its width and chunks are known
            if check_dask_X(X).shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} "
                                 f"is expecting {self.n_features_in_} features as input.")
            return X
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32),
                             accept_sparse=("csr", "csc"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
