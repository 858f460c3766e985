"""Word-embedding geometry in the plane (paper Fig. 1-2) and probability heatmaps.

The drawing functions take the matrices to draw; the only computation, of the
matrices a caller did not give, is :func:`_solve_missing`, through the public
functions of :mod:`sklearn_ntp.implicit_bias` (as scikit-learn's
``Display.from_estimator`` fits or predicts, then draws).
"""

import numpy as np
import scipy.sparse as sp

from .._data._ntp_data import check_decoder, check_targets
from ..implicit_bias import aggregate_contexts, log_odds_solution, ntp_svm
from ._axes import check_axes

#: Heatmaps with at most this many cells print their probabilities.
_MAX_ANNOTATED_CELLS = 300


def _support_label(data, j):
    tokens = data.classes[data.probabilities[j].indices]
    return "{" + ",".join(str(t) for t in tokens) + "}"


def _draw_geometry(ax, data, W, title):
    """Contexts as labelled points, rows of ``W`` as labelled arrows from the origin."""
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10")
    # Tokens with the same support pattern share a row of W^mm: one arrow, one label.
    rows, first, group = np.unique(W.round(8), axis=0, return_index=True,
                                   return_inverse=True)
    for g, w in enumerate(rows):
        tokens = data.classes[np.flatnonzero(group.ravel() == g)]
        color = colors(first[g] % 10)
        ax.annotate("", xy=w, xytext=(0, 0),
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.5})
        label = "=".join(f"w_{{{t}}}" for t in tokens)
        ax.annotate(f"${label}$", xy=w, xytext=(4, -10), textcoords="offset points",
                    color=color)
    H = data.embeddings
    ax.scatter(H[:, 0], H[:, 1], marker="s", color="0.25", zorder=3,
               label="context $h_j$, labelled $S_j$")
    for j, h in enumerate(H):
        ax.annotate(_support_label(data, j), xy=h, xytext=(5, 5), textcoords="offset points")
    # Arrows do not take part in autoscaling: fit the limits to every drawn point.
    points = np.vstack([H, W, np.zeros((1, 2))])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.15 * max(float(np.max(high - low)), 1e-12)
    ax.set(xlim=(low[0] - pad, high[0] + pad), ylim=(low[1] - pad, high[1] + pad),
           aspect="equal", title=title, xlabel="first coordinate",
           ylabel="second coordinate")
    ax.axhline(0, color="0.85", linewidth=0.8, zorder=0)
    ax.axvline(0, color="0.85", linewidth=0.8, zorder=0)
    ax.legend(loc="best", fontsize="small")


def plot_word_embeddings(X, y, *, W_star=None, W_mm=None, sample_weight=None, ax=None,
                         title=None):
    """Draw 2-D context embeddings and the word embeddings of ``W^mm`` and ``W*``.

    The paper's Fig. 1-2: the rows of the max-margin solution ``W^mm`` depend
    only on the support pattern, those of the finite component ``W*`` on the
    probabilities inside the supports. Each panel shows the distinct contexts
    ``h_j`` as points labelled with their supports ``S_j`` and the rows
    ``w_z`` of one matrix as arrows.

    Parameters
    ----------
    X : array-like of shape (n_samples, 2)
        Two-dimensional context embeddings (identical rows are one context).
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    W_star : array-like of shape (n_tokens, 2), default=None
        Finite component; computed with
        :func:`~sklearn_ntp.implicit_bias.log_odds_solution` (least squares if
        the data are not NTP_H-compatible) when None.
    W_mm : array-like of shape (n_tokens, 2), default=None
        NTP-SVM solution; computed with :func:`~sklearn_ntp.implicit_bias.ntp_svm`
        when None.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights (rows of zero weight are not drawn).
    ax : array-like of 2 matplotlib Axes, default=None
        Panels for ``W^mm`` and ``W*``; by default a new figure.
    title : str, default=None
        Title of the figure, e.g. the data set's name.

    Returns
    -------
    axes : ndarray of matplotlib Axes, shape (2,)
        The ``W^mm`` panel and the ``W*`` panel.

    Raises
    ------
    ValueError
        If the embeddings are not two-dimensional or a matrix has the wrong shape.
    NotNTPSeparableError
        If ``W_mm`` is None and the data are not NTP-separable.

    Examples
    --------
    >>> from sklearn_ntp.datasets import make_toy_ntp_data
    >>> from sklearn_ntp.plotting import plot_word_embeddings
    >>> X, Y, w = make_toy_ntp_data()
    >>> axes = plot_word_embeddings(X, Y, sample_weight=w)
    >>> print(*[ax.get_title() for ax in axes], sep="\\n")
    rows of $W^{mm}$ (max-margin)
    rows of $W^\\star$ (finite component)
    """
    data = aggregate_contexts(X, y, sample_weight)
    if data.n_features != 2:
        raise ValueError(
            f"X must hold 2-D embeddings (n_features=2) to be drawn in the plane; "
            f"got n_features={data.n_features}."
        )
    W_mm = None if W_mm is None else check_decoder(W_mm, data, "W_mm")
    W_star = None if W_star is None else check_decoder(W_star, data, "W_star")
    W_star, W_mm = _solve_missing(data, W_star, W_mm)
    return _draw_word_embeddings(data, W_star, W_mm, ax=ax, title=title)


def _solve_missing(data, W_star, W_mm):
    """``(W_star, W_mm)``, each computed when None: the plots' only computation.

    ``W*`` by least squares if the data are not NTP_H-compatible (the plot
    still shows what the log-odds ask for); ``W^mm`` raises
    NotNTPSeparableError on data that are not NTP-separable.
    """
    if W_mm is None:
        W_mm = ntp_svm(data)
    if W_star is None:
        W_star = log_odds_solution(data, allow_inexact=True)
    return W_star, W_mm


def _draw_word_embeddings(data, W_star, W_mm, *, ax, title):
    """Draw the ``W^mm`` and ``W*`` panels of aggregated 2-D ``data`` (checked matrices)."""
    axes, figure = check_axes(ax, 2, figsize=(11, 5), caller="plot_word_embeddings")
    _draw_geometry(axes[0], data, W_mm, "rows of $W^{mm}$ (max-margin)")
    _draw_geometry(axes[1], data, W_star, "rows of $W^\\star$ (finite component)")
    if title is not None:
        figure.suptitle(title)
    return axes


def plot_probability_matrix(y, *, ax=None, title="next-token probabilities"):
    """Heatmap of next-token probabilities, one row per context (paper Fig. 1).

    Parameters
    ----------
    y : array-like or sparse matrix of shape (n_contexts, n_tokens)
        Probability rows (nonnegative, summing to one within ``1e-6``).
    ax : matplotlib Axes, default=None
        Axes to draw on; by default a new figure.
    title : str, default="next-token probabilities"
        Title of the heatmap, e.g. naming the data set.

    Returns
    -------
    ax : matplotlib Axes
        The heatmap; small matrices print their nonzero probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.plotting import plot_probability_matrix
    >>> ax = plot_probability_matrix(np.array([[0.5, 0.5, 0.0], [0.0, 0.1, 0.9]]))
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('token $z$', 'context $j$')
    """
    if not (sp.issparse(y) or np.ndim(y) == 2):
        raise ValueError(
            f"y must be a 2-D (n_contexts, n_tokens) probability matrix, got shape "
            f"{np.shape(y)}."
        )
    P = check_targets(y, y.shape[0] if sp.issparse(y) else len(y))[0].toarray()
    n_contexts, n_tokens = P.shape
    axes, figure = check_axes(
        ax, 1, figsize=(2 + 0.6 * n_tokens, 1.5 + 0.4 * n_contexts),
        caller="plot_probability_matrix",
    )
    ax = axes[0]
    image = ax.imshow(P, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    figure.colorbar(image, ax=ax, label="$p_{j,z}$")
    if P.size <= _MAX_ANNOTATED_CELLS:
        for j, z in zip(*np.nonzero(P)):
            ax.text(z, j, f"{P[j, z]:.2f}", ha="center", va="center", fontsize="small",
                    color="white" if P[j, z] > 0.6 else "black")
    ax.set(xlabel="token $z$", ylabel="context $j$", title=title,
           xticks=np.arange(n_tokens), yticks=np.arange(n_contexts))
    return ax
