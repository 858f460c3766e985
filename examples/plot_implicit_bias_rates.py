"""
===============================================
How fast do optimizers reach the implicit bias?
===============================================

Theorem 2 says that gradient descent converges in direction to the NTP-SVM
solution ``W^mm`` while ``P_F(W_k) -> W*``, but only at a logarithmic rate.
This example measures, on the paper's overparameterized data (App. A.2), two
errors against iterations on log-log axes:

* the relative margin gap ``1 - gamma(W_k - W*) / gamma*``, where
  ``gamma(W) = ntp_margin(W) / ||W||`` and ``gamma* = 1 / ||W^mm||`` is the
  largest margin;
* the corrected alignment error ``1 - cos(W_k - W*, W^mm)``.

Dashed lines show the reference rates ``1/log t``, ``1/t`` and ``1/t^2``.
Gradient descent, normalized GD, Adam and SGD follow the slow ``1/log t``
family; the ``accelerated`` solver (Newton steps on the in-support loss,
constant steps on the log of the off-support loss) falls like ``1/t^2`` and
reaches ``cos >= 0.999`` within 1000 iterations.
"""

# %%
import matplotlib.pyplot as plt

from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import log_odds_solution, ntp_svm
from sklearn_ntp.plotting import plot_convergence_rates
from sklearn_ntp.studies import convergence_rate_curve

data = make_ntp_data(random_state=0)
W_star, W_mm = log_odds_solution(*data), ntp_svm(*data)

optimizers = {
    "GD (lr 0.5)": ({"solver": "gd", "learning_rate": 0.5}, 5000),
    "NGD (lr 0.3)": ({"solver": "ngd", "learning_rate": 0.3}, 5000),
    "Adam (lr 0.01)": ({"solver": "adam", "learning_rate": 0.01, "beta_2": 0.99}, 5000),
    "SGD (10 contexts, lr 0.5)": ({"solver": "sgd", "learning_rate": 0.5,
                                   "batch_size": 10}, 5000),
    "accelerated": ({"solver": "accelerated"}, 1000),
}

# %%
# Every run starts from the same LeCun-normal draw and is seeded, so the run
# to ``k`` iterations is the beginning of the run to ``2k``:
# :func:`~sklearn_ntp.studies.convergence_rate_curve` refits on a geometric
# grid of budgets and measures both errors at each.
curves = {name: convergence_rate_curve(params, data, n_iter, W_star, W_mm)
          for name, (params, n_iter) in optimizers.items()}
plot_convergence_rates(curves)
plt.show()

# %%
# Iterations each optimizer needed to reach ``1 - cos <= 1e-2`` and ``1e-3``
# on the grid (None: not within its budget).
for name, (k, _gap, error) in curves.items():
    reached = [int(k[error <= e][0]) if (error <= e).any() else None for e in (1e-2, 1e-3)]
    print(f"{name:<28} 0.99: {reached[0]}   0.999: {reached[1]}")
