"""
===================================================
Tuning the learning rate with NTP scorers
===================================================

:class:`~sklearn_ntp.NTPLinearClassifier` is an ordinary scikit-learn
classifier, so its hyper-parameters can be tuned with
:class:`~sklearn.model_selection.GridSearchCV`. This example tunes the
learning rate of each solver at a fixed budget of iterations, on real
next-token statistics with soft targets, and scores held-out contexts with
the NTP scorers of :mod:`sklearn_ntp.metrics`.

Three details matter with soft targets:

* the targets are a probability matrix, so the folds must come from
  :class:`~sklearn.model_selection.KFold` (stratified splits need labels);
* each row is a distinct context with a frequency: ``sample_weight`` goes to
  ``fit`` and, through metadata routing, to the scorers;
* the scorers compare ``predict_proba`` with the held-out distributions,
  against the entropy lower bound of the held-out data.
"""

# %%
# Data: the next token after two Python tokens
# --------------------------------------------
# :func:`~sklearn_ntp.datasets.load_python_tokens` tokenizes files of the
# installed Python standard library (no download), keeping the 29 most
# frequent tokens plus ``"<unk>"``.
# :func:`~sklearn_ntp.datasets.contexts_from_sequences` groups the pairs
# (two previous tokens, next token) by context. Each context is embedded as
# the concatenated one-hot codes of its two tokens, so that a model can
# generalize to pairs of tokens it has never seen together.
import matplotlib.pyplot as plt
import numpy as np
from sklearn import config_context
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import contexts_from_sequences, load_python_tokens
from sklearn_ntp.metrics import (
    neg_excess_ntp_loss_scorer,
    neg_ntp_cross_entropy_scorer,
    neg_out_of_support_mass_scorer,
)

lines = load_python_tokens(vocab_size=29, max_files=30)
vocabulary = sorted({token for line in lines for token in line})
position = {token: i for i, token in enumerate(vocabulary)}


def two_hot(context):
    """Concatenated one-hot codes of the two tokens of a context."""
    x = np.zeros(2 * len(vocabulary))
    x[position[context[0]]] = 1.0
    x[len(vocabulary) + position[context[1]]] = 1.0
    return x


X, Y, sample_weight, contexts = contexts_from_sequences(
    lines, context_length=2, embedding=two_hot, vocabulary=vocabulary)
print(f"{X.shape[0]} distinct contexts, {X.shape[1]} features, {Y.shape[1]} tokens, "
      f"{int(sample_weight.sum())} (context, token) pairs")

# %%
# Grid search
# -----------
# One grid per solver: the useful step sizes differ by orders of magnitude.
# ``refit`` selects the model with the best held-out cross-entropy.
param_grid = [
    {"solver": ["gd"], "learning_rate": np.logspace(-1, 2, 7)},
    {"solver": ["ngd"], "learning_rate": np.logspace(-3, 0, 7)},
    {"solver": ["adam"], "learning_rate": np.logspace(-3, 0, 7)},
]
cv = KFold(n_splits=4, shuffle=True, random_state=0)

with config_context(enable_metadata_routing=True):
    scoring = {
        "cross_entropy": neg_ntp_cross_entropy_scorer.set_score_request(sample_weight=True),
        "excess_loss": neg_excess_ntp_loss_scorer.set_score_request(sample_weight=True),
        "out_of_support": neg_out_of_support_mass_scorer.set_score_request(
            sample_weight=True),
    }
    estimator = NTPLinearClassifier(
        max_iter=300, tol=0.0, compute_implicit_bias=False,
    ).set_fit_request(sample_weight=True)
    search = GridSearchCV(estimator, param_grid, scoring=scoring,
                          refit="cross_entropy", cv=cv)
    search.fit(X, Y, sample_weight=sample_weight)

print("best:", search.best_params_,
      f"held-out cross-entropy {-search.best_score_:.3f} nats")

# %%
# Cross-validated scores against the learning rate
# ------------------------------------------------
# Small steps underfit within 300 iterations. Large steps push the decoder's
# norm up quickly: the probability put outside the supports keeps falling,
# but on held-out contexts the model grows over-confident and the
# cross-entropy rises again. The best learning rate balances the two.
results = search.cv_results_
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
panels = [("cross_entropy", "held-out cross-entropy"),
          ("excess_loss", "held-out CE - H"),
          ("out_of_support", "held-out out-of-support mass")]
for solver in ("gd", "ngd", "adam"):
    rows = np.flatnonzero(results["param_solver"] == solver)
    rates = np.asarray(results["param_learning_rate"][rows], dtype=float)
    for ax, (key, title) in zip(axes, panels):
        mean = -results[f"mean_test_{key}"][rows]
        std = results[f"std_test_{key}"][rows]
        ax.errorbar(rates, mean, yerr=std, marker="o", capsize=3, label=solver)
        ax.set(xscale="log", xlabel="learning rate", title=title)
axes[0].legend()
fig.suptitle("4-fold CV over distinct contexts, 300 iterations per fit")
plt.show()
