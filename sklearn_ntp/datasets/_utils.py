"""Helpers shared by the dataset generators: argument checks and counting."""

import numbers

import numpy as np
import scipy.sparse as sp


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
