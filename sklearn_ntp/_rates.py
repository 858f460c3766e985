"""Rate plot: ``1 - cos(W_k - W*, W^mm)`` against iterations, on log-log axes."""

import numpy as np


def plot_rates(fits, ax=None):
    """Draw ``1 - cos(W_k - W*, W^mm)`` of fitted estimators with reference slopes.

    Parameters
    ----------
    fits : dict of str to NTPLinearClassifier
        Fitted estimators (``compute_implicit_bias=True``), by label.
    ax : matplotlib Axes, default=None
        Where to draw (a new figure if None).

    Returns
    -------
    ax : matplotlib Axes
        With one curve per estimator and dashed references ``1/log t``,
        ``1/t`` and ``1/t^2`` anchored at the first curve's value at ``t = 10``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_ntp import NTPLinearClassifier
    >>> from sklearn_ntp.datasets import make_ntp_data
    >>> from sklearn_ntp._rates import plot_rates
    >>> X, Y, w = make_ntp_data(n_contexts=10, n_features=15, random_state=0)
    >>> clf = NTPLinearClassifier(max_iter=100).fit(X, Y, sample_weight=w)
    >>> plot_rates({"GD": clf}).get_xscale()
    'log'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.figure(figsize=(6, 4.5)).add_subplot()
    for name, clf in fits.items():
        h = clf.history_
        keep = h["iteration"] > 0
        ax.loglog(h["iteration"][keep], 1 - h["corrected_alignment"][keep], label=name)
    t_max = max(clf.history_["iteration"][-1] for clf in fits.values())
    t = np.logspace(1, np.log10(max(t_max, 20)), 50)
    for label, rate in [("1/log t", 1 / np.log(t)), ("1/t", 10 / t), ("1/t^2", 100 / t ** 2)]:
        ax.loglog(t, rate / rate[0] * 0.5, "--", color="gray", lw=0.8)
        ax.annotate(label, (t[-1], rate[-1] / rate[0] * 0.5), fontsize=8, color="gray")
    ax.set(xlabel="iteration k", ylabel="1 - cos(W_k - W*, W^mm)",
           title="Directional convergence rates (App. A.2)")
    ax.legend(fontsize=8)
    return ax
