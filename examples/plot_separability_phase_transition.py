"""
==========================================
When are NTP data separable? A simulation
==========================================

Lemma 1 of the paper gives a *sufficient* condition for NTP-separability:
more features than distinct contexts (``d > m``, embeddings of full rank).
Exact thresholds are open (the paper's Remark 1). This example estimates, by
simulation, the probability that random data are NTP-separable as a function
of the ratio ``d / m`` and of the support size ``S``.

For one-hot binary data (``V = 2``, ``S = 1``) the answer is classical.
NTP-separability then says that some ``u = w_1 - w_2`` has
``u^T h_j >= 1`` on the contexts followed by token 1 and ``<= -1`` on the
others: homogeneous linear separability. For ``m`` points in general position
in ``R^d`` with random labels, Cover's function-counting theorem (1965) gives
its probability exactly,

.. math::

   \\Pr[\\text{separable}] = 2^{1-m} \\sum_{k=0}^{d-1} \\binom{m-1}{k},

which jumps from 0 to 1 around ``d / m = 1/2`` as ``m`` grows.
"""

# %%
# Simulation
# ----------
# :func:`~sklearn_ntp.studies.separability_phase_diagram` draws, for every
# pair ``(m, d)``, random data with the construction of
# :func:`~sklearn_ntp.datasets.make_ntp_data` (Gaussian context embeddings,
# uniformly random supports of ``S`` out of ``V`` tokens) and checks each draw
# with :func:`~sklearn_ntp.implicit_bias.check_ntp_separability`, which
# decides separability exactly (a Farkas certificate when infeasible). The
# grid cells run in parallel through joblib; inside
# ``with joblib.parallel_backend("dask"):`` the same call runs on a dask
# cluster, with the same results (every draw has its own seed derived from
# ``random_state``).
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import comb

from sklearn_ntp.plotting import PhaseDiagramDisplay
from sklearn_ntp.studies import separability_phase_diagram

N_CONTEXTS = 24
N_TRIALS = 20
DIMENSIONS = np.arange(2, 31, 2)
#: (vocabulary size V, support size S) of each curve.
SETTINGS = [(2, 1), (5, 1), (5, 2), (5, 3), (5, 4)]

fractions = np.array([
    separability_phase_diagram(
        n_contexts=[N_CONTEXTS], n_features=DIMENSIONS, n_tokens=V, support_size=S,
        n_draws=N_TRIALS, random_state=0, n_jobs=2)["separable_fraction"]
    for V, S in SETTINGS
])

# %%
# Results
# -------
# The dashed line is Cover's exact probability for the binary one-hot case;
# the simulated points follow it up to the sampling error of 20 trials. Every
# curve reaches one at ``d = m``, where the embeddings are linearly
# independent (the argument of Lemma 1).
ratio = DIMENSIONS / N_CONTEXTS
cover = np.array([comb(N_CONTEXTS - 1, np.arange(d)).sum() for d in DIMENSIONS])
cover /= 2.0 ** (N_CONTEXTS - 1)

fig, ax = plt.subplots(figsize=(8.5, 4.5), layout="constrained")
for (V, S), frac in zip(SETTINGS, fractions):
    ax.plot(ratio, frac, marker="o", label=f"V = {V}, S = {S}")
ax.plot(ratio, cover, color="black", linestyle="--", label="Cover 1965 (V = 2, S = 1)")
ax.axvline(1.0, color="0.6", linewidth=1)
ax.annotate("d = m", xy=(1.0, 0.5), xytext=(5, 0), textcoords="offset points")
ax.set(xlabel="d / m", ylabel="estimated P(NTP-separable)",
       title=f"NTP-separability of random data, m = {N_CONTEXTS}")
ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
plt.show()

# %%
# The transition sharpens with ``m``
# ----------------------------------
# The same study over several ``m`` for binary one-hot data, drawn as a heat
# map over ``d / m`` and ``m`` by
# :class:`~sklearn_ntp.plotting.PhaseDiagramDisplay`. The dashed line is
# Cover's threshold ``d / m = 1/2``, drawn because it applies to binary one-hot
# data only; the dotted line is ``d = m``.
binary = separability_phase_diagram(
    n_contexts=[8, 16, 32], n_features=[2, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40],
    n_tokens=2, support_size=1, n_draws=10, random_state=0, n_jobs=2)
binary = {k: v[binary["features_per_context"] <= 1.25] for k, v in binary.items()}
PhaseDiagramDisplay.from_results(binary)
plt.show()

# %%
# Discussion
# ----------
# * Binary one-hot data follow Cover's curve, with the transition at
#   ``d / m = 1/2``.
# * One-hot data with more tokens (``V = 5``, ``S = 1``) are separable with
#   *fewer* features: the decoder has ``V d`` parameters, and each context
#   only needs its one token to beat the others.
# * Larger supports need more features: each context adds ``S - 1``
#   equalities that tie its in-support logits and use up directions of the
#   decoder, while it has fewer out-of-support tokens to beat. With
#   ``S = V - 1`` the transition sits just below ``d = m``, so there Lemma 1's
#   sufficient condition is nearly necessary; for sparse supports it is far
#   from it.
# * Where exactly the transition lies, as a function of ``V`` and the support
#   sizes, is the open question of the paper's Remark 1. Simulations like this
#   one, with larger ``m`` and more trials, are a starting point.
for (V, S), frac in zip(SETTINGS, fractions):
    half = ratio[np.argmax(frac >= 0.5)] if np.any(frac >= 0.5) else np.nan
    print(f"V = {V}, S = {S}: P(separable) first reaches 1/2 at d/m = {half:.2f}")
