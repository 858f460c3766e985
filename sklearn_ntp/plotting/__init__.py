"""Plots of the implicit bias of next-token prediction (matplotlib needed).

* :class:`ImplicitBiasDisplay` — loss, norm, alignment with ``W^mm`` and
  distance of the subspace component to ``W*`` along training (paper Fig. 4-5);
* :func:`plot_word_embeddings` — contexts and the word embeddings of ``W^mm``
  and ``W*`` in the plane (paper Fig. 1-2);
* :func:`plot_probability_matrix` — heatmap of next-token probabilities;
* :class:`PhaseDiagramDisplay` — heat map of a separability phase diagram
  over ``d / m`` and ``m``.
* :func:`plot_convergence_rates` — margin gap and ``1 - cos(W_k - W~, U~)``
  against iterations, on log-log axes, as computed by
  :func:`sklearn_ntp.studies.convergence_rate_curve`.

matplotlib is imported only when a plot is drawn.
"""

from ._geometry import plot_probability_matrix, plot_word_embeddings
from ._implicit_bias import ImplicitBiasDisplay
from ._phase_diagram import PhaseDiagramDisplay
from ._rates import plot_convergence_rates

__all__ = [
    "ImplicitBiasDisplay",
    "PhaseDiagramDisplay",
    "plot_convergence_rates",
    "plot_probability_matrix",
    "plot_word_embeddings",
]


def __getattr__(name):
    """``convergence_rate_curve``: deprecated alias of the study, removed in 0.3.

    The function moved to :mod:`sklearn_ntp.studies`, a layer above plotting.
    The alias imports it on first access only, so that importing plotting
    never imports the studies; ``tests/test_layers.py`` allows exactly this
    import until the alias goes.
    """
    if name != "convergence_rate_curve":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from sklearn.utils import deprecated

    from ..studies._rates import convergence_rate_curve

    alias = deprecated(
        "it moved to sklearn_ntp.studies in 0.2 and will be removed from "
        "sklearn_ntp.plotting in 0.3."
    )(convergence_rate_curve)
    globals()[name] = alias  # later look-ups do not come back here
    return alias
