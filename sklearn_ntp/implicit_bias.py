"""Exact implicit-bias geometry of next-token prediction.

The objects the paper's theorems are about, computed exactly:

* :func:`aggregate_contexts` — distinct contexts ``(H, P, pi)`` from raw data;
* :func:`entropy_lower_bound`, :func:`ntp_loss`, :func:`ntp_loss_gradient`;
* :func:`data_subspace` — the subspace ``F`` and its projections;
* :class:`DecoderSubspace` — the type of ``F`` and of the limit's ``G``;
* :func:`log_odds_solution` — the finite component ``W*`` on ``F``;
* :func:`ntp_svm` — the max-margin direction ``W^mm`` on ``F``'s complement;
* :func:`check_ntp_separability` — both conditions in one report;
* :func:`implicit_bias_limit` — the limit ``(W~, U~, L*)`` of gradient descent on any data.
"""

from ._data._ntp_data import NTPData, aggregate_contexts
from ._exceptions import CertificationError, NotNTPCompatibleError, NotNTPSeparableError
from ._geometry._limit import ImplicitBiasLimit, implicit_bias_limit
from ._geometry._report import SeparabilityReport, check_ntp_separability
from ._geometry._separable_pairs import SeparablePairsError
from ._geometry._subspace import (
    DataSubspace,
    DecoderSubspace,
    data_subspace,
    log_odds_solution,
)
from ._geometry._svm import ntp_svm
from ._loss._ntp_loss import ntp_loss, ntp_loss_gradient
from ._utils._array_api import newton_device
from .metrics._ntp_metrics import entropy_lower_bound

__all__ = [
    "NTPData",
    "aggregate_contexts",
    "NotNTPCompatibleError",
    "NotNTPSeparableError",
    "CertificationError",
    "entropy_lower_bound",
    "ntp_loss",
    "ntp_loss_gradient",
    "DecoderSubspace",
    "DataSubspace",
    "data_subspace",
    "log_odds_solution",
    "ntp_svm",
    "SeparabilityReport",
    "check_ntp_separability",
    "ImplicitBiasLimit",
    "implicit_bias_limit",
    "SeparablePairsError",
    "newton_device",
]
