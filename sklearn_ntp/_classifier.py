"""NTPLinearClassifier: a linear softmax decoder fitted on next-token data."""

import warnings
from contextlib import nullcontext
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state, gen_batches
from sklearn.utils._array_api import (
    _is_numpy_namespace,
    _max_precision_float_dtype,
    check_same_namespace,
    get_namespace_and_device,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._data._dask import aggregate_dask_contexts, any_dask, check_dask_X, is_dask_array
from ._data._ntp_data import aggregate_contexts, check_precision, with_intercept_column
from ._data._scaling import column_scale_exponents
from ._exceptions import NTPSeparabilityWarning
from ._loss._cross_entropy import NTPLoss, log_softmax, rows_per_block, softmax
from ._loss._dask import DaskNTPLoss
from ._loss._penalty import L2Penalty
from ._solvers._descent import SOLVERS, Objective, SolverOptions
from ._solvers._step_size import auto_learning_rate, context_smoothness, smoothness_constant
from ._solvers._tracking import HistoryTracker, implicit_bias_reference, same_contexts
from ._utils._array_api import from_host, namespace, newton_device, to_host

#: Solvers whose step is ``learning_rate`` (lbfgs and accelerated have none).
STEP_SOLVERS = ("gd", "ngd", "adam", "sgd")


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
    Thrampoulidis (NeurIPS 2024). Its infimum ``L*`` is at least the entropy
    ``H = -sum_j pi_j sum_z p_jz log p_jz``, with equality exactly when the
    data are NTP_H-compatible and NTP-separable; it is not attained when some
    off-support pair is separable. Gradient descent then diverges in norm, and
    the estimator tracks how the iterates approach the limit
    ``W~ + ||P_perp(W_k)|| U~ / ||U~||`` of
    :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit` (the paper's
    ``W* + ||P_perp(W_k)|| W^mm / ||W^mm||`` of Theorem 2 when both conditions
    hold).

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

    learning_rate : "auto" or float, default="auto"
        Step size ``eta`` of gd, ngd, adam and sgd (ignored by lbfgs and
        accelerated). A number is used as given, on the given features: gd
        is then the paper's gradient descent (its settings are 0.5 (gd),
        0.01 (ngd) and 0.01 (adam) on standard Gaussian embeddings, where
        ``1 / L ~ 0.5``). ``"auto"`` first divides every column of the
        contexts (the constant one too when ``fit_intercept=True``) by a
        power of two, ``feature_scale_``: columns whose scale
        ``sqrt(sum_j pi_j h_jk^2 + 2 alpha)`` is within a factor 2 of the
        median one keep a common scale, the others are brought to it (a
        diagonal preconditioner, exact both ways); on embeddings with
        columns of comparable scales (e.g. Gaussian ones) nothing changes,
        on raw tabular data gd then converges as on standardized features.
        It then derives the step from the smoothness constant of the
        rescaled objective, ``L = lambda_max(sum_j pi_j h_j h_j^T) / 2 +
        alpha`` (the softmax covariance has norm at most 1/2): ``1 / L`` for
        gd, the step with the largest guaranteed decrease (every step below
        ``2 / L`` decreases the objective); ``0.1 / sqrt(L)`` for ngd and
        ``0.02 / sqrt(L)`` for adam, whose steps move ``W`` by about ``eta``;
        for sgd with ``b`` draws per step, ``1 / ((1 - 1/b) L + L_max / b)``
        with ``L_max = max_j ||h_j||^2 / 2 + alpha`` the smoothness of a
        single context's loss, i.e. ``1 / L_max`` for ``b = 1`` (see the
        user guide). ``L`` is computed exactly (an eigenvalue of the smaller
        Gram matrix of ``H``) up to 1000 features or contexts, by Lanczos
        above. A run that diverges stops with a warning.
    max_iter : int, default=1000
        Maximum number of updates (L-BFGS-B iterations for lbfgs).
    tol : float, default=1e-4
        Stopping tolerance: with ``alpha=0`` the run stops once the excess
        loss ``CE - L* <= tol`` (``L* = loss_infimum_``; ``H`` when
        ``compute_implicit_bias=False``); with ``alpha > 0`` once the
        Frobenius norm of the objective's gradient is ``<= tol`` (also for
        lbfgs, whose own tests are switched off).
    alpha : float, default=0.0
        Ridge strength. 0 gives the unregularized NTP loss.
    fit_intercept : bool, default=False
        Fit a bias ``b_z`` per token, i.e. the decoder ``[W, b]`` of the
        embeddings augmented by a constant feature ``[h_j, 1]``; the whole
        theory (``W*``, ``W^mm``, the step size) applies to these augmented
        embeddings, and ``alpha`` penalizes the intercept too. The default
        is the paper's model (and a language model's output layer), in
        which ``W*`` and ``W^mm`` have the shape of ``coef_``; set True on
        tabular data, as with :class:`~sklearn.linear_model.LogisticRegression`.
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
        Compute the limit of gradient descent (finite part ``W~``, direction
        ``U~ / ||U~||`` and loss infimum ``L*``, see
        :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`) once per fit
        and track the iterates against it in ``history_``. This costs a dense
        solve with the Gram matrix of the ``sum_j (|S~_j| - 1)`` effective
        in-support pairs, an LP when ``H`` is rank deficient, and a quadratic
        program with ``n_tokens * n_contexts`` variables: set False for large
        data.
    history_every : int, default=10
        Record ``history_`` every ``history_every`` iterations; the initial
        and the last iterates are always recorded. On a GPU (Array API
        dispatch) this is also the period of the stopping test.
    warm_start : bool, default=False
        Start from the previous ``coef_`` (instead of ``init``) when refitting.
    random_state : int, RandomState instance or None, default=None
        Seed of the ``"lecun"`` initialization and of ``sgd``'s sampling.
    verbose : int, default=0
        If positive, print progress lines (iteration, excess loss ``CE - L*``,
        ``||W||`` and the alignment with ``U~``): about ten per fit with
        ``verbose=1``, one per iteration with ``verbose >= 2``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tokens, n_features)
        The fitted decoder ``W`` (one row per token, also when there are two
        tokens). float32 when ``X`` is float32.
    intercept_ : ndarray of shape (n_tokens,)
        The fitted biases ``b``; zeros when ``fit_intercept=False``.
    learning_rate_ : float or None
        The step: ``learning_rate`` when given, or the value ``"auto"``
        derived for the rescaled contexts ``X / feature_scale_``; None for
        lbfgs.
    feature_scale_ : ndarray of shape (n_features,) or (n_features + 1,)
        The powers of two by which the solver divided the columns of the
        contexts (the last entry is the intercept's constant column when
        ``fit_intercept=True``); ``coef_`` and ``intercept_`` are mapped back
        exactly. All ones unless columns of different scales are rescaled
        (by ``learning_rate="auto"``, or for lbfgs), or the largest column's
        scale is beyond ``2**64`` or below ``2**-64``, where one power of two
        for all columns keeps the numbers in range and changes nothing else.
    classes_ : ndarray of shape (n_tokens,)
        Token labels: the sorted labels of 1-D ``y``, ``arange(n_tokens)``
        for 2-D ``y`` (the column names of a DataFrame).
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
    loss_infimum_ : float or None
        ``L* = inf CE`` of the training data (``H`` when compatible and
        separable). None if ``compute_implicit_bias=False``.
    finite_component_ : ndarray of shape (n_tokens, n_features) or None
        ``W~``, the finite part of the limit: ``W*`` when the data are
        NTP_H-compatible and NTP-separable, in general the minimizer over
        ``G`` of the cross-entropy restricted to the effective supports.
        None if ``compute_implicit_bias=False``.
    margin_direction_ : ndarray of shape (n_tokens, n_features) or None
        ``U~ / ||U~||``, the unit max-margin direction on the separable
        pairs (``W^mm / ||W^mm||`` when separable). None when no off-support
        pair is separable (gradient descent then converges to a finite
        minimizer), or if ``compute_implicit_bias=False``. An
        ``NTPSeparabilityWarning`` is issued only when a part of the limit
        cannot be certified.
    history_ : dict of ndarray
        Snapshots every ``history_every`` iterations, as equal-length arrays:
        ``iteration``, ``loss`` (the cross-entropy ``CE`` without penalty),
        ``norm`` (``||W_k||_F``) and, with ``compute_implicit_bias=True``,
        ``alignment`` (``cos(W_k, U~)``), ``corrected_alignment``
        (``cos(W_k - W~, U~)``) and ``subspace_error``
        (``||P_G(W_k) - W~||_F``, measured on the rescaled problem of
        ``X / feature_scale_`` when ``feature_scale_`` is not uniform).
        Alignments are NaN when ``margin_direction_`` is None.
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
    sklearn_ntp.implicit_bias.implicit_bias_limit : The limit ``(W~, U~, L*)``.
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
    ``max_iter`` is not warned about for the other solvers: the loss infimum
    is in general only reached asymptotically.

    The solver runs on the contexts divided column-wise by
    ``feature_scale_``, which gives the same logits with the decoder
    ``coef_ * feature_scale_``, and the implicit-bias attributes describe
    that run. When ``feature_scale_`` is uniform (a number as
    ``learning_rate``, the solver accelerated, or ``"auto"`` on columns of
    comparable scales) gradient descent makes the same iterates as on ``X``
    itself and the limit is
    :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit` of ``X``. When it
    is not (``"auto"`` on columns of different scales, e.g. raw tabular
    data), gradient descent is preconditioned, and its limit is that of
    ``X / feature_scale_``, mapped back: ``finite_component_`` and
    ``margin_direction_`` then differ from the limit of plain gradient
    descent on ``X``, which a number as ``learning_rate`` gives.

    With ``fit_intercept=True`` the implicit-bias attributes describe the
    decoder ``[W, b]`` of the augmented embeddings ``[h_j, 1]``:
    ``finite_component_`` and ``margin_direction_`` have shape
    (n_tokens, n_features + 1), their last column being the intercept part,
    to be compared with ``np.c_[coef_, intercept_]``; the norms and
    alignments of ``history_`` are those of ``[W_k, b_k]``.

    Sparse ``X`` (CSR or CSC) is aggregated without densifying it; the
    distinct contexts are then stored densely, like ``coef_``.

    Float32 input is fitted in float32 (``coef_`` float32): losses are then
    accurate to about ``1e-6`` relative, so ``tol`` should not be smaller.

    With ``sklearn.set_config(array_api_dispatch=True)`` (and the environment
    variable ``SCIPY_ARRAY_API=1``), ``X`` may be a PyTorch, CuPy or other
    Array API array: every solver then evaluates the loss in its namespace
    and on its device (lbfgs keeps scipy's iterate on the host), the limit's
    Newton solves run their Hessian products there, and ``coef_``,
    ``loss_curve_``, ``finite_component_`` and ``margin_direction_`` are
    arrays of that namespace. Merging identical contexts, the rest of the
    exact geometry and ``score`` run on the host in NumPy, once per call. Off host memory (e.g.
    on a GPU) the stopping and divergence tests read the device only every
    ``history_every`` iterations. See the user guide's "Scaling out" section.

    ``X`` may be a dask array chunked by rows (``y`` and ``sample_weight``
    dask or in-memory arrays): identical rows are then merged across chunks
    on the workers, each iteration's loss and gradient are sums of partial
    results computed where the chunks are, and ``predict*`` and
    ``decision_function`` return lazy dask arrays. gd, ngd, adam and lbfgs
    run entirely on these reductions; sgd, accelerated and
    ``compute_implicit_bias=True`` gather the distinct contexts to the client
    once. See "Scaling out: dask arrays over a cluster" in the documentation.

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
    >>> clf.stop_reason_, clf.n_iter_  # excess loss CE - L* reached tol
    ('tol', 3999)
    >>> float(clf.history_["alignment"][-1])  # cos(W_k, U~), here U~ = W^mm
    0.993...
    >>> round(clf.score(X, Y), 4), round(clf.entropy_, 4)  # -CE and H
    (-0.3979, 0.3978)
    """

    _parameter_constraints: dict = {
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
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
        learning_rate="auto",
        max_iter=1000,
        tol=1e-4,
        alpha=0.0,
        fit_intercept=False,
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
        self.fit_intercept = fit_intercept
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.input_tags.sparse = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, implicit_bias_limit=None):
        """Fit the decoder on contexts ``X`` and next-token targets ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Context embeddings; identical rows are merged into one context.
        y : array-like of shape (n_samples,) or (n_samples, n_tokens)
            Next-token labels, or soft targets: nonnegative rows summing to
            one (dense, scipy.sparse, or a pandas DataFrame whose column
            names become ``classes_``).
        sample_weight : array-like of shape (n_samples,), default=None
            Nonnegative row weights; only their ratios matter (they are normalized
            to sum to one, so uniform weights of any size are weights of one).
        implicit_bias_limit : ImplicitBiasLimit, default=None
            The :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit` of the
            same ``X``, ``y`` and ``sample_weight`` when already computed (e.g.
            ``check_ntp_separability(X, y).limit``): with
            ``compute_implicit_bias=True`` it is the reference of the fit
            instead of a new one, provided the solver runs on these very
            contexts (no intercept column, no rescaling of the features);
            otherwise the limit of the solver's contexts is computed.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        ValueError
            If ``implicit_bias_limit`` was computed on other distinct contexts,
            weights or tokens than those of ``X``, ``y`` and ``sample_weight``.
        """
        contexts = _CONTEXTS[any_dask(X, y, sample_weight)]
        X, given, xp, device = contexts.validated(self, X, y, sample_weight)
        if implicit_bias_limit is not None and not same_contexts(
                implicit_bias_limit.data, contexts.in_one_process(given)):
            raise ValueError("implicit_bias_limit was computed on other contexts, weights "
                             "or tokens than X, y and sample_weight.")
        data = contexts.with_intercept(given) if self.fit_intercept else given
        # The solver, its step and the geometry work on the contexts divided
        # column-wise by powers of two; coef_ is mapped back exactly.
        scaling = self._scaling(contexts, data)
        data = contexts.rescaled(data, scaling)
        penalty = L2Penalty(self.alpha, scaling.exponents)
        self.learning_rate_ = self._learning_rate(contexts, data, penalty)
        # The limit's Newton solves run on X's device (certificates on the host).
        with nullcontext() if _is_numpy_namespace(xp) else newton_device(xp, device):
            reference = self._implicit_bias_reference(
                contexts, data, implicit_bias_limit if data is given else None)
        infimum = None if reference is None else reference.loss_infimum
        tracker = HistoryTracker(
            data.entropy, every=self.history_every, reference=reference,
            verbose=self.verbose,
            print_every=1 if self.verbose >= 2 else max(1, self.max_iter // 10),
            total=self.max_iter, scaling=None if scaling.identity else scaling,
        )
        objective = Objective(contexts.datafit(data, xp, device), penalty, infimum,
                              None if scaling.identity else scaling)
        W0 = scaling.to_scaled(
            self._initial_coef(data.classes, data.n_features, contexts.dtype(data)))
        W0 = W0 if device is None else xp.asarray(W0, device=device)
        result = SOLVERS[self.solver](objective, W0, self._options(scaling), tracker)
        if result.warning:  # each solver knows which outcomes deserve one
            warnings.warn(result.warning, ConvergenceWarning, stacklevel=3)

        X_xp, _, X_device = get_namespace_and_device(X)
        self.classes_ = np.array(data.classes)  # writeable, unlike NTPData's
        self.coef_, self.intercept_ = self._split_coef(X_xp.asarray(
            _unscaled(scaling, result.coef), device=X_device))
        self.feature_scale_ = scaling.scale
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.stop_reason_ = result.stop_reason
        self.loss_curve_ = tracker.loss_curve
        if not isinstance(X, np.ndarray):  # float64 like NumPy's, where the device has it
            self.loss_curve_ = X_xp.asarray(
                self.loss_curve_, dtype=_max_precision_float_dtype(X_xp, X_device),
                device=X_device)
        self.history_ = tracker.history
        self.entropy_ = data.entropy
        self.loss_infimum_ = infimum
        self.finite_component_, self.margin_direction_ = None, None
        if reference is not None:
            self.finite_component_ = _unscaled(scaling, reference.finite_component)
            self.margin_direction_ = scaling.direction(reference.margin_direction)
        if not isinstance(X, np.ndarray):  # the limits join the fitted arrays on X's device
            self.finite_component_, self.margin_direction_, self.feature_scale_ = (
                None if A is None else from_host(
                    A, X_xp, X_device, _max_precision_float_dtype(X_xp, X_device))
                for A in (self.finite_component_, self.margin_direction_,
                          self.feature_scale_))
        return self

    def _scaling(self, contexts, data):
        """The powers of two by which the solver divides the contexts' columns.

        Per column for the step-size solvers with ``learning_rate="auto"``
        (one step then fits every column) and for lbfgs (which seeks the
        minimizer, whatever the coordinates); otherwise uniform, which
        changes nothing but the range of the numbers (see
        :mod:`sklearn_ntp._data._scaling`).
        """
        per_column = self.solver == "lbfgs" or (
            self.learning_rate == "auto" and self.solver in STEP_SOLVERS)
        return contexts.scaling(data, self.alpha, per_column)

    def _options(self, scaling):
        """The solver's options, with a given step and epsilon mapped to rescaled contexts."""
        step, epsilon = self.learning_rate_ or 1.0, self.epsilon  # lbfgs has no step
        given = self.learning_rate != "auto"
        if given:  # W' = W 2^base: gd moves W' by 4^base times as much, ngd and adam 2^base
            power = 2 if self.solver in ("gd", "sgd") else 1
            with np.errstate(over="ignore", under="ignore"):
                step = float(np.ldexp(step, power * scaling.base))
                epsilon = float(np.ldexp(epsilon, -scaling.base))
        return SolverOptions(
            max_iter=self.max_iter, tol=self.tol, learning_rate=step,
            auto_step=not given, given_learning_rate=self.learning_rate_ if given else None,
            beta_1=self.beta_1, beta_2=self.beta_2, epsilon=epsilon,
            batch_size=self.batch_size, sampling=self.sampling,
            step_schedule=self.step_schedule, margin_step=self.margin_step,
            random_state=self.random_state,
        )

    def _split_coef(self, W):
        """``(coef_, intercept_)`` from a decoder of the (augmented) embeddings."""
        xp, on_host = namespace(W)
        if on_host:
            if not self.fit_intercept:
                return W, np.zeros(W.shape[0], dtype=W.dtype)
            return np.ascontiguousarray(W[:, :-1]), W[:, -1].copy()
        if not self.fit_intercept:
            return W, xp.zeros(W.shape[0], dtype=W.dtype, device=W.device)
        return xp.asarray(W[:, :-1], copy=True), xp.asarray(W[:, -1], copy=True)

    def _full_coef(self):
        """The fitted decoder of the (augmented) embeddings, ``[coef_, intercept_]``."""
        if not self.fit_intercept:
            return self.coef_
        xp, _ = namespace(self.coef_)
        return xp.concat([self.coef_, xp.reshape(self.intercept_, (-1, 1))], axis=1)

    def _learning_rate(self, contexts, data, penalty):
        """The step: ``learning_rate``, or derived from the (rescaled) contexts' smoothness."""
        if self.solver == "lbfgs":
            return None
        if self.learning_rate != "auto":
            return float(self.learning_rate)
        alpha = penalty.largest_strength
        L = contexts.smoothness(data, alpha)
        if self.solver != "sgd":
            return auto_learning_rate(self.solver, L)
        return auto_learning_rate("sgd", L, context_smoothness(data, alpha),
                                  self._draws_per_step(data.n_contexts))

    def _draws_per_step(self, n_contexts):
        """Independent draws per sgd step, or None when the step is gradient descent."""
        if self.sampling == "contexts" and (self.batch_size or n_contexts) >= n_contexts:
            return None
        return self.batch_size or n_contexts

    def _implicit_bias_reference(self, contexts, data, limit):
        # Dask contexts are gathered to the client only for the reference limit.
        if not self.compute_implicit_bias:
            return None
        reference = implicit_bias_reference(contexts.in_one_process(data), limit)
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
            W, name = to_host(self._full_coef()), "coef_ (warm_start)"
        elif isinstance(self.init, str) and self.init == "zeros":
            return np.zeros(shape, dtype=dtype)
        elif isinstance(self.init, str):  # "lecun": variance 1 / fan-in
            rng = check_random_state(self.random_state)
            return (rng.standard_normal(shape) / np.sqrt(shape[1])).astype(dtype)
        else:
            W, name = check_array(self.init, input_name="init"), "init"
            if self.fit_intercept and W.shape == (shape[0], shape[1] - 1):
                W = np.c_[W, np.zeros(shape[0])]  # intercepts start at zero
        if W.shape != shape:
            raise ValueError(f"{name} has shape {W.shape}, expected {shape} "
                             "(n_tokens, n_features"
                             f"{' + 1 with the intercept' if self.fit_intercept else ''}).")
        return np.array(W, dtype=dtype)

    def _validate_X(self, X, method):
        check_is_fitted(self)
        check_same_namespace(X, self, attribute="coef_", method=method)
        return _validated_embeddings(self, X, reset=False)

    def _checked_logits(self, X):
        """``X W^T (+ intercepts)``, refused where it overflows."""
        with np.errstate(over="ignore", invalid="ignore"):  # reported just below
            logits = X @ self.coef_.T
            if self.fit_intercept:
                logits = logits + self.intercept_
        xp, _ = namespace(logits)
        if not bool(xp.all(xp.isfinite(logits))):  # coef_ is finite: X is too large
            raise ValueError(f"X has entries up to {float(abs(X).max()):.3g}: its logits "
                             f"X @ coef_.T overflow {logits.dtype}; rescale X.")
        return logits

    def _row_blocks(self, X, method, transform):
        """``transform`` of the logits of ``X``, computed in row blocks.

        The blocks' working arrays (the logits and ``transform``'s temporaries:
        four of shape (rows, n_tokens) at the peak of ``predict_proba``, as
        measured by tracemalloc) fit in scikit-learn's ``working_memory``; only
        the output (one row per sample) is whole.
        """
        if is_dask_array(X):
            return self._dask_row_blocks(X, method, transform)
        X = self._validate_X(X, method)
        xp, _, X_device = get_namespace_and_device(X)
        n_samples, n_tokens = X.shape[0], self.coef_.shape[0]
        size = rows_per_block(4 * n_tokens * xp.finfo(X.dtype).bits // 8)
        if size >= n_samples:
            return transform(self._checked_logits(X))
        out = None
        for rows in gen_batches(n_samples, size):
            block = transform(self._checked_logits(X[rows, ...]))
            if out is None:  # the output's row shape and dtype are the transform's
                out = xp.empty((n_samples, *block.shape[1:]), dtype=block.dtype,
                               device=X_device)
            out[rows, ...] = block
        return out

    def _dask_row_blocks(self, X, method, transform):
        """``transform`` of the logits of a dask ``X``: a lazy dask array, chunk by chunk
        (each chunk in row blocks on its worker; the estimator is sent once)."""
        import dask  # only reached with dask input

        check_is_fitted(self)
        _check_dask_width(self, X)
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        # The transform's row shape and dtype, from one row of zero logits.
        probe = transform(np.zeros((1, len(self.classes_)), dtype=dtype))
        return X.map_blocks(
            _transformed_block, estimator=dask.delayed(self, traverse=False), method=method,
            transform=transform, chunks=(X.chunks[0], *((n,) for n in probe.shape[1:])),
            drop_axis=None if probe.ndim == 2 else 1, dtype=probe.dtype,
            meta=np.empty((0,) * probe.ndim, dtype=probe.dtype))

    def decision_function(self, X):
        """Logits ``X W^T``, one column per token (a single column for two tokens).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_tokens) or (n_samples,)
            Unnormalized log-probabilities. With two tokens, as for every
            scikit-learn binary classifier, the logit difference
            ``(w_1 - w_0)^T x`` of ``classes_[1]`` over ``classes_[0]`` (its
            sign gives the prediction); ``coef_`` keeps both rows.
        """
        logits = self._row_blocks(X, "decision_function", lambda logits: logits)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X):
        """Next-token probabilities ``softmax(W h)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_tokens)
            Rows sum to one; columns follow ``classes_``.
        """
        return self._row_blocks(X, "predict_proba", softmax)

    def predict_log_proba(self, X):
        """Log-probabilities ``log softmax(W h)``, computed by log-sum-exp.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_tokens)
            Finite for every finite ``X``; columns follow ``classes_``.
        """
        return self._row_blocks(X, "predict_log_proba", log_softmax)

    def predict(self, X):
        """Most probable next token.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Context embeddings.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        indices = self._row_blocks(
            X, "predict", lambda logits: namespace(logits)[0].argmax(logits, axis=1))
        if is_dask_array(indices):
            return indices.map_blocks(_labels, classes=self.classes_,
                                      dtype=self.classes_.dtype)
        xp, on_host = namespace(indices)
        if on_host or self.classes_.dtype.kind not in "biuf":
            return self.classes_[to_host(indices)]
        return xp.take(from_host(self.classes_, xp, indices.device), indices)

    def score(self, X, y, sample_weight=None):
        """Mean log-likelihood ``-CE`` of next-token targets (higher is better).

        Unlike other classifiers' accuracy, this is the negated NTP
        cross-entropy; it is at most ``-H``, the negated entropy of ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
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
        contexts = _CONTEXTS[any_dask(X, y, sample_weight)]
        X, data, _, _ = contexts.validated(self, X, y, sample_weight, classes=self.classes_)
        data = contexts.with_intercept(data) if self.fit_intercept else data
        W = to_host(self._full_coef()).astype(contexts.dtype(data))
        return -float(contexts.datafit(data, None, None).value(W))


def _validated_embeddings(estimator, X, reset):
    """``X`` through ``validate_data``: float64, or float32 kept; half precision refused."""
    check_precision(X)
    xp, _ = namespace(X)
    return validate_data(estimator, X, reset=reset, accept_sparse=("csr", "csc"),
                         dtype=[xp.float64, xp.float32])


def _validated_embeddings(estimator, X, reset):
    """``X`` through ``validate_data``: float64, or float32 kept; half precision refused."""
    check_precision(X)
    xp, _ = namespace(X)
    return validate_data(estimator, X, reset=reset, accept_sparse=("csr", "csc"),
                         dtype=[xp.float64, xp.float32])


def _unscaled(scaling, W):
    """The decoder of the given contexts from that of the rescaled ones; finite or an error."""
    W = scaling.from_scaled(W)
    xp, _ = namespace(W)
    if not bool(xp.all(xp.isfinite(W))):
        raise ValueError(
            "X is too small in scale: the fitted decoder of its contexts has entries beyond "
            f"the range of {W.dtype}; rescale X (e.g. with StandardScaler).")
    return W


class _InMemoryContexts:
    """How the estimator validates, aggregates and reduces in-memory contexts (NTPData)."""

    @staticmethod
    def validated(estimator, X, y, sample_weight, classes=None):
        """``(X, contexts, xp, device)``: aggregation runs on the host, once per call."""
        X = _validated_embeddings(estimator, X, reset=classes is None)
        xp, _, device = get_namespace_and_device(X)
        data = aggregate_contexts(to_host(X), to_host(y), to_host(sample_weight),
                                  classes=classes)
        return X, data, xp, device

    @staticmethod
    def in_one_process(data):
        return data

    @staticmethod
    def dtype(data):
        return data.embeddings.dtype

    with_intercept = staticmethod(with_intercept_column)

    @staticmethod
    def rescaled(data, scaling):
        return scaling.contexts(data)

    @staticmethod
    def scaling(data, alpha, per_column):
        return column_scale_exponents(data.embeddings, data.weights, alpha, per_column)

    @staticmethod
    def smoothness(data, alpha):
        return smoothness_constant(data.embeddings, data.weights, alpha)

    @staticmethod
    def datafit(data, xp, device):
        return NTPLoss(data, xp=xp, device=device)


class _DaskContexts:
    """The same for dask arrays: contexts aggregated and reduced on the workers.

    The fitted arrays are NumPy arrays on the client: the validated ``X``
    handed back is an empty NumPy array of the dtype and width of ``X``.
    """

    @staticmethod
    def validated(estimator, X, y, sample_weight, classes=None):
        if classes is None:  # fit: X's width is the estimator's
            estimator.n_features_in_ = check_dask_X(X).shape[1]
            if hasattr(estimator, "feature_names_in_"):
                del estimator.feature_names_in_
        else:
            _check_dask_width(estimator, X)
        data = aggregate_dask_contexts(X, y, sample_weight, classes=classes)
        return np.empty((0, data.n_features), dtype=data.dtype), data, np, None

    @staticmethod
    def in_one_process(data):
        return data.gather()

    @staticmethod
    def dtype(data):
        return data.dtype

    @staticmethod
    def with_intercept(data):
        return data.with_intercept_column()

    @staticmethod
    def rescaled(data, scaling):
        return data.rescaled(scaling)

    @staticmethod
    def scaling(data, alpha, per_column):
        # The column scales of all contexts are those of one context of weight one.
        scales = data.column_scales()
        return column_scale_exponents(scales[None, :], np.ones(1), alpha, per_column)

    @staticmethod
    def smoothness(data, alpha):
        return data.largest_gram_eigenvalue() / 2.0 + alpha

    @staticmethod
    def datafit(data, xp, device):
        return DaskNTPLoss(data)


def _transformed_block(X, estimator, method, transform):
    return estimator._row_blocks(X, method, transform)


def _labels(indices, classes):
    return classes[indices]


#: Where the estimator's contexts live, by whether any input is a dask array.
_CONTEXTS = {False: _InMemoryContexts, True: _DaskContexts}


def _check_dask_width(estimator, X):
    """Refuse a dask ``X`` split by columns or of another width than the fitted one."""
    check_dask_X(X)
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} "
                         f"is expecting {estimator.n_features_in_} features as input.")
