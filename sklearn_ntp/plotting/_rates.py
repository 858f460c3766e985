"""Drawing rates of directional convergence: margin gap and alignment error.

The curves are computed by :func:`sklearn_ntp.studies.convergence_rate_curve`.
"""

import numpy as np

#: Reference rates drawn as dashed lines: (label, function of t).
REFERENCE_RATES = ((r"$1/\log t$", lambda t: 1 / np.log(t)), (r"$1/t$", lambda t: 1 / t),
                   (r"$1/t^2$", lambda t: 1 / t ** 2))
#: Marker and line style of each curve, in turn: optimizers whose curves
#: coincide (SGD over contexts follows GD) stay visible.
CURVE_STYLES = (("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", (0, (5, 1, 1, 1))))
#: Axis labels (mathtext): the margin gap and the alignment error.
MARGIN_GAP_LABEL = r"$|1 - \gamma(W_k - W^\star) / \gamma^\star|$"
MISALIGNMENT_LABEL = r"$1 - \cos(W_k - W^\star, W^{\mathrm{mm}})$"


def plot_convergence_rates(curves, axes=None):
    """Draw :func:`~sklearn_ntp.studies.convergence_rate_curve` results on log-log axes.

    Parameters
    ----------
    curves : dict of str to (budgets, margin_gap, misalignment)
        One entry per optimizer.
    axes : pair of matplotlib Axes, default=None
        Where to draw (a new figure if None).

    Returns
    -------
    axes : pair of matplotlib Axes
        Margin gap (left) and alignment error (right), each with a legend
        and dashed reference rates ``1/log t``, ``1/t`` and ``1/t^2``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_ntp.plotting import plot_convergence_rates
    >>> k = np.array([1, 10, 100])
    >>> axes = plot_convergence_rates({"GD": (k, 1 / np.log1p(k), 1 / np.log1p(k) ** 2)})
    >>> axes[1].get_yscale()
    'log'
    """
    import matplotlib.pyplot as plt

    if axes is None:
        axes = plt.subplots(1, 2, figsize=(11, 4.5))[1]
    t_max = max(max(curve[0][-1] for curve in curves.values()), 20)
    t = np.geomspace(10, t_max, 50)
    for index, (name, (budgets, gap, error)) in enumerate(curves.items()):
        marker, linestyle = CURVE_STYLES[index % len(CURVE_STYLES)]
        # Hollow markers, larger for earlier curves, which are also drawn on
        # top: a curve lying on a later one still shows.
        style = {"marker": marker, "linestyle": linestyle, "label": name,
                 "markerfacecolor": "none", "ms": 7 - 4 * index / len(curves),
                 "zorder": 3 + len(curves) - index}
        axes[0].loglog(budgets, gap, **style)
        axes[1].loglog(budgets, error, **style)
    for ax in axes:
        for label, rate in REFERENCE_RATES:
            ref = 0.3 * rate(t) / rate(t[0])
            ax.loglog(t, ref, "--", color="gray", lw=0.8)
            ax.annotate(label, (t[-1], ref[-1]), fontsize=8, color="gray")
        ax.set_xlabel("iteration $k$")
        ax.legend(fontsize=8, loc="lower left")
    axes[0].set_ylabel(MARGIN_GAP_LABEL)
    axes[1].set_ylabel(MISALIGNMENT_LABEL)
    axes[0].figure.suptitle("Rates of directional convergence (App. A.2)")
    return axes
