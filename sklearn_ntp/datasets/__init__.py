"""Data for next-token prediction: synthetic constructions and real token sequences.

* :func:`make_ntp_data` — the paper's random construction (App. A.2);
* :func:`make_toy_ntp_data` — the paper's 2-D, three-context toy (Fig. 1-2);
* :func:`contexts_from_sequences` — distinct contexts and next-token
  distributions from token sequences (fixed windows or all prefixes);
* :func:`load_python_tokens` — token sequences of the installed Python
  standard library, no download needed.
* :func:`next_token_statistics` — distinct contexts of a corpus embedded by a
  language model (any batched ``embed`` function), with their next tokens;
* :func:`hidden_state_embedder`, :func:`lm_decoder` — that ``embed`` function
  and the output embedding matrix of a Hugging Face causal language model
  (``pip install "sklearn-ntp[lm]"``);
* :func:`make_zipf_ntp_data` — Zipfian tokens and heavy-tailed supports at
  language-model sizes.
"""

from ._hf import hidden_state_embedder, lm_decoder
from ._language_model import next_token_statistics
from ._python_tokens import load_python_tokens
from ._sequences import contexts_from_sequences
from ._synthetic import make_ntp_data, make_toy_ntp_data
from ._zipf import make_zipf_ntp_data

__all__ = [
    "contexts_from_sequences",
    "load_python_tokens",
    "make_ntp_data",
    "make_toy_ntp_data",
    "next_token_statistics",
    "hidden_state_embedder",
    "lm_decoder",
    "make_zipf_ntp_data",
]
