"""Helpers for Array API dispatch (NumPy, array-api-strict, PyTorch, CuPy).

With ``sklearn.set_config(array_api_dispatch=True)`` the first-order solvers
run in the namespace and on the device of ``X``. Everything here keeps NumPy
input on its original code path (Python floats, BLAS buffers), so results
without dispatch are unchanged.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils._array_api import (
    _convert_to_numpy,
    _is_numpy_namespace,
    get_namespace,
)

_host_norm = getattr(np.linalg, "vector_norm", np.linalg.norm)


def namespace(*arrays):
    """``(xp, on_host)``: the arrays' namespace, and whether it is NumPy itself."""
    xp, _ = get_namespace(*arrays)
    return xp, _is_numpy_namespace(xp)


def to_host(array):
    """``array`` as a NumPy array if it is an array of another namespace.

    Sparse matrices, lists, NumPy arrays and None pass through unchanged.
    """
    if array is None or sp.issparse(array) or isinstance(array, (np.ndarray, list, tuple)):
        return array
    xp, on_host = namespace(array)
    return array if on_host else _convert_to_numpy(array, xp)


def frobenius_norm(A):
    """``||A||_F``: a float for NumPy, a 0-d array (no device sync) otherwise."""
    xp, on_host = namespace(A)
    # NumPy's vector_norm is what array-api-strict computes: normalized GD, which
    # amplifies rounding, then takes identical steps in both (NumPy >= 2).
    return float(_host_norm(A)) if on_host else xp.linalg.vector_norm(A)


def scalar(value, on_host):
    """A float on the host; elsewhere the 0-d array itself (no device sync)."""
    return float(value) if on_host else value


def in_host_memory(A):
    """Whether reading a scalar of ``A`` costs no device transfer."""
    return "cpu" in str(getattr(A, "device", "cpu")).lower()


def stack_to_host(values):
    """A list of floats or NumPy arrays, or of arrays of one other namespace (0-d
    scalars, or rows of equal length), as one float64 NumPy array."""
    if not values or isinstance(values[0], (float, int, np.number, np.ndarray)):
        return np.asarray(values, dtype=np.float64)
    xp, _ = namespace(values[0])
    return _convert_to_numpy(xp.stack(values), xp).astype(np.float64)


def from_host(array, xp, device, dtype=None):
    """A NumPy array in namespace ``xp`` on ``device`` (writable first: torch
    warns about sharing read-only memory, such as that of NTPData)."""
    return xp.asarray(np.require(array, requirements="W"), dtype=dtype, device=device)
