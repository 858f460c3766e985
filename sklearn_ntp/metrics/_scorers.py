"""Ready-made scorers: negated NTP metrics of ``estimator.predict_proba(X)``.

They are small callables rather than :func:`sklearn.metrics.make_scorer`
objects because the metrics need ``X`` (to merge rows of one context) and
every column of ``predict_proba`` (``make_scorer`` hands a binary classifier's
scorer only the positive column).
"""

import copy

from sklearn.utils.metadata_routing import MetadataRequest

from ._ntp_metrics import excess_ntp_loss, ntp_cross_entropy, out_of_support_mass


class _NTPScorer:
    """Scorer ``scorer(estimator, X, y, sample_weight=None)``; greater is better.

    Returns ``-metric(y, estimator.predict_proba(X), labels=estimator.classes_)``,
    with ``X=X`` as well when the metric merges contexts. Usable as ``scoring``
    in :class:`~sklearn.model_selection.GridSearchCV` and
    :func:`~sklearn.model_selection.cross_val_score`; with metadata routing
    enabled, :meth:`set_score_request` routes ``sample_weight`` to it.

    Parameters
    ----------
    metric : callable
        One of the prediction metrics of :mod:`sklearn_ntp.metrics` (lower is
        better).
    merges_contexts : bool
        Whether ``metric`` takes ``X`` to merge identical rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_ntp.metrics import neg_excess_ntp_loss_scorer
    >>> X = np.array([[0.0], [0.0], [1.0], [1.0]])
    >>> y = [0, 1, 1, 1]
    >>> clf = LogisticRegression().fit(X, y)
    >>> neg_excess_ntp_loss_scorer
    neg_excess_ntp_loss_scorer
    >>> score = neg_excess_ntp_loss_scorer(clf, X, y)
    >>> bool(score <= 0)
    True
    """

    def __init__(self, metric, *, merges_contexts):
        self._metric = metric
        self._merges_contexts = merges_contexts
        self._sample_weight_request = None

    def __call__(self, estimator, X, y, sample_weight=None):
        context = {"X": X} if self._merges_contexts else {}
        loss = self._metric(y, estimator.predict_proba(X), sample_weight=sample_weight,
                            labels=estimator.classes_, **context)
        return -loss

    def __repr__(self):
        return f"neg_{self._metric.__name__}_scorer"

    def set_score_request(self, *, sample_weight=None):
        """Return a copy of this scorer that requests ``sample_weight``.

        Only consulted when metadata routing is enabled
        (``sklearn.set_config(enable_metadata_routing=True)``). A copy is
        returned so that the module-level scorers are never modified.

        Parameters
        ----------
        sample_weight : bool, str or None, default=None
            ``True`` to receive ``sample_weight``, ``False`` to refuse it,
            ``None`` to raise if it is passed, or an alias name.

        Returns
        -------
        scorer : _NTPScorer
            The new scorer.
        """
        scorer = copy.copy(self)
        scorer._sample_weight_request = sample_weight
        return scorer

    def get_metadata_routing(self):
        """Metadata request of the scorer (its ``score`` method takes ``sample_weight``).

        Returns
        -------
        request : sklearn.utils.metadata_routing.MetadataRequest
        """
        request = MetadataRequest(owner=repr(self))
        request.score.add_request(param="sample_weight", alias=self._sample_weight_request)
        return request


#: ``-ntp_cross_entropy(y, estimator.predict_proba(X))``.
neg_ntp_cross_entropy_scorer = _NTPScorer(ntp_cross_entropy, merges_contexts=False)
#: ``-excess_ntp_loss(y, estimator.predict_proba(X), X=X)``.
neg_excess_ntp_loss_scorer = _NTPScorer(excess_ntp_loss, merges_contexts=True)
#: ``-out_of_support_mass(y, estimator.predict_proba(X), X=X)``.
neg_out_of_support_mass_scorer = _NTPScorer(out_of_support_mass, merges_contexts=True)
