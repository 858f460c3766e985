"""Rates of directional convergence: margin gap and alignment error against iterations.

Runs are seeded, so the run to ``k`` iterations is the beginning of any longer
run: refitting on a geometric grid of budgets gives the iterates at those
budgets without storing every iterate.
"""

import numpy as np

from .._classifier import NTPLinearClassifier
from ..metrics._ntp_metrics import ntp_margin

#: Reference rates drawn as dashed lines: (label, function of t).
REFERENCE_RATES = ((r"$1/\log t$", lambda t: 1 / np.log(t)), (r"$1/t$", lambda t: 1 / t),
                   (r"$1/t^2$", lambda t: 1 / t ** 2))
#: Marker and line style of each curve, in turn: optimizers whose curves
#: coincide (SGD over contexts follows GD) stay visible.
CURVE_STYLES = (("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", (0, (5, 1, 1, 1))))
#: Axis labels (mathtext): the margin gap and the alignment error.
MARGIN_GAP_LABEL = r"$|1 - \gamma(W_k - W^\star) / \gamma^\star|$"
MISALIGNMENT_LABEL = r"$1 - \cos(W_k - W^\star, W^{\mathrm{mm}})$"


def convergence_rate_curve(params, data, n_iter, W_star, W_mm, *, seed=0, n_points=12):
    """Margin gap and ``1 - cos(W_k - W*, W^mm)`` on a geometric grid of ``k``.

    Parameters
    ----------
    params : dict
        Estimator parameters (``solver``, steps, ...).
    data : tuple (X, Y, sample_weight)
        Training data.
    n_iter : int
        Largest budget.
    W_star, W_mm : ndarray of shape (n_tokens, n_features)
        The finite component and the NTP-SVM solution.
    seed : int, default=0
        Seed of the LeCun-normal initialization (and of SGD's sampling).
    n_points : int, default=12
        Budgets on the grid.

    Returns
    -------
    budgets, margin_gap, misalignment : ndarray
        ``|1 - gamma(W_k - W*) / gamma*|`` with ``gamma(W) = ntp_margin(W) / ||W||``
        and ``gamma* = 1 / ||W^mm||``, and ``1 - cos(W_k - W*, W^mm)``.

    Examples
    --------
    >>> from sklearn_ntp.datasets import make_ntp_data
    >>> from sklearn_ntp.implicit_bias import log_odds_solution, ntp_svm
    >>> from sklearn_ntp.plotting import convergence_rate_curve
    >>> data = make_ntp_data(n_contexts=10, n_features=15, random_state=0)
    >>> k, gap, err = convergence_rate_curve({"solver": "gd"}, data, 100, log_odds_solution(*data),
    ...                                      ntp_svm(*data), n_points=3)
    >>> k.tolist(), bool(err[-1] < err[0])
    ([1, 10, 100], True)
    """
    X, Y, w = data
    budgets = np.unique(np.geomspace(1, n_iter, n_points).astype(int))
    unit = W_mm / np.linalg.norm(W_mm)
    gaps, errors = [], []
    for k in budgets:
        clf = NTPLinearClassifier(**{**params, "max_iter": int(k), "tol": 0.0,
                                     "init": "lecun", "random_state": seed, "verbose": 0,
                                     "compute_implicit_bias": False})
        D = clf.fit(X, Y, sample_weight=w).coef_ - W_star
        norm = np.linalg.norm(D)
        gaps.append(abs(1 - ntp_margin(D, X, Y, sample_weight=w) * np.linalg.norm(W_mm) / norm))
        errors.append(1 - np.vdot(D, unit) / norm)
    return budgets, np.array(gaps), np.array(errors)


def plot_convergence_rates(curves, axes=None):
    """Draw :func:`convergence_rate_curve` results on log-log axes with reference slopes.

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
