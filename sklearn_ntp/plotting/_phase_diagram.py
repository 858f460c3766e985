"""Heat map of a separability phase diagram over ``d / m`` and ``m``."""

from collections.abc import Mapping

import numpy as np
from sklearn.utils._optional_dependencies import check_matplotlib_support

from ._axes import check_axes

#: Columns a phase diagram must have (as returned by separability_phase_diagram).
REQUIRED_KEYS = ("n_contexts", "n_features", "n_tokens", "support_size")
#: Cover (1965): m points in general position in R^d with random binary labels
#: are homogeneously separable with probability exactly 1/2 at d = m/2.
COVER_RATIO = 0.5


def _cell_edges(centers):
    """Edges of cells centred at sorted ``centers`` (midpoints; half steps at the ends)."""
    if len(centers) == 1:
        return np.array([centers[0] * 0.75, centers[0] * 1.25])
    mid = (centers[1:] + centers[:-1]) / 2
    return np.concatenate([[2 * centers[0] - mid[0]], mid, [2 * centers[-1] - mid[-1]]])


class PhaseDiagramDisplay:
    """Heat map of a quantity of :func:`~sklearn_ntp.studies.separability_phase_diagram`.

    One row per number of contexts ``m``, with cells along the ratio ``d / m``
    of features to contexts, colored by ``value`` (by default the fraction of
    NTP-separable draws). A vertical line marks ``d = m``, beyond which
    Lemma 1 makes full-rank data separable. For binary one-hot data
    (``n_tokens=2``, ``support_size=1``), where NTP-separability is homogeneous
    linear separability, a dashed line marks Cover's threshold ``d / m = 1/2``
    (probability exactly 1/2 there for every even ``m``, and the limit of the
    transition as ``m`` grows); for other ``(V, S)`` no such formula is known
    and the line is not drawn.

    Parameters
    ----------
    results : dict of ndarray
        Equal-length arrays with at least ``n_contexts``, ``n_features``,
        ``n_tokens``, ``support_size`` and the ``value`` column.
    value : str, default="separable_fraction"
        Column to color the cells by.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The heat map.
    figure_ : matplotlib Figure
        Figure holding it.
    meshes_ : list of matplotlib QuadMesh
        One row of cells per value of ``m``, from the smallest ``m``.
    colorbar_ : matplotlib Colorbar
        Color scale of ``value``.
    cover_line_ : matplotlib Line2D or None
        Cover's ``d / m = 1/2`` line; None unless the data are binary one-hot.

    See Also
    --------
    sklearn_ntp.studies.separability_phase_diagram : Computes the results.

    Examples
    --------
    >>> from sklearn_ntp.plotting import PhaseDiagramDisplay
    >>> from sklearn_ntp.studies import separability_phase_diagram
    >>> results = separability_phase_diagram(n_contexts=[4, 8], n_features=[2, 4],
    ...                                      n_tokens=2, support_size=1, n_draws=2,
    ...                                      random_state=0)
    >>> display = PhaseDiagramDisplay.from_results(results)
    >>> len(display.meshes_), display.cover_line_.get_xdata()
    (2, [0.5, 0.5])
    """

    def __init__(self, results, *, value="separable_fraction"):
        self.results = results
        self.value = value

    def _columns(self):
        results = self.results
        if not isinstance(results, Mapping):
            raise ValueError("results must be a mapping of arrays (the output of "
                             f"separability_phase_diagram), got {type(results).__name__}.")
        keys = REQUIRED_KEYS + (self.value,)
        missing = [key for key in keys if key not in results]
        if missing:
            raise ValueError(f"results lacks the columns {missing}.")
        columns = {key: np.asarray(results[key], dtype=np.float64).ravel() for key in keys}
        if len({col.shape for col in columns.values()}) != 1 or not len(columns[keys[0]]):
            raise ValueError("results must hold non-empty arrays of equal length.")
        return columns

    def plot(self, ax=None, *, cmap="viridis"):
        """Draw the heat map.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; by default a new figure.
        cmap : str or matplotlib Colormap, default="viridis"
            Colormap of the cells.

        Returns
        -------
        display : PhaseDiagramDisplay
            Object that stores the drawn artists.
        """
        columns = self._columns()
        (ax,), figure = check_axes(ax, 1, figsize=(7, 4), caller=f"{type(self).__name__}.plot")
        values = columns[self.value]
        finite = values[np.isfinite(values)]
        fraction = self.value.endswith("_fraction")
        vmin, vmax = (0.0, 1.0) if fraction or not finite.size else (finite.min(), finite.max())
        ms = np.unique(columns["n_contexts"])
        meshes = []
        for row, m in enumerate(ms):
            cells = columns["n_contexts"] == m
            ratio = columns["n_features"][cells] / m
            order = np.argsort(ratio)
            meshes.append(ax.pcolormesh(
                _cell_edges(ratio[order]), [row - 0.5, row + 0.5],
                values[cells][order][None, :], cmap=cmap, vmin=vmin, vmax=vmax))
        ax.axvline(1.0, color="black", linestyle=":", linewidth=1.5, label="d = m (Lemma 1)")
        binary_one_hot = (np.all(columns["n_tokens"] == 2)
                          and np.all(columns["support_size"] == 1))
        self.cover_line_ = (ax.axvline(COVER_RATIO, color="red", linestyle="--",
                                       label="Cover (1965): d/m = 1/2, binary one-hot")
                            if binary_one_hot else None)
        ax.set(yticks=np.arange(len(ms)), yticklabels=[f"{m:g}" for m in ms],
               xlabel="d / m (features per context)", ylabel="m (contexts)",
               ylim=(-0.5, len(ms) - 0.5))
        ax.legend(loc="lower right", fontsize="small")
        self.colorbar_ = figure.colorbar(meshes[0], ax=ax, label=self.value.replace("_", " "))
        self.ax_, self.figure_, self.meshes_ = ax, figure, meshes
        return self

    @classmethod
    def from_results(cls, results, *, value="separable_fraction", ax=None, cmap="viridis"):
        """Draw the results of :func:`~sklearn_ntp.studies.separability_phase_diagram`.

        Parameters
        ----------
        results : dict of ndarray or pandas.DataFrame
            The study's output.
        value : str, default="separable_fraction"
            Column to color the cells by (e.g. ``"compatible_fraction"`` or
            ``"mean_margin"``).
        ax : matplotlib Axes, default=None
            Axes to draw on; by default a new figure.
        cmap : str or matplotlib Colormap, default="viridis"
            Colormap of the cells.

        Returns
        -------
        display : PhaseDiagramDisplay

        Examples
        --------
        >>> from sklearn_ntp.plotting import PhaseDiagramDisplay
        >>> from sklearn_ntp.studies import separability_phase_diagram
        >>> results = separability_phase_diagram(n_contexts=[6], n_features=[3, 6],
        ...                                      n_draws=2, random_state=0)
        >>> PhaseDiagramDisplay.from_results(results).cover_line_ is None
        True
        """
        check_matplotlib_support(f"{cls.__name__}.from_results")
        return cls(results, value=value).plot(ax=ax, cmap=cmap)
