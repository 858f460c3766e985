"""Stochastic gradient steps for the NTP loss (paper footnote 8).

Two ways to sample the data, both unbiased for ``grad CE``:

* ``"contexts"``: ``batch_size`` distinct contexts drawn with probability
  ``pi_j`` (with replacement, repeats merged into weights), each with its full
  next-token distribution ``p_j``: ``g = sum_b w_b (softmax(W h_b) - p_b) h_b^T``.
  With ``batch_size >= n_contexts`` every context is used with weight ``pi_j``:
  the step is exactly gradient descent.
* ``"tokens"``: ``batch_size`` raw (context, next token) pairs drawn with
  probability ``pi_j p_jz``, each with its one-hot target, as language-model
  training on sequences does: ``g = mean_b (softmax(W h_b) - e_{z_b}) h_b^T``.

The step is ``eta`` (``"constant"``) or ``eta / sqrt(k)`` at step ``k``
(``"inverse_sqrt"``, the Robbins-Monro schedule that averages the noise out).
The ridge penalty's gradient, which needs no sampling, is added exactly.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state


class SGDStep:
    """``step(W, grad, t)`` that replaces ``grad`` by a sampled gradient.

    Parameters
    ----------
    datafit : Datafit
        The full loss; each step takes the gradient of its view on the drawn
        rows (:meth:`~sklearn_ntp._loss._cross_entropy.NTPLoss.rows`).
    options : SolverOptions
        ``learning_rate``, ``batch_size``, ``sampling``, ``step_schedule``,
        ``random_state``.
    W0 : ndarray
        Initial matrix (for the dtype).
    penalty : L2Penalty, default=None
        The ridge penalty, whose exact gradient joins every sampled one.
    """

    def __init__(self, datafit, options, W0, penalty=None):
        data = datafit.data
        self.datafit = datafit
        self.options = options
        self.penalty = None if penalty is None or penalty.alpha == 0.0 else penalty
        self.rng = check_random_state(options.random_state)
        m = data.n_contexts
        self.batch_size = m if options.batch_size is None else options.batch_size
        self.full_batch = options.sampling == "contexts" and self.batch_size >= m
        self.probabilities = np.asarray(data.weights, dtype=np.float64)
        if options.sampling == "tokens":  # (context, token) pairs, in the order of P's nonzeros
            P = data.probabilities
            self.pair_rows, self.pair_tokens = data.support_rows, P.indices
            self.probabilities = self.probabilities[self.pair_rows] * P.data
        self.probabilities = self.probabilities / self.probabilities.sum()

    def _eta(self, t):
        eta = self.options.learning_rate
        return eta / np.sqrt(t) if self.options.step_schedule == "inverse_sqrt" else eta

    def _sample(self):
        """Drawn contexts, their targets (None: their rows of ``P``) and weights summing to one."""
        draws = self.rng.choice(len(self.probabilities), size=self.batch_size,
                                p=self.probabilities)
        picked, counts = np.unique(draws, return_counts=True)
        weights = counts / self.batch_size
        if self.options.sampling == "contexts":
            return picked, None, weights
        n, V = len(picked), self.datafit.shape[0]
        targets = sp.csr_matrix((np.ones(n), self.pair_tokens[picked], np.arange(n + 1)),
                                shape=(n, V))
        return self.pair_rows[picked], targets, weights

    def __call__(self, W, grad, t):
        if self.full_batch:
            return W - self._eta(t) * grad
        sampled = self._sampled_gradient(W)
        if self.penalty is not None:
            sampled = sampled + self.penalty.grad(W)
        return W - self._eta(t) * sampled

    def _sampled_gradient(self, W):
        """The cross-entropy's gradient over one drawn batch (the draw is made on
        the host; the view computes on ``W``'s device)."""
        rows, targets, weights = self._sample()
        return self.datafit.rows(rows, weights, targets).gradient(W)
