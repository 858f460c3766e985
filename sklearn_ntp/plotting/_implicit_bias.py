"""The four panels of the paper's Fig. 4: loss, norm, alignment, subspace error."""

from collections.abc import Mapping

import numpy as np
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils._plotting import _validate_style_kwargs
from sklearn.utils.validation import check_is_fitted

from ._axes import check_axes

#: Keys every training history has (an estimator's ``history_``).
REQUIRED_KEYS = ("iteration", "loss", "norm")
#: Keys recorded only when ``W*`` and ``W^mm`` were tracked (else drawn empty).
IMPLICIT_BIAS_KEYS = ("alignment", "corrected_alignment", "subspace_error")

#: Legend labels of the dashed entropy line and of the dash-dotted loss infimum.
ENTROPY_LABEL = "entropy $H$"
INFIMUM_LABEL = "loss infimum $L^*$"

#: (history key, panel title, y label) of the curves, one panel each except the
#: alignments.
_PANELS = (
    ("loss", r"NTP loss $\mathrm{CE}(W_k)$", "cross-entropy (nats)"),
    ("norm", r"norm $\Vert W_k \Vert$", r"$\Vert W_k \Vert_F$"),
    ("alignment", r"$\cos(W_k, \tilde U)$, dotted: $\cos(W_k - \tilde W, \tilde U)$",
     "cosine"),
    ("subspace_error", r"$\Vert P_G(W_k) - \tilde W \Vert$", "Frobenius distance"),
)
#: What an empty implicit-bias panel means: the history did not track the limits,
#: or it did and there is no max-margin direction to align with.
NOT_TRACKED = "the limit was not tracked\n(compute_implicit_bias=False)"
NO_MARGIN_DIRECTION = ("no max-margin direction $\\tilde U$: no off-support pair\n"
                       "is separable ($T$ is empty), so $W_k$ converges\n"
                       "to $\\tilde W$ and there is no direction to align with")
#: Why a tracked subspace error is identically zero.
TRIVIAL_SUBSPACE = ("identically 0: every context has a single next token\n"
                    "and every other token is separable, so $G = \\{0\\}$ and $\\tilde W = 0$")


def check_history(history):
    """Validate a training history and return it as equal-length float arrays.

    ``iteration``, ``loss`` and ``norm`` are required; the implicit-bias keys
    are NaN when absent (the estimator did not track ``W*`` and ``W^mm``).
    """
    if not isinstance(history, Mapping):
        raise ValueError(
            f"history must be a mapping (an estimator's history_), got {type(history).__name__}."
        )
    missing = [key for key in REQUIRED_KEYS if key not in history]
    if missing:
        raise ValueError(f"history lacks the keys {missing}; expected at least "
                         f"{list(REQUIRED_KEYS)}.")
    arrays = {key: np.asarray(history[key], dtype=np.float64)
              for key in REQUIRED_KEYS + IMPLICIT_BIAS_KEYS if key in history}
    shape = arrays["iteration"].shape
    if len(shape) != 1 or shape[0] == 0 or any(a.shape != shape for a in arrays.values()):
        raise ValueError(
            "history must hold non-empty 1-D arrays of equal length; got shapes "
            f"{ {key: arr.shape for key, arr in arrays.items()} }."
        )
    for key in IMPLICIT_BIAS_KEYS:
        arrays.setdefault(key, np.full(shape, np.nan))
    return arrays


class ImplicitBiasDisplay:
    """Implicit-bias curves of a gradient-trained NTP decoder (paper Fig. 4-5).

    Four panels against the iteration ``k`` (log scale):

    1. the NTP loss ``CE(W_k)`` with the entropy bound ``H`` dashed and, when
       it is larger, the loss infimum ``L*`` dash-dotted;
    2. the norm ``||W_k||`` (diverges when some off-support pair is separable);
    3. the cosine of ``W_k`` (solid) and of ``W_k - W~`` (dotted) with the
       max-margin solution ``U~``;
    4. the distance ``||P_G(W_k) - W~||`` of the component in ``G`` to the
       finite component ``W~``.

    ``(L*, W~, U~, G)`` is the limit of gradient descent of
    :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`; on NTP_H-compatible,
    NTP-separable data it is the paper's ``(H, W*, W^mm, F)`` (Theorem 2).

    Iteration 0 has no place on the log axis and is left out (of the curves
    and of the y-limits). When a panel has nothing to draw it says why: the
    limits were not tracked (``compute_implicit_bias=False``), or there is
    no max-margin direction to align with (no separable off-support pair:
    gradient descent then converges to ``W~``). A subspace error that is
    identically zero (``G = {0}``) is drawn and explained too.

    Use :meth:`from_estimator` or :meth:`from_history` to create one. To overlay
    several optimizers (paper Fig. 5), pass the ``ax_`` of the first display as
    ``ax`` to the later ones.

    Parameters
    ----------
    history : dict of ndarray
        Equal-length arrays ``iteration``, ``loss`` and ``norm``, and (drawn
        when present) ``alignment``, ``corrected_alignment`` and
        ``subspace_error``, as in :attr:`NTPLinearClassifier.history_`.
    entropy : float or None
        The entropy lower bound ``H``; drawn in the loss panel unless None.
    loss_infimum : float, default=None
        The loss infimum ``L*``; drawn in the loss panel when it exceeds ``H``.
    name : str, default=None
        Legend label of the curves.

    Attributes
    ----------
    ax_ : ndarray of matplotlib Axes, shape (4,)
        The four panels.
    figure_ : matplotlib Figure
        Figure holding the panels.
    lines_ : dict of str to matplotlib Line2D
        The drawn curves, keyed by history key (``"loss"``, ``"norm"``,
        ``"alignment"``, ``"corrected_alignment"``, ``"subspace_error"``).
    entropy_line_ : matplotlib Line2D or None
        The dashed entropy line, None when ``entropy`` is None.
    infimum_line_ : matplotlib Line2D or None
        The dash-dotted loss-infimum line, None unless ``L* > H``.

    See Also
    --------
    sklearn_ntp.NTPLinearClassifier : Records ``history_`` during ``fit``.
    plot_word_embeddings : The limits ``W*`` and ``W^mm`` in the plane.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.plotting import ImplicitBiasDisplay
    >>> k = np.arange(1, 101)
    >>> history = {"iteration": k, "loss": 1 + 1 / k, "norm": np.log1p(k),
    ...            "alignment": 1 - 1 / np.log1p(k), "corrected_alignment": 1 - 1 / k,
    ...            "subspace_error": 1 / k}
    >>> display = ImplicitBiasDisplay(history=history, entropy=1.0, name="GD").plot()
    >>> display.ax_.shape, sorted(display.lines_)
    ((4,), ['alignment', 'corrected_alignment', 'loss', 'norm', 'subspace_error'])
    """

    def __init__(self, *, history, entropy, loss_infimum=None, name=None):
        self.history = history
        self.entropy = entropy
        self.loss_infimum = loss_infimum
        self.name = name

    def plot(self, ax=None, *, name=None, title=None, **kwargs):
        """Draw the four panels.

        Parameters
        ----------
        ax : array-like of 4 matplotlib Axes, default=None
            Panels to draw on (e.g. the ``ax_`` of another display, to overlay
            curves); by default a new figure with one row of four panels.
        name : str, default=None
            Legend label; overrides the ``name`` given at construction.
        title : str, default=None
            Title of the figure, e.g. the data set's name.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``plot`` for every curve
            (e.g. ``color``).

        Returns
        -------
        display : ImplicitBiasDisplay
            Object that stores the computed values.
        """
        tracked = {key: key in self.history for key in IMPLICIT_BIAS_KEYS}
        history = check_history(self.history)
        axes, figure = check_axes(ax, 4, figsize=(16, 3.6),
                                  caller=f"{type(self).__name__}.plot")
        name = self.name if name is None else name
        style = _validate_style_kwargs({} if name is None else {"label": name}, kwargs)
        # Iteration 0 has no place on the log axis: leaving it out also keeps
        # it out of the y-limits.
        drawn = history["iteration"] > 0
        if not drawn.any():
            drawn[:] = True
        k = history["iteration"][drawn]

        lines = {}
        for panel, (key, panel_title, ylabel) in zip(axes, _PANELS):
            (lines[key],) = panel.plot(k, history[key][drawn], **style)
            # One color per display across all panels, whatever each cycle says.
            style["color"] = lines[key].get_color()
            panel.set(xscale="log", xlabel="iteration k", ylabel=ylabel, title=panel_title)
        corrected = {**style, "linestyle": ":", "label": "_nolegend_"}
        (lines["corrected_alignment"],) = axes[2].plot(
            k, history["corrected_alignment"][drawn], **corrected)
        self.entropy_line_ = None
        if self.entropy is not None:
            self.entropy_line_ = axes[0].axhline(
                float(self.entropy), color="black", linestyle="--", linewidth=1,
                label=_legend_label(axes[0], ENTROPY_LABEL),
            )
        self.infimum_line_ = None
        if self.loss_infimum is not None and not _same_level(self.loss_infimum, self.entropy):
            self.infimum_line_ = axes[0].axhline(
                float(self.loss_infimum), color="black", linestyle="-.", linewidth=1,
                label=_legend_label(axes[0], INFIMUM_LABEL),
            )
        for panel, key in zip(axes[2:], ("alignment", "subspace_error")):
            _mark_if_empty(panel, history[key],
                           NO_MARGIN_DIRECTION if tracked[key] else NOT_TRACKED)
            panel.set_xlim(axes[0].get_xlim())  # also where nothing is drawn
        if tracked["subspace_error"] and np.all(history["subspace_error"] == 0):
            _annotate(axes[3], TRIVIAL_SUBSPACE, y=0.75)  # above the flat curve
        if title is not None:
            figure.suptitle(title)
        if any(line.get_label()[:1] != "_" for line in axes[0].get_lines()):
            axes[0].legend()

        self.ax_, self.figure_, self.lines_ = axes, figure, lines
        return self

    @classmethod
    def from_history(cls, history, *, entropy=None, loss_infimum=None, ax=None, name=None,
                     title=None, **kwargs):
        """Plot a training history (a mapping of arrays).

        Parameters
        ----------
        history : dict of ndarray
            Equal-length arrays ``iteration``, ``loss``, ``norm`` and optionally
            ``alignment``, ``corrected_alignment``, ``subspace_error``.
        entropy : float, default=None
            Entropy bound ``H`` to draw in the loss panel.
        loss_infimum : float, default=None
            Loss infimum ``L*`` to draw in the loss panel when it exceeds ``H``.
        ax : array-like of 4 matplotlib Axes, default=None
            Panels to draw on; by default a new figure.
        name : str, default=None
            Legend label.
        title : str, default=None
            Title of the figure, e.g. the data set's name.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``plot``.

        Returns
        -------
        display : ImplicitBiasDisplay

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ntp.plotting import ImplicitBiasDisplay
        >>> k = np.arange(1, 11)
        >>> history = dict(iteration=k, loss=2 / k, norm=k, alignment=k / 10,
        ...                corrected_alignment=k / 10, subspace_error=1 / k)
        >>> ImplicitBiasDisplay.from_history(history, entropy=0.1).lines_["norm"]
        <matplotlib.lines.Line2D object at ...>
        """
        check_matplotlib_support(f"{cls.__name__}.from_history")
        display = cls(history=history, entropy=entropy, loss_infimum=loss_infimum, name=name)
        return display.plot(ax=ax, title=title, **kwargs)

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None, title=None, **kwargs):
        """Plot the training history of a fitted NTP estimator.

        Parameters
        ----------
        estimator : fitted NTPLinearClassifier
            Any fitted estimator with ``history_`` and ``entropy_``.
        ax : array-like of 4 matplotlib Axes, default=None
            Panels to draw on (pass an earlier display's ``ax_`` to overlay
            optimizers); by default a new figure.
        name : str, default=None
            Legend label; by default the estimator's solver (e.g. ``"gd"``), or
            its class name if it has none.
        title : str, default=None
            Title of the figure, e.g. the data set's name.
        **kwargs : dict
            Keyword arguments passed to matplotlib's ``plot``.

        Returns
        -------
        display : ImplicitBiasDisplay

        Examples
        --------
        >>> from sklearn_ntp import NTPLinearClassifier
        >>> from sklearn_ntp.datasets import make_toy_ntp_data
        >>> from sklearn_ntp.plotting import ImplicitBiasDisplay
        >>> X, Y, w = make_toy_ntp_data()
        >>> clf = NTPLinearClassifier(max_iter=100).fit(X, Y, sample_weight=w)
        >>> display = ImplicitBiasDisplay.from_estimator(clf)
        >>> display.lines_["loss"].get_label()
        'gd'
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        check_is_fitted(estimator, ["history_", "entropy_"])
        if name is None:
            name = getattr(estimator, "solver", type(estimator).__name__)
        display = cls(history=estimator.history_, entropy=estimator.entropy_,
                      loss_infimum=getattr(estimator, "loss_infimum_", None), name=name)
        return display.plot(ax=ax, title=title, **kwargs)


def _legend_label(ax, label):
    """Legend label of a reference line: shown once however many displays overlay."""
    return "_nolegend_" if label in ax.get_legend_handles_labels()[1] else label


def _same_level(loss_infimum, entropy):
    """Whether ``L*`` equals ``H`` up to rounding (nothing more to draw)."""
    return entropy is not None and abs(loss_infimum - entropy) <= 1e-9 * max(1.0, abs(entropy))


def _annotate(ax, text, y=0.5):
    """Write ``text`` across ``ax`` at height ``y`` (once, however many displays overlay)."""
    if not ax.texts:
        ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va="center",
                color="0.3", fontsize="small")


def _mark_if_empty(ax, values, reason):
    """Say why a panel is empty (``reason``) instead of showing empty axes."""
    if np.all(np.isnan(values)):
        _annotate(ax, reason)
        ax.set_yticks([])
