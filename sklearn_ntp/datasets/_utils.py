"""Helpers shared by the dataset generators: argument checks and counting."""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state


def check_count(value, name, minimum=1, allow_none=False):
    """Return ``value`` as an int if it is an integer ``>= minimum``, else raise.

    ``None`` passes through when ``allow_none`` is True. Booleans are rejected:
    ``True`` as a count is almost always a misplaced flag.
    """
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_flag(value, name):
    """Return ``value`` if it is a bool, else raise a ValueError naming it."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return value


def check_seed(random_state):
    """scikit-learn's ``check_random_state``, with an error that names ``random_state``.

    numpy's own message for an integer out of range speaks of a "Seed" only.
    """
    try:
        return check_random_state(random_state)
    except ValueError as exc:
        raise ValueError(
            f"random_state must be None, an integer between 0 and 2**32 - 1 or a "
            f"numpy.random.RandomState, got {random_state!r} ({exc})."
        ) from None


def empirical_distributions(rows, cols, counts, shape):
    """Next-token distributions from (context, token, count) triples.

    Duplicate ``(row, col)`` entries are summed. Returns the row-normalized CSR
    matrix of shape ``shape`` (sorted indices) and the row totals as floats.
    """
    C = sp.csr_matrix((np.asarray(counts, dtype=np.float64), (rows, cols)), shape=shape)
    C.sum_duplicates()
    totals = np.asarray(C.sum(axis=1)).ravel()
    Y = sp.csr_matrix(sp.diags(1.0 / totals) @ C)
    Y.sort_indices()
    return Y, totals
