"""
==========================================
Gradient descent, normalized GD and Adam
==========================================

The paper's Fig. 4-5: three optimizers trained on the same overparameterized
data from the same LeCun-normal initialization, with the paper's
hyper-parameters (GD with step 0.5, normalized GD with step 0.01, Adam with
step 0.01 and ``beta_2 = 0.99``). All three show the implicit bias of
Theorem 2 (which is proved for GD only): the loss tends to the entropy bound
``H``, the norm grows, the direction aligns with the NTP-SVM solution
``W^mm``, and the projection on the data subspace converges to ``W*``.
Normalized GD and Adam decrease the loss faster; in direction they are not
faster in the long run (beyond about ``1e4`` steps the alignments run
together).
"""

# %%
import matplotlib.pyplot as plt

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.plotting import ImplicitBiasDisplay

X, Y, sample_weight = make_ntp_data(random_state=0)

optimizers = {
    "GD (lr 0.5)": {"solver": "gd", "learning_rate": 0.5},
    "NGD (lr 0.01)": {"solver": "ngd", "learning_rate": 0.01},
    "Adam (lr 0.01)": {"solver": "adam", "learning_rate": 0.01, "beta_2": 0.99},
}

# %%
# Every estimator records its training history every ``history_every``
# iterations. Passing the panels (``ax_``) of the first display to the next
# ones overlays the curves.
display = None
fitted = {}
for name, params in optimizers.items():
    clf = NTPLinearClassifier(**params, max_iter=10_000, tol=0.0, init="lecun",
                              random_state=0, history_every=10)
    fitted[name] = clf.fit(X, Y, sample_weight=sample_weight)
    display = ImplicitBiasDisplay.from_estimator(
        clf, name=name, ax=None if display is None else display.ax_)
display.figure_.suptitle("Implicit bias of three optimizers (paper Fig. 4-5)")
plt.show()

# %%
# The final values, as in the paper's discussion: after 10,000 iterations
# all three decoders are close to ``W* + ||P_perp(W_k)|| W^mm / ||W^mm||``.
print(f"{'optimizer':<16}{'CE - H':>10}{'||W||':>9}{'cos(W, W^mm)':>15}"
      f"{'cos(W - W*, W^mm)':>20}{'||P_F(W) - W*||':>18}")
for name, clf in fitted.items():
    h = clf.history_
    print(f"{name:<16}{h['loss'][-1] - clf.entropy_:>10.2e}{h['norm'][-1]:>9.2f}"
          f"{h['alignment'][-1]:>15.4f}{h['corrected_alignment'][-1]:>20.4f}"
          f"{h['subspace_error'][-1]:>18.4f}")
