"""The automatic step size: ``learning_rate="auto"`` from the loss's smoothness.

The Hessian of the NTP cross-entropy is ``sum_j pi_j (diag(s_j) - s_j s_j^T)
kron h_j h_j^T`` with ``s_j = softmax(W h_j)``; the softmax covariance has
spectral norm at most 1/2, so the gradient is Lipschitz with constant

    L = lambda_max(sum_j pi_j h_j h_j^T) / 2 (+ alpha with the ridge penalty),

whatever ``W``. Gradient descent decreases the objective for every step
below ``2 / L``, and ``1 / L`` is the step with the largest guaranteed
decrease ``||grad||^2 / (2 L)`` (the descent lemma).
"""

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

#: Up to this size of the smaller side of ``H`` the eigenvalue is exact
#: (``eigvalsh`` of a Gram matrix of at most this order); above it, Lanczos.
EXACT_MAX_ORDER = 1000
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
    >>> from sklearn_ntp._step_size import smoothness_constant
    >>> L = smoothness_constant(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0.5, 0.5]))
    >>> round(L, 12)  # lambda_max = 0.5 * 2**2, halved
    1.0
    """
    # sqrt(pi_j) h_j: lambda_max(A^T A) is the squared largest singular value of A.
    A = np.sqrt(np.asarray(weights, dtype=np.float64))[:, None] * np.asarray(
        embeddings, dtype=np.float64)
    if min(A.shape) <= EXACT_MAX_ORDER:
        gram = A.T @ A if A.shape[1] <= A.shape[0] else A @ A.T
        top = float(np.linalg.eigvalsh(gram)[-1])
    else:
        operator = LinearOperator((A.shape[1],) * 2, matvec=lambda v: A.T @ (A @ v),
                                  dtype=np.float64)
        top = float(eigsh(operator, k=1, which="LA", tol=1e-8,
                          return_eigenvectors=False)[0])
    return max(top, 0.0) / 2.0 + alpha


def auto_learning_rate(solver, L):
    """The step ``learning_rate="auto"`` gives ``solver`` for smoothness ``L``.

    ``1 / L`` for gradient descent (the largest guaranteed decrease),
    ``0.1 / sqrt(L)`` for normalized GD and ``0.02 / sqrt(L)`` for Adam, whose
    steps have a length of their own (see :data:`NGD_FACTOR` and
    :data:`ADAM_FACTOR`). When ``L = 0`` (all embeddings zero, no penalty)
    the gradient vanishes and any step will do: 1.

    Examples
    --------
    >>> from sklearn_ntp._step_size import auto_learning_rate
    >>> auto_learning_rate("gd", 4.0), auto_learning_rate("ngd", 4.0)
    (0.25, 0.05)
    """
    if L <= 0.0:
        return 1.0
    factors = {"ngd": NGD_FACTOR, "adam": ADAM_FACTOR}
    if solver in factors:
        return factors[solver] / float(np.sqrt(L))
    return 1.0 / L
