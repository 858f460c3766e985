"""The automatic step size: ``learning_rate="auto"`` from the loss's smoothness.

The Hessian of the NTP cross-entropy is ``sum_j pi_j (diag(s_j) - s_j s_j^T)
kron h_j h_j^T`` with ``s_j = softmax(W h_j)``; the softmax covariance has
spectral norm at most 1/2, so the gradient is Lipschitz with constant

    L = lambda_max(sum_j pi_j h_j h_j^T) / 2 (+ alpha with the ridge penalty),

whatever ``W``. Gradient descent decreases the objective for every step
below ``2 / L``, and ``1 / L`` is the step with the largest guaranteed
decrease ``||grad||^2 / (2 L)`` (the descent lemma).

Stochastic gradients need their own step: the loss of one context (or one
(context, token) pair) is only ``L_max``-smooth, ``L_max = max_j ||h_j||^2 / 2
(+ alpha)``, which can exceed ``L`` by up to the factor ``1 / min_j pi_j``
(see :func:`auto_learning_rate`).
"""

import numpy as np

from .._linalg._spectral import EXACT_MAX_ORDER, largest_gram_eigenvalue

#: Step of normalized GD, in units of ``1 / sqrt(L)``: ``W`` moves by ``eta``
#: per step, so near a minimizer it hovers at a distance ``~ eta / 2``, an
#: excess loss ``~ L eta^2 / 8``: about ``1e-3`` with this factor. On the
#: paper's App. A.2 data it gives 0.062 (the paper uses 0.01).
NGD_FACTOR = 0.1
#: Step of Adam, in units of ``1 / sqrt(L)``: Adam moves every coordinate of
#: ``W`` by about ``eta`` per step. On the paper's App. A.2 data it gives 0.014
#: (the paper uses 0.01).
ADAM_FACTOR = 0.02


def smoothness_constant(embeddings, weights, alpha=0.0):
    """Lipschitz constant ``L`` of the gradient of ``CE(W) + (alpha/2)||W||^2``.

    Parameters
    ----------
    embeddings : ndarray of shape (n_contexts, n_features)
        Distinct contexts ``h_j`` (with the constant column when an intercept
        is fitted).
    weights : ndarray of shape (n_contexts,)
        Context weights ``pi_j`` summing to one.
    alpha : float, default=0.0
        Ridge strength.

    Returns
    -------
    L : float
        ``lambda_max(H^T diag(pi) H) / 2 + alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._solvers._step_size import smoothness_constant
    >>> L = smoothness_constant(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0.5, 0.5]))
    >>> round(L, 12)  # lambda_max = 0.5 * 2**2, halved
    1.0
    """
    # sqrt(pi_j) h_j: lambda_max(A^T A) is the squared largest singular value of A.
    A = np.sqrt(np.asarray(weights, dtype=np.float64))[:, None] * np.asarray(
        embeddings, dtype=np.float64)
    return largest_gram_eigenvalue(A, EXACT_MAX_ORDER) / 2.0 + alpha


def context_smoothness(data, alpha=0.0):
    """``L_max = max_j ||h_j||^2 / 2 + alpha``: the smoothness of one context's loss.

    The loss of context ``j`` alone has the Hessian ``(diag(s_j) - s_j s_j^T)
    kron h_j h_j^T``, of norm at most ``||h_j||^2 / 2``; so does the loss of one
    (context, token) pair.

    Parameters
    ----------
    data : NTPData
        Distinct contexts (their cached norms ``||h_j||``).
    alpha : float, default=0.0
        Ridge strength.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> from sklearn_ntp._solvers._step_size import context_smoothness
    >>> context_smoothness(aggregate_contexts(np.array([[2.0, 0.0], [0.0, 1.0]]), [0, 1]))
    2.0
    """
    return float(np.max(data.context_norms)) ** 2 / 2.0 + alpha


def auto_learning_rate(solver, L, L_max=None, batch_size=None):
    """The step ``learning_rate="auto"`` gives ``solver`` for smoothness ``L``.

    ``1 / L`` for gradient descent (the largest guaranteed decrease),
    ``0.1 / sqrt(L)`` for normalized GD and ``0.02 / sqrt(L)`` for Adam, whose
    steps have a length of their own (see :data:`NGD_FACTOR` and
    :data:`ADAM_FACTOR`). When ``L = 0`` (all embeddings zero, no penalty)
    the gradient vanishes and any step will do: 1.

    SGD over ``b`` independent draws (``batch_size``; None for full-batch
    gradient descent, which gets ``1 / L``) steps along ``g = (1/b) sum_t
    grad f_{i_t}``, where each ``f_i`` (the loss of one sampled context or
    pair) is ``L_max``-smooth and ``E grad f_i = grad CE``. The variance of a
    draw splits ``E ||g||^2 = (1 - 1/b) ||grad CE||^2 + E ||grad f_i||^2 / b``,
    and with it the curvature the step must respect: the expected smoothness
    of ``g`` is ``L_b = (1 - 1/b) L + L_max / b`` (Gower et al., "SGD:
    General Analysis and Improved Rates", ICML 2019), and the step is
    ``1 / L_b``. For ``b = 1`` that is ``1 / L_max``: every step is then a
    descent step on the loss of the context it samples, however rare the
    context; as ``b`` grows it tends to gradient descent's ``1 / L``. The
    gradient-descent step ``1 / L`` is ``L_max / L`` times larger (a ratio of
    up to ``1 / min_j pi_j``), too large for single draws.

    Parameters
    ----------
    solver : str
        The solver's name.
    L : float
        Smoothness constant of the objective (:func:`smoothness_constant`).
    L_max : float, default=None
        Smoothness of one context's loss (:func:`context_smoothness`);
        needed by sgd with a ``batch_size``.
    batch_size : int, default=None
        Independent draws per sgd step; None when every step uses the full
        gradient.

    Returns
    -------
    learning_rate : float

    Examples
    --------
    >>> from sklearn_ntp._solvers._step_size import auto_learning_rate
    >>> auto_learning_rate("gd", 4.0), auto_learning_rate("ngd", 4.0)
    (0.25, 0.05)
    >>> auto_learning_rate("sgd", 4.0, L_max=20.0, batch_size=1)  # 1 / L_max
    0.05
    >>> auto_learning_rate("sgd", 4.0, L_max=20.0, batch_size=4)  # 1 / (3 + 5)
    0.125
    """
    if L <= 0.0:
        return 1.0
    factors = {"ngd": NGD_FACTOR, "adam": ADAM_FACTOR}
    if solver in factors:
        return factors[solver] / float(np.sqrt(L))
    if solver == "sgd" and batch_size is not None:
        L = (1.0 - 1.0 / batch_size) * L + L_max / batch_size
    return 1.0 / L
