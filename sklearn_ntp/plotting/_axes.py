"""Axes handling shared by the plotting functions (matplotlib imported lazily)."""

import numpy as np
from sklearn.utils._optional_dependencies import check_matplotlib_support


def check_axes(ax, n_axes, *, figsize, caller):
    """Return ``(axes, figure)``: a flat array of ``n_axes`` Axes.

    With ``ax=None`` a new figure with one row of ``n_axes`` panels is made;
    otherwise ``ax`` must hold exactly ``n_axes`` matplotlib Axes (any nesting),
    which lets later calls draw over the panels of earlier ones.
    """
    check_matplotlib_support(caller)
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        figure, axes = plt.subplots(1, n_axes, figsize=figsize, squeeze=False,
                                    layout="constrained")
        return axes.ravel(), figure
    axes = np.asarray(ax, dtype=object).ravel()
    if axes.size != n_axes or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(
            f"ax must be {n_axes} matplotlib Axes (e.g. the ax_ of an earlier "
            f"display), got {ax!r}."
        )
    return axes, axes[0].figure
