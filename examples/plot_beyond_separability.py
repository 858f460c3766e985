"""
==========================================
Beyond separability: where GD goes anyway
==========================================

The paper's Theorem 2 needs the data to be NTP_H-compatible and
NTP-separable. Here they are not: one context is twice another but has a
disjoint support, so no decoder can separate both from all their
out-of-support tokens. The loss of gradient descent still tends to its
infimum ``L* > H`` (proved), and the general limit
(:func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`, and the theory
section "Beyond separability") describes where the iterates go, a conjecture
that the run below supports: the projection on the subspace ``G`` of the
effective supports tends to a finite ``W~``, and the rest of ``W_k`` grows
along ``U~``, the max-margin direction on the pairs that can be separated.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import check_ntp_separability

X, Y, w = make_ntp_data(n_contexts=20, vocab_size=8, n_features=30, support_size=3,
                        n_sequences=400, random_state=0)
Y = Y.toarray()
# Context 1 becomes twice context 0 and predicts tokens context 0 never sees.
X[1] = 2 * X[0]
Y[1] = 0.0
Y[1, np.flatnonzero(Y[0] == 0)[:3]] = [0.5, 0.3, 0.2]

report = check_ntp_separability(X, Y, w)
print(report)

# %%
# The report holds the limit: ``loss_infimum`` (``L*``), ``finite_component``
# (``W~``) and ``max_margin_solution`` (``U~``). The estimator computes the
# same limit and tracks its iterates against it in ``history_``; with
# ``tol > 0`` a run would stop once ``CE - L* <= tol``.
clf = NTPLinearClassifier(learning_rate=0.5, max_iter=20_000, tol=0.0, history_every=20)
clf.fit(X, Y, sample_weight=w)
print(f"L* - H = {clf.loss_infimum_ - clf.entropy_:.4f}; "
      f"{report.n_separable_pairs} of {report.n_off_support_pairs} off-support pairs "
      "are separable")

# %%
# Four panels, each against the general limit. Convergence in direction is
# logarithmically slow, as in the separable case; the corrected cosine
# ``cos(W_k - W~, U~)`` removes the finite part that holds the plain one back.
h = clf.history_
k = np.maximum(h["iteration"], 1)
fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), layout="constrained")
axes[0, 0].loglog(k, h["loss"] - clf.loss_infimum_)
axes[0, 0].set_title("excess loss CE(W_k) - L*")
axes[0, 1].semilogx(k, h["norm"])
axes[0, 1].set_title("||W_k||")
axes[1, 0].semilogx(k, h["alignment"], label="cos(W_k, U~)")
axes[1, 0].semilogx(k, h["corrected_alignment"], label="cos(W_k - W~, U~)")
axes[1, 0].legend()
axes[1, 0].set_title("alignment with U~")
axes[1, 1].loglog(k, h["subspace_error"])
axes[1, 1].set_title("||P_G(W_k) - W~||")
for ax in axes.flat:
    ax.set_xlabel("iteration k")
plt.show()
