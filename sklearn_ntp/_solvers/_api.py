"""What every solver receives (:class:`SolverOptions`) and returns (:class:`SolverResult`)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SolverOptions:
    """Hyper-parameters shared by the solvers (each one reads what it needs)."""

    max_iter: int
    tol: float
    #: The step on the solver's contexts (which may be rescaled by powers of two).
    learning_rate: float = 0.5
    #: Whether ``learning_rate`` was derived by ``learning_rate="auto"`` (for messages).
    auto_step: bool = False
    #: The step the user gave, when the contexts were rescaled (for messages;
    #: None: ``learning_rate`` itself).
    given_learning_rate: float | None = None
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    #: accelerated: step of the divergent part, in units of ``1 / max_j ||h_j||^2``.
    margin_step: float = 64.0
    #: sgd: samples per step (None: every context, i.e. full batch).
    batch_size: int | None = None
    #: sgd: "contexts" (distinct contexts, full p_j) or "tokens" (one-hot pairs).
    sampling: str = "contexts"
    #: sgd: "constant" step, or "inverse_sqrt" (``eta / sqrt(k)`` at step ``k``).
    step_schedule: str = "constant"
    #: sgd: seed or numpy RandomState of the sampling.
    random_state: object = None


@dataclass(frozen=True)
class SolverResult:
    """Outcome of a solver run.

    Attributes
    ----------
    coef : ndarray of shape (n_tokens, n_features)
        Final iterate (the last finite one if the run diverged).
    n_iter : int
        Number of updates that led to ``coef``.
    converged : bool
        Whether the solver's stopping criterion was met.
    stop_reason : str
        ``"tol"``, ``"max_iter"``, ``"diverged"``, or a solver's own reason.
    warning : str, default=""
        What the caller should warn about (empty when the outcome is expected,
        e.g. ``max_iter`` on the unregularized loss, whose infimum is only
        reached asymptotically). Each solver decides.
    """

    coef: object
    n_iter: int
    converged: bool
    stop_reason: str
    warning: str = ""
