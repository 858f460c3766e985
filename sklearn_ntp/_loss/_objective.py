"""The objective ``CE(W) + (alpha / 2) ||W||_F^2`` that every solver minimizes."""

from .._utils._array_api import frobenius_norm


class Objective:
    """Data fit plus penalty, with the convergence test that fits the problem.

    Parameters
    ----------
    datafit : Datafit
        The NTP cross-entropy (see :mod:`~sklearn_ntp._loss._contract`).
    penalty : L2Penalty
        The ridge penalty.
    loss_infimum : float, default=None
        ``L* = inf CE`` when known (see
        :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`); the entropy
        ``H`` of the data otherwise (``L* = H`` on compatible, separable data).
    scaling : FeatureScaling, default=None
        When the data fit's contexts were rescaled column-wise (see
        :mod:`sklearn_ntp._data._scaling`): gradient norms are then those of the
        given problem, so that ``tol`` keeps its meaning.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> from sklearn_ntp._loss._cross_entropy import NTPLoss
    >>> from sklearn_ntp._loss._penalty import L2Penalty
    >>> from sklearn_ntp._loss._objective import Objective
    >>> data = aggregate_contexts(np.eye(2), [0, 1])
    >>> objective = Objective(NTPLoss(data), L2Penalty(0.0))
    >>> value, ce, grad = objective(np.zeros((2, 2)))
    >>> round(value, 4), grad
    (0.6931, array([[-0.25,  0.25],
                    [ 0.25, -0.25]]))
    """

    def __init__(self, datafit, penalty, loss_infimum=None, scaling=None):
        self.datafit = datafit
        self.penalty = penalty
        self.loss_infimum = datafit.entropy if loss_infimum is None else loss_infimum
        self.scaling = scaling

    def __call__(self, W):
        """Return ``(objective, CE, gradient of the objective)`` at ``W``."""
        ce, grad = self.datafit.value_and_grad(W)
        if self.penalty.alpha == 0.0:
            return ce, ce, grad
        grad += self.penalty.grad(W)
        return ce + self.penalty.value(W), ce, grad

    def converged(self, ce, grad, tol):
        """Stopping test at an iterate with cross-entropy ``ce`` and gradient ``grad``.

        Without penalty the infimum ``L*`` is in general not attained, so the
        test is on the excess loss ``CE - L* <= tol``; with ``alpha > 0`` the
        minimizer exists and the test is ``||grad||_F <= tol``.
        """
        if self.penalty.alpha == 0.0:
            return float(ce) - self.loss_infimum <= tol
        return self.gradient_norm(grad) <= tol

    def gradient_norm(self, grad):
        """``||grad||_F`` in the units of the given (not rescaled) problem."""
        if self.scaling is None:
            return float(frobenius_norm(grad))
        return self.scaling.gradient_norm(grad)
