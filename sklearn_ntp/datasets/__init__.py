"""Data for next-token prediction: synthetic constructions and real token sequences.

* :func:`make_ntp_data` — the paper's random construction (App. A.2);
* :func:`make_toy_ntp_data` — the paper's 2-D, three-context toy (Fig. 1-2);
* :func:`contexts_from_sequences` — distinct contexts and next-token
  distributions from token sequences (fixed windows or all prefixes);
* :func:`load_python_tokens` — token sequences of the installed Python
  standard library, no download needed.
"""

from ._python_tokens import load_python_tokens
from ._sequences import contexts_from_sequences
from ._synthetic import make_ntp_data, make_toy_ntp_data

__all__ = [
    "contexts_from_sequences",
    "load_python_tokens",
    "make_ntp_data",
    "make_toy_ntp_data",
]
