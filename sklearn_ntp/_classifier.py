"""NTPLinearClassifier: a linear softmax decoder fitted on next-token data."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._data import aggregate_contexts
from ._exceptions import NTPSeparabilityWarning
from ._loss import NTPLoss, log_softmax, softmax
from ._penalty import L2Penalty
from ._solvers import SOLVERS, Objective, SolverOptions
from ._tracking import HistoryTracker, implicit_bias_reference


def _check_target_kind(y):
    """Return ``y`` as an ndarray of labels (1-D) or probability rows (2-D).

    1-D labels go through scikit-learn's classification-target check; a
    single column is read as labels (with a ``DataConversionWarning``), since
    a probability matrix with one column would describe a single token.
    """
    if y is None:
        raise ValueError("NTPLinearClassifier requires y to be passed, but the "
                         "target y is None.")
    if sp.issparse(y):
        return y
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim == 1:
        check_classification_targets(y)
    return y


class NTPLinearClassifier(ClassifierMixin, BaseEstimator):
    r"""Linear next-token predictor trained on the NTP cross-entropy.

    Identical rows of ``X`` are merged into distinct contexts ``h_j`` with
    weights ``pi_j`` (summing to one) and next-token distributions ``p_j``;
    the decoder ``W`` of shape (n_tokens, n_features) minimizes

    .. math::

        \mathrm{CE}(W) + \frac{\alpha}{2}\|W\|_F^2, \qquad
        \mathrm{CE}(W) = -\sum_j \pi_j \sum_{z \in S_j} p_{j,z}
        \log \mathrm{softmax}_z(W h_j).

    With ``alpha=0`` (the default) this is the unregularized NTP loss of
    Thrampoulidis (NeurIPS 2024), whose infimum is the entropy
    ``H = -sum_j pi_j sum_z p_jz log p_jz`` and is not attained on
    NTP-separable data: the iterates diverge in norm, and the estimator
    tracks how they approach the paper's limit
    ``W* + ||P_perp(W_k)|| W^mm / ||W^mm||`` (Theorem 2).

    Parameters
    ----------
    solver : {"gd", "ngd", "adam", "lbfgs", "sgd", "accelerated"}, default="gd"
        Optimizer:

        - ``"gd"``: gradient descent ``W <- W - eta grad``;
        - ``"ngd"``: normalized gradient descent ``W <- W - eta grad / ||grad||_F``;
        - ``"adam"``: Adam with bias-corrected moments;
        - ``"lbfgs"``: ``scipy.optimize.minimize(method="L-BFGS-B")``; meant
          for ``alpha > 0`` (the ridge path of Theorem 1);
        - ``"sgd"``: stochastic gradient descent with step ``learning_rate``
          over ``batch_size`` samples drawn as ``sampling`` says;
        - ``"accelerated"``: damped Newton steps on the in-support loss and
          steps of size ``margin_step`` on the log of the off-support loss
          (see :ref:`accelerated`); reaches the implicit-bias limit in
          hundreds of iterations. Needs ``alpha=0``; ``tol`` bounds both the
          in-support gradient norm and the direction residual.

    learning_rate : float, default=0.5
        Step size ``eta`` of gd, ngd and adam (ignored by lbfgs). The paper's
        experiments use 0.5 for gd, 0.01 for ngd and 0.01 for adam, with
        standard Gaussian embeddings. A stable gd step scales like
        ``1 / max_j ||h_j||^2``: standardize ``X`` (or lower the step) when the
        embeddings are large; a run that diverges stops with a warning.
    max_iter : int, default=1000
        Maximum number of updates (L-BFGS-B iterations for lbfgs).
    tol : float, default=1e-4
        Stopping tolerance: with ``alpha=0`` the run stops once the excess
        loss ``CE - H <= tol``; with ``alpha > 0`` once the Frobenius norm of
        the objective's gradient is ``<= tol``.
    alpha : float, default=0.0
        Ridge strength. 0 gives the unregularized NTP loss.
    init : {"zeros", "lecun"} or array-like of shape (n_tokens, n_features), default="zeros"
        Initial decoder: zeros, LeCun-normal (i.i.d. ``N(0, 1/n_features)``
        entries, drawn with ``random_state``), or a given matrix.
    beta_1 : float, default=0.9
        Adam's first-moment decay.
    beta_2 : float, default=0.999
        Adam's second-moment decay (the paper uses 0.99).
    epsilon : float, default=1e-8
        Adam's denominator offset.
    batch_size : int, default=None
        Samples per ``sgd`` step (None: every context, i.e. gradient descent).
    sampling : {"contexts", "tokens"}, default="contexts"
        What ``sgd`` samples: distinct contexts with probability ``pi_j``,
        each with its full next-token distribution (``batch_size >=
        n_contexts`` is exactly gd), or raw (context, next token) pairs with
        probability ``pi_j p_jz`` and one-hot targets.
    step_schedule : {"constant", "inverse_sqrt"}, default="constant"
        ``sgd`` step at update ``k``: ``learning_rate`` or
        ``learning_rate / sqrt(k)``.
    margin_step : float, default=64.0
        Step of ``"accelerated"`` on ``log`` of the off-support loss, in units
        of ``1 / max_j ||h_j||^2`` (so it is invariant to the scale of ``X``).
    compute_implicit_bias : bool, default=True
        Compute the finite component ``W*`` and the max-margin direction
        ``W^mm / ||W^mm||`` once per fit and track the iterates against them
        in ``history_``. This costs a dense solve with the Gram matrix of the
        ``sum_j (S_j - 1)`` in-support pairs and a quadratic program with
        ``n_tokens * n_contexts`` variables: set False for large data.
    history_every : int, default=10
        Record ``history_`` every ``history_every`` iterations; the initial
        and the last iterates are always recorded.
    warm_start : bool, default=False
        Start from the previous ``coef_`` (instead of ``init``) when refitting.
    random_state : int, RandomState instance or None, default=None
        Seed of the ``"lecun"`` initialization and of ``sgd``'s sampling.
    verbose : int, default=0
        If positive, print progress lines (iteration, excess loss ``CE - H``,
        ``||W||`` and the alignment with ``W^mm``): about ten per fit with
        ``verbose=1``, one per iteration with ``verbose >= 2``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tokens, n_features)
        The fitted decoder ``W`` (one row per token, also when there are two
        tokens). float32 when ``X`` is float32.
    classes_ : ndarray of shape (n_tokens,)
        Token labels: the sorted labels of 1-D ``y``, ``arange(n_tokens)``
        for 2-D ``y``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
    n_iter_ : int
        Number of updates performed.
    loss_curve_ : ndarray of shape (`n_iter_` + 1,)
        Objective ``CE + (alpha/2)||W||^2`` (penalty included) at every
        iterate ``W_0, ..., W_{n_iter_}``; the last entry is the objective at
        ``coef_``.
    entropy_ : float
        The entropy lower bound ``H`` of the training data.
    finite_component_ : ndarray of shape (n_tokens, n_features) or None
        ``W*``: the solution in the data subspace ``F`` of the log-odds
        equations (least-squares, with an ``NTPSeparabilityWarning``, when the
        data are not NTP_H-compatible). None if ``compute_implicit_bias=False``.
    margin_direction_ : ndarray of shape (n_tokens, n_features) or None
        ``W^mm / ||W^mm||``, the unit NTP-SVM direction. None (with an
        ``NTPSeparabilityWarning``) when the data are not NTP-separable or every
        context supports every token, or if ``compute_implicit_bias=False``.
    history_ : dict of ndarray
        Snapshots every ``history_every`` iterations, as equal-length arrays:
        ``iteration``, ``loss`` (the cross-entropy ``CE`` without penalty),
        ``norm`` (``||W_k||_F``) and, with ``compute_implicit_bias=True``,
        ``alignment`` (``cos(W_k, W^mm)``), ``corrected_alignment``
        (``cos(W_k - W*, W^mm)``) and ``subspace_error``
        (``||P_F(W_k) - W*||_F``). Alignments are NaN when
        ``margin_direction_`` is None.
    converged_ : bool
        Whether the stopping criterion (see ``tol``) was met.
    stop_reason_ : str
        ``"tol"``, ``"max_iter"``, ``"diverged"`` or, for lbfgs,
        ``"stalled"`` (no decrease at machine precision) or ``"line search
        failed"``.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The same model on hard labels,
        with an intercept and without implicit-bias tracking.
    sklearn_ntp.implicit_bias.log_odds_solution : The finite component ``W*``.
    sklearn_ntp.implicit_bias.ntp_svm : The max-margin solution ``W^mm``.

    Notes
    -----
    Each solver owns its divergence rule and decides what it warns about
    (a :class:`~sklearn.exceptions.ConvergenceWarning`, with ``coef_`` the
    last accepted iterate when a run diverges): gd diverges when the
    objective increases (a stable step never increases it); ngd, adam and
    sgd, whose objective need not decrease, when it is non-finite or stays
    above 1.5 times ``max(1, f(W_0))`` for 50 consecutive iterations. A run
    that reaches ``max_iter`` is warned about when ``alpha > 0``, and lbfgs
    whenever it stops short of ``tol``. With ``alpha=0`` reaching
    ``max_iter`` is not warned about for the other solvers: the entropy bound
    is only reached asymptotically.

    Float32 input is fitted in float32 (``coef_`` float32): losses are then
    accurate to about ``1e-6`` relative, so ``tol`` should not be smaller.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp import NTPLinearClassifier
    >>> X = np.eye(3)
    >>> Y = np.array([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8], [1.0, 0.0, 0.0]])
    >>> clf = NTPLinearClassifier(learning_rate=5.0, max_iter=5000).fit(X, Y)
    >>> clf.predict_proba(X).round(2)
    array([[0.5, 0.5, 0. ],
           [0. , 0.2, 0.8],
           [1. , 0. , 0. ]])
    >>> clf.stop_reason_, clf.n_iter_  # excess loss CE - H reached tol
    ('tol', 3999)
    >>> float(clf.history_["alignment"][-1])  # cos(W_k, W^mm)
    0.993...
    >>> round(clf.score(X, Y), 4), round(clf.entropy_, 4)  # -CE and H
    (-0.3979, 0.3978)
    """

    _parameter_constraints: dict = {
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "init": [StrOptions({"zeros", "lecun"}), "array-like"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "sampling": [StrOptions({"contexts", "tokens"})],
        "step_schedule": [StrOptions({"constant", "inverse_sqrt"})],
        "margin_step": [Interval(Real, 0, None, closed="neither")],
        "compute_implicit_bias": ["boolean"],
        "history_every": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        solver="gd",
        learning_rate=0.5,
        max_iter=1000,
        tol=1e-4,
        alpha=0.0,
        init="zeros",
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        batch_size=None,
        sampling="contexts",
        step_schedule="constant",
        margin_step=64.0,
        compute_implicit_bias=True,
        history_every=10,
        warm_start=False,
        random_state=None,
        verbose=0,
    ):
        self.solver = solver
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.init = init
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.batch_size = batch_size
        self.sampling = sampling
        self.step_schedule = step_schedule
        self.margin_step = margin_step
        self.compute_implicit_bias = compute_implicit_bias
        self.history_every = history_every
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the decoder on contexts ``X`` and next-token targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Context embeddings; identical rows are merged into one context.
        y : array-like of shape (n_samples,) or (n_samples, n_tokens)
            Next-token labels, or soft targets: nonnegative rows summing to
            one (dense or scipy.sparse).
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative row weights (normalized to sum to one).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        data = aggregate_contexts(X, _check_target_kind(y), sample_weight)
        reference = self._implicit_bias_reference(data)
        tracker = HistoryTracker(
            data.entropy, every=self.history_every, reference=reference,
            verbose=self.verbose,
            print_every=1 if self.verbose >= 2 else max(1, self.max_iter // 10),
            total=self.max_iter,
        )
        options = SolverOptions(
            max_iter=self.max_iter, tol=self.tol, learning_rate=self.learning_rate,
            beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
            batch_size=self.batch_size, sampling=self.sampling,
            step_schedule=self.step_schedule, margin_step=self.margin_step,
            random_state=self.random_state,
        )
        objective = Objective(NTPLoss(data), L2Penalty(self.alpha))
        W0 = self._initial_coef(data.classes, data.n_features, X.dtype)
        result = SOLVERS[self.solver](objective, W0, options, tracker)
        if result.warning:  # each solver knows which outcomes deserve one
            warnings.warn(result.warning, ConvergenceWarning, stacklevel=3)

        self.classes_ = data.classes
        self.coef_ = result.coef
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.stop_reason_ = result.stop_reason
        self.loss_curve_ = tracker.loss_curve
        self.history_ = tracker.history
        self.entropy_ = data.entropy
        self.finite_component_ = getattr(reference, "finite_component", None)
        self.margin_direction_ = getattr(reference, "margin_direction", None)
        return self

    def _implicit_bias_reference(self, data):
        if not self.compute_implicit_bias:
            return None
        reference = implicit_bias_reference(data)
        for issue in reference.issues:
            warnings.warn(issue, NTPSeparabilityWarning, stacklevel=4)
        return reference

    def _initial_coef(self, classes, n_features, dtype):
        """``W_0`` as a new array of ``dtype``: warm start, zeros, LeCun or given."""
        shape = (len(classes), n_features)
        if self.warm_start and hasattr(self, "coef_"):
            if not np.array_equal(self.classes_, classes):
                raise ValueError("warm_start=True needs the tokens of the previous "
                                 f"fit {self.classes_[:5]}, got {classes[:5]}.")
            W, name = self.coef_, "coef_ (warm_start)"
        elif isinstance(self.init, str) and self.init == "zeros":
            return np.zeros(shape, dtype=dtype)
        elif isinstance(self.init, str):  # "lecun": variance 1 / fan-in
            rng = check_random_state(self.random_state)
            return (rng.standard_normal(shape) / np.sqrt(shape[1])).astype(dtype)
        else:
            W, name = check_array(self.init, input_name="init"), "init"
        if W.shape != shape:
            raise ValueError(f"{name} has shape {W.shape}, expected {shape} "
                             "(n_tokens, n_features).")
        return np.array(W, dtype=dtype)

    def _logits(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_.T

    def decision_function(self, X):
        """Logits ``X W^T``, one column per token (a single column for two tokens).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_tokens) or (n_samples,)
            Unnormalized log-probabilities. With two tokens, as for every
            scikit-learn binary classifier, the logit difference
            ``(w_1 - w_0)^T x`` of ``classes_[1]`` over ``classes_[0]`` (its
            sign gives the prediction); ``coef_`` keeps both rows.
        """
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X):
        """Next-token probabilities ``softmax(W h)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_tokens)
            Rows sum to one; columns follow ``classes_``.
        """
        return softmax(self._logits(X))

    def predict_log_proba(self, X):
        """Log-probabilities ``log softmax(W h)``, computed by log-sum-exp.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_tokens)
            Finite for every finite ``X``; columns follow ``classes_``.
        """
        return log_softmax(self._logits(X))

    def predict(self, X):
        """Most probable next token.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean log-likelihood ``-CE`` of next-token targets (higher is better).

        Unlike other classifiers' accuracy, this is the negated NTP
        cross-entropy; it is at most ``-H``, the negated entropy of ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Context embeddings.
        y : array-like of shape (n_samples,) or (n_samples, n_tokens)
            Labels from ``classes_``, or probability rows over ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights.

        Returns
        -------
        score : float
            ``sum_i w_i sum_z y_iz log q_z(x_i) / sum_i w_i``.

        Raises
        ------
        ValueError
            If ``y`` holds labels outside ``classes_`` or has a number of
            columns other than ``len(classes_)``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        data = aggregate_contexts(X, _check_target_kind(y), sample_weight,
                                  classes=self.classes_)
        return -NTPLoss(data).value(self.coef_)
