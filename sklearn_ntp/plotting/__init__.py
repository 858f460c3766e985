"""Plots of the implicit bias of next-token prediction (matplotlib needed).

* :class:`ImplicitBiasDisplay` — loss, norm, alignment with ``W^mm`` and
  distance of the subspace component to ``W*`` along training (paper Fig. 4-5);
* :func:`plot_word_embeddings` — contexts and the word embeddings of ``W^mm``
  and ``W*`` in the plane (paper Fig. 1-2);
* :func:`plot_probability_matrix` — heatmap of next-token probabilities;
* :class:`PhaseDiagramDisplay` — heat map of a separability phase diagram
  over ``d / m`` and ``m``.

matplotlib is imported only when a plot is drawn.
"""

from ._geometry import plot_probability_matrix, plot_word_embeddings
from ._implicit_bias import ImplicitBiasDisplay
from ._phase_diagram import PhaseDiagramDisplay

__all__ = [
    "ImplicitBiasDisplay",
    "PhaseDiagramDisplay",
    "plot_probability_matrix",
    "plot_word_embeddings",
]
