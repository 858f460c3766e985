"""Armijo backtracking: the largest step of a halving sequence with sufficient decrease."""

from typing import NamedTuple

#: Sufficient-decrease fraction of the linear model (Nocedal & Wright's usual
#: choice): small enough that a Newton step near the minimizer is accepted whole.
ARMIJO_C1 = 1e-4
#: Each rejected step is multiplied by this factor.
BACKTRACK_FACTOR = 0.5


class LineSearchResult(NamedTuple):
    """Outcome of :func:`armijo`: the step, the evaluation there, and whether it was accepted."""

    step: float
    evaluation: object
    accepted: bool


def armijo(evaluate, value, slope, step=1.0, *, max_trials=40, accept=None):
    """Backtrack from ``step`` until ``f(step) <= value + ARMIJO_C1 * step * slope``.

    Parameters
    ----------
    evaluate : callable
        ``t -> evaluation`` at the step ``t``; ``evaluation[0]`` (or the
        evaluation itself, if it is a number) is the function value.
    value : float
        ``f(0)``.
    slope : float
        The directional derivative ``f'(0)`` (negative along a descent direction).
    step : float, default=1.0
        The first step tried.
    max_trials : int, default=40
        At most this many steps are tried, each :data:`BACKTRACK_FACTOR`
        times the previous one.
    accept : callable, default=None
        ``(t, evaluation) -> bool``: a further test that accepts a step the
        sufficient decrease rejects (e.g. a halved gradient norm where the
        objective no longer resolves the decrease).

    Returns
    -------
    result : LineSearchResult
        ``(step, evaluation, accepted)``: the last step tried and its
        evaluation, and whether either test accepted it.

    Examples
    --------
    >>> from sklearn_ntp._linalg._line_search import armijo
    >>> f = lambda t: (1.0 - 4.0 * t) ** 2  # along the direction -f'(0) / 8
    >>> armijo(f, value=1.0, slope=-8.0).step
    0.25
    """
    evaluation = None
    for _ in range(max_trials):
        evaluation = evaluate(step)
        new_value = evaluation[0] if isinstance(evaluation, tuple) else evaluation
        if new_value <= value + ARMIJO_C1 * step * slope or (
                accept is not None and accept(step, evaluation)):
            return LineSearchResult(step, evaluation, True)
        step *= BACKTRACK_FACTOR
    return LineSearchResult(step / BACKTRACK_FACTOR, evaluation, False)
