"""Metrics and scorers for next-token prediction.

Prediction metrics, ``metric(y_true, y_prob, ...)`` like scikit-learn's:

* :func:`ntp_cross_entropy` — the NTP loss of predicted distributions;
* :func:`entropy_lower_bound` — its lower bound ``H``, from ``y_true`` alone
  (``entropy_lower_bound(y_true, X=None, sample_weight=None)``, also exported
  by :mod:`sklearn_ntp.implicit_bias`);
* :func:`excess_ntp_loss` — ``CE - H``, a weighted KL divergence;
* :func:`out_of_support_mass` — probability predicted off the supports;
* :func:`log_odds_error` — error of the in-support log-odds.

Decoder geometry, for a matrix ``W`` of shape (n_tokens, n_features):

* :func:`ntp_margin` — worst in-support over out-of-support logit gap;
* :func:`margin_alignment` — cosine between two decoders (e.g. with ``W^mm``);
* :func:`token_cosine_similarity` — cosine of every token's rows in two decoders;
* :func:`decoder_similarity` — a rotation-invariant similarity of two decoders
  (e.g. a language model's and one fitted on its hidden states).

Scorers for ``scoring=`` (negated metrics, greater is better):
``neg_ntp_cross_entropy_scorer``, ``neg_excess_ntp_loss_scorer`` and
``neg_out_of_support_mass_scorer``.
"""

from ._decoders import decoder_similarity, token_cosine_similarity
from ._ntp_metrics import (
    entropy_lower_bound,
    excess_ntp_loss,
    log_odds_error,
    margin_alignment,
    ntp_cross_entropy,
    ntp_margin,
    out_of_support_mass,
)
from ._scorers import (
    neg_excess_ntp_loss_scorer,
    neg_ntp_cross_entropy_scorer,
    neg_out_of_support_mass_scorer,
)

__all__ = [
    "ntp_cross_entropy",
    "entropy_lower_bound",
    "excess_ntp_loss",
    "out_of_support_mass",
    "log_odds_error",
    "ntp_margin",
    "margin_alignment",
    "token_cosine_similarity",
    "decoder_similarity",
    "neg_ntp_cross_entropy_scorer",
    "neg_excess_ntp_loss_scorer",
    "neg_out_of_support_mass_scorer",
]
