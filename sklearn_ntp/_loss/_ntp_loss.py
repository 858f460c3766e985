"""Public functions for the NTP objective: loss and gradient.

Its lower bound is :func:`~sklearn_ntp.metrics.entropy_lower_bound`.
"""

import numpy as np
from sklearn.utils._param_validation import validate_params

from .._data._ntp_data import NTPData, as_ntp_data, check_decoder
from ._cross_entropy import NTPLoss


def _loss_at(W, X, y, sample_weight):
    data = as_ntp_data(X, y, sample_weight)
    return NTPLoss(data, dtype=np.float64).value_and_grad(check_decoder(W, data))


#: Argument types of the loss functions (values are checked by the ``_data`` checks).
_LOSS_PARAMS = {"W": ["array-like"], "X": ["array-like", NTPData],
                "y": ["array-like", "sparse matrix", None],
                "sample_weight": ["array-like", None]}


@validate_params(_LOSS_PARAMS, prefer_skip_nested_validation=True)
def ntp_loss(W, X, y=None, sample_weight=None):
    """NTP cross-entropy ``CE(W)`` of a decoder on the data's distinct contexts.

    ``CE(W) = -sum_j pi_j sum_{z in S_j} p_jz log softmax_z(W h_j)``, computed
    with log-sum-exp (finite at any norm of ``W``).

    Parameters
    ----------
    W : array-like of shape (n_tokens, n_features)
        Decoder (rows are word embeddings).
    X : array-like of shape (n_samples, n_features) or NTPData
        Context embeddings, or aggregated data.
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights; the loss is normalized by their total.

    Returns
    -------
    loss : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import ntp_loss
    >>> X = np.eye(2)
    >>> Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    >>> round(ntp_loss(np.zeros((3, 2)), X, Y), 6)  # log 3 at W = 0
    1.098612
    """
    return _loss_at(W, X, y, sample_weight)[0]


@validate_params(_LOSS_PARAMS, prefer_skip_nested_validation=True)
def ntp_loss_gradient(W, X, y=None, sample_weight=None):
    """Gradient ``sum_j pi_j (softmax(W h_j) - p_j) h_j^T`` of the NTP loss.

    Parameters
    ----------
    W : array-like of shape (n_tokens, n_features)
        Decoder.
    X : array-like of shape (n_samples, n_features) or NTPData
        Context embeddings, or aggregated data.
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights.

    Returns
    -------
    grad : ndarray of shape (n_tokens, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import ntp_loss_gradient
    >>> ntp_loss_gradient(np.zeros((2, 1)), np.ones((2, 1)), [0, 1])
    array([[0.],
           [0.]])
    """
    return _loss_at(W, X, y, sample_weight)[1]
