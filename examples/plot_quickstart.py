"""
==========
Quickstart
==========

Fit a linear next-token decoder on the paper's overparameterized synthetic
data and compare it with the two objects that gradient descent converges to:
the finite log-odds component ``W*`` on the data subspace ``F`` and the
max-NTP-margin direction ``W^mm / ||W^mm||`` on its orthogonal complement
(:ref:`Theorem 2 <theory>`).
"""

# %%
# Data: distinct contexts with sparse next-token distributions
# ------------------------------------------------------------
# :func:`~sklearn_ntp.datasets.make_ntp_data` draws the construction of the
# paper's App. A.2: ``m = 50`` distinct contexts with Gaussian embeddings in
# ``d = 60 > m`` dimensions, ``V = 10`` tokens, and a random support of 6
# tokens per context. ``Y`` holds the empirical next-token distributions (a
# sparse matrix, one row per context) and ``sample_weight`` the number of
# times each context occurs among the 5000 raw (context, token) pairs.
import numpy as np

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import check_ntp_separability, data_subspace

X, Y, sample_weight = make_ntp_data(random_state=0)
print(f"X: {X.shape}, Y: {Y.shape} with {Y.nnz} nonzeros")

# %%
# Since ``d > m``, Lemma 1 guarantees that the data are NTP_H-compatible and
# NTP-separable; :func:`~sklearn_ntp.implicit_bias.check_ntp_separability`
# confirms both conditions and reports the entropy lower bound ``H`` of the
# loss and the maximal NTP margin ``1 / ||W^mm||``.
report = check_ntp_separability(X, Y, sample_weight)
print(report)

# %%
# Gradient descent
# ----------------
# :class:`~sklearn_ntp.NTPLinearClassifier` minimizes the NTP cross-entropy
# on the distinct contexts. We run gradient descent with the paper's step
# size ``0.5`` for 10,000 iterations (``tol=0`` disables the early stop on
# the excess loss).
clf = NTPLinearClassifier(solver="gd", learning_rate=0.5, max_iter=10_000, tol=0.0)
clf.fit(X, Y, sample_weight=sample_weight)

print(f"entropy bound H     = {clf.entropy_:.4f}")
print(f"training loss CE(W) = {clf.loss_curve_[-1]:.4f}")
print(f"score (= -CE)       = {clf.score(X, Y, sample_weight=sample_weight):.4f}")
print(f"||W||               = {np.linalg.norm(clf.coef_):.2f}")

# %%
# The loss approaches ``H`` but can only reach it as ``||W|| -> infinity``:
# every finite decoder puts some probability on tokens outside the supports.
# The predicted distribution of the first context matches its empirical
# distribution on the support and is nearly zero elsewhere.
with np.printoptions(precision=3, suppress=True):
    print("empirical :", Y[0].toarray().ravel())
    print("predicted :", clf.predict_proba(X[:1]).ravel())

# %%
# What gradient descent converges to
# ----------------------------------
# ``finite_component_`` is ``W*``, the unique solution in ``F`` of the
# log-odds equations, and ``margin_direction_`` is ``W^mm / ||W^mm||``. By
# Theorem 2, the projection of ``coef_`` onto ``F`` tends to ``W*`` while the
# rest grows along the max-margin direction:
# ``W_k ~ W* + ||P_perp(W_k)|| W^mm / ||W^mm||``.
F = data_subspace(X, Y, sample_weight)
W = clf.coef_
W_perp = F.project_orthogonal(W)
limit = clf.finite_component_ + np.linalg.norm(W_perp) * clf.margin_direction_

subspace_error = np.linalg.norm(F.project(W) - clf.finite_component_)
alignment = np.vdot(W, clf.margin_direction_) / np.linalg.norm(W)
print(f"||P_F(W) - W*||                 = {subspace_error:.4f}")
print(f"cos(W, W^mm)                    = {alignment:.4f}")
print(f"relative distance to the limit  = {np.linalg.norm(W - limit) / np.linalg.norm(W):.4f}")

# %%
# The subspace component is already close to ``W*``; the direction is not yet
# aligned with ``W^mm`` to the same accuracy, because convergence in direction
# is slow (logarithmic in the number of iterations). The training curves make
# this visible.
# :class:`~sklearn_ntp.plotting.ImplicitBiasDisplay` plots the history that
# the estimator recorded during ``fit``: the loss against ``H``, the norm, the
# cosine with ``W^mm`` (dotted: the cosine of ``W_k - W*``), and the distance
# of the subspace component to ``W*``.
import matplotlib.pyplot as plt

from sklearn_ntp.plotting import ImplicitBiasDisplay

ImplicitBiasDisplay.from_estimator(clf, name="GD, lr = 0.5")
plt.show()
