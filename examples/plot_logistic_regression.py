"""
=====================================================
The ridge path: LogisticRegression and Theorem 1
=====================================================

The NTP loss is an ordinary multinomial logistic loss on *expanded* data: one
row per (context ``j``, in-support token ``z``) with sample weight
``pi_j p_jz``. So scikit-learn's
:class:`~sklearn.linear_model.LogisticRegression` (without intercept) fits
the same model as :class:`~sklearn_ntp.NTPLinearClassifier`, which takes the
soft targets directly.

This example checks that both give the same coefficients, then follows the
regularization path ``C -> infinity`` (that is, ``alpha = 1/C -> 0``) and
shows Theorem 1 at work: the direction of the ridge solution tends to the
NTP-SVM solution ``W^mm``, and its projection on the data subspace ``F``
tends to the finite component ``W*``.
"""

# %%
# Expanded rows
# -------------
# :func:`~sklearn_ntp.implicit_bias.aggregate_contexts` gives the distinct
# contexts ``H``, their weights ``pi`` (summing to one) and the sparse
# next-token distributions ``P``. Each nonzero ``p_jz`` becomes a row
# ``(h_j, z)`` of weight ``pi_j p_jz``.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import (
    aggregate_contexts,
    data_subspace,
    log_odds_solution,
    ntp_svm,
)
from sklearn_ntp.metrics import margin_alignment

X, Y, sample_weight = make_ntp_data(random_state=0)
data = aggregate_contexts(X, Y, sample_weight)
P = data.probabilities
context_of_row = np.repeat(np.arange(data.n_contexts), data.support_sizes)
X_rows = data.embeddings[context_of_row]
y_rows = data.classes[P.indices]
w_rows = data.weights[context_of_row] * P.data
print(f"{data.n_contexts} contexts -> {X_rows.shape[0]} weighted (context, token) rows")

# %%
# Same objective, same coefficients
# ---------------------------------
# With weights summing to one, ``LogisticRegression(C=C)`` minimizes
# ``C * CE(W) + ||W||^2 / 2``, which has the same minimizer as
# ``CE(W) + (alpha / 2) ||W||^2`` for ``alpha = 1 / C``, the objective of
# ``NTPLinearClassifier(alpha=alpha)``.
C = 100.0
logreg = LogisticRegression(C=C, fit_intercept=False, tol=1e-10, max_iter=10_000)
logreg.fit(X_rows, y_rows, sample_weight=w_rows)
ntp = NTPLinearClassifier(solver="lbfgs", alpha=1 / C, tol=1e-8, max_iter=10_000)
ntp.fit(X, Y, sample_weight=sample_weight)

assert np.array_equal(logreg.classes_, ntp.classes_)
gap = np.abs(logreg.coef_ - ntp.coef_).max()
print(f"max |coef difference| = {gap:.1e} (coefficients of size {np.abs(ntp.coef_).max():.2f})")

# %%
# The regularization path
# -----------------------
# As ``C`` grows the penalty vanishes and, the data being NTP-separable, the
# norm of the solution diverges. Theorem 1 predicts its direction and its
# finite part: ``cos(W_C, W^mm) -> 1`` and ``||P_F(W_C) - W*|| -> 0``. We
# compute ``W^mm`` with :func:`~sklearn_ntp.implicit_bias.ntp_svm`, ``W*``
# with :func:`~sklearn_ntp.implicit_bias.log_odds_solution`, and the
# projection ``P_F`` with :func:`~sklearn_ntp.implicit_bias.data_subspace`.
W_mm = ntp_svm(X, Y, sample_weight)
W_star = log_odds_solution(X, Y, sample_weight)
F = data_subspace(X, Y, sample_weight)

Cs = np.logspace(-1, 6, 15)
cosines, errors, norms = [], [], []
for C in Cs:
    with warnings.catch_warnings():
        # At large C lbfgs may stop a hair short of tol=1e-10; the path is still exact enough.
        warnings.simplefilter("ignore", ConvergenceWarning)
        coef = LogisticRegression(C=C, fit_intercept=False, tol=1e-10, max_iter=20_000).fit(
            X_rows, y_rows, sample_weight=w_rows).coef_
    cosines.append(margin_alignment(coef, W_mm))
    errors.append(np.linalg.norm(F.project(coef) - W_star))
    norms.append(np.linalg.norm(coef))

for C, cos, err in zip(Cs[::2], cosines[::2], errors[::2]):
    print(f"C = {C:9.1e}   cos(W_C, W^mm) = {cos:.4f}   ||P_F(W_C) - W*|| = {err:.2e}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
axes[0].semilogx(Cs, norms, marker="o")
axes[0].set(title="norm ||W_C||", xlabel="C = 1 / alpha")
axes[1].semilogx(Cs, cosines, marker="o")
axes[1].axhline(1.0, color="black", linestyle="--", linewidth=1)
axes[1].set(title="cos(W_C, W^mm)", xlabel="C = 1 / alpha")
axes[2].loglog(Cs, errors, marker="o")
axes[2].set(title="||P_F(W_C) - W*||", xlabel="C = 1 / alpha")
fig.suptitle("Theorem 1: the ridge path of LogisticRegression on expanded rows")
plt.show()

# %%
# Like gradient descent, the path converges slowly in direction but fast on
# the data subspace: the finite component ``W*`` is reached long before the
# direction settles on ``W^mm``.
