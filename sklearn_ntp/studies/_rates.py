"""Rates of directional convergence: margin gap and alignment error against iterations.

Runs are seeded, so the run to ``k`` iterations is the beginning of any longer
run: refitting on a geometric grid of budgets gives the iterates at those
budgets without storing every iterate. :func:`~sklearn_ntp.plotting.plot_convergence_rates`
draws the curves.
"""

import numpy as np

from .._classifier import NTPLinearClassifier
from ..metrics._ntp_metrics import ntp_margin


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
    >>> from sklearn_ntp.studies import convergence_rate_curve
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
