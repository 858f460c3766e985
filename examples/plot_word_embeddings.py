"""
==============================================
Word-embedding geometry of a 2-D toy
==============================================

The paper's Fig. 1-2: three contexts ``A, B, C`` embedded in the plane, five
tokens, and supports of three tokens each. The rows of the decoder ``W`` are
word embeddings. Gradient descent builds them from two parts: the max-margin
solution ``W^mm``, whose geometry depends only on *which* tokens follow each
context, and the finite component ``W*``, which depends on the
*probabilities* of those tokens.
"""

# %%
# The data
# --------
# :func:`~sklearn_ntp.datasets.make_toy_ntp_data` draws the toy: token 2
# follows context ``A`` only, every other token follows two contexts.
# With ``m = 3`` contexts in ``d = 2`` dimensions Lemma 1 does not apply; the
# generator redraws until the data are NTP_H-compatible and NTP-separable.
import matplotlib.pyplot as plt
import numpy as np

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import make_toy_ntp_data
from sklearn_ntp.implicit_bias import log_odds_solution, ntp_svm
from sklearn_ntp.plotting import (
    ImplicitBiasDisplay,
    plot_probability_matrix,
    plot_word_embeddings,
)

X, Y, sample_weight = make_toy_ntp_data(random_state=0)
plot_probability_matrix(Y)
plt.show()

# %%
# The two components
# ------------------
# :func:`~sklearn_ntp.plotting.plot_word_embeddings` computes ``W^mm`` (with
# :func:`~sklearn_ntp.implicit_bias.ntp_svm`) and ``W*`` (with
# :func:`~sklearn_ntp.implicit_bias.log_odds_solution`) and draws the
# contexts as points labelled with their supports and the rows of each matrix
# as arrows. Tokens with the same support pattern (they follow exactly the
# same contexts) get the same row of ``W^mm``.
plot_word_embeddings(X, Y, sample_weight=sample_weight)
plt.show()

# %%
# Same supports, other probabilities
# ----------------------------------
# Redraw the probabilities inside the same supports: ``W^mm`` does not move,
# ``W*`` does. (With more contexts than dimensions the new draw need not be
# NTP_H-compatible; ``allow_inexact=True`` then returns the least-squares
# solution in ``F``.)
rng = np.random.default_rng(1)
Y_new = Y.copy()
for j in range(Y.shape[0]):
    start, stop = Y_new.indptr[j], Y_new.indptr[j + 1]
    Y_new.data[start:stop] = rng.dirichlet(np.ones(stop - start))

W_mm, W_mm_new = ntp_svm(X, Y, sample_weight), ntp_svm(X, Y_new, sample_weight)
W_star, W_star_new = (log_odds_solution(X, Y, sample_weight, allow_inexact=True),
                      log_odds_solution(X, Y_new, sample_weight, allow_inexact=True))
print(f"change of W^mm: {np.linalg.norm(W_mm_new - W_mm):.2e}")
print(f"change of W*  : {np.linalg.norm(W_star_new - W_star):.2e}")

# %%
# Gradient descent on the toy
# ---------------------------
# Trained by gradient descent, the decoder follows Theorem 2: its projection
# on the data subspace approaches ``W*`` and its direction approaches
# ``W^mm``. In the plane, the learned word embeddings therefore line up with
# the arrows of ``W^mm`` drawn above, shifted by ``W*``.
clf = NTPLinearClassifier(solver="gd", learning_rate=0.5, max_iter=20_000, tol=0.0,
                          history_every=20)
clf.fit(X, Y, sample_weight=sample_weight)
ImplicitBiasDisplay.from_estimator(clf, name="GD, lr = 0.5")
plt.show()
