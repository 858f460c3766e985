"""Helpers for Array API dispatch (NumPy, array-api-strict, PyTorch, CuPy).

With ``sklearn.set_config(array_api_dispatch=True)`` the solvers run in the
namespace and on the device of ``X``. Everything here keeps NumPy input on its
original code path (Python floats, BLAS buffers), so results without dispatch
are unchanged.

The Newton solves of the implicit-bias limit take their namespace from
:func:`newton_device` (a context, since the limit is computed from host data).
"""

from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn import config_context
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


def vdot(a, b):
    """``sum(a * b)`` over every entry, as a float (one scalar read from a device)."""
    xp, on_host = namespace(a)
    if on_host:
        return float(np.vdot(a, b))
    return float(xp.vecdot(xp.reshape(a, (-1,)), xp.reshape(b, (-1,))))


def norm(a):
    """``||a||`` over every entry, as a float (``np.linalg.norm`` on the host)."""
    xp, on_host = namespace(a)
    return float(np.linalg.norm(a)) if on_host else float(xp.linalg.vector_norm(a))


def copy(array):
    """A copy of ``array`` in its namespace and on its device."""
    xp, on_host = namespace(array)
    return array.copy() if on_host else xp.asarray(array, copy=True)


class NewtonDevice(NamedTuple):
    """Where the Newton solves of the limit run: namespace, device and the dtype
    of their Hessian products (see :class:`~sklearn_ntp._loss._restricted.RestrictedLoss`)."""

    xp: object
    device: object = None
    dtype: object = None


_NEWTON_DEVICE = ContextVar("newton_device", default=None)


@contextmanager
def newton_device(xp, device=None, dtype=None):
    """Run the Newton solves of the limit in ``xp`` on ``device`` within the block.

    Parameters
    ----------
    xp : Array API namespace or module
        E.g. ``torch``, ``cupy`` or ``array_api_strict`` (wrapped in its Array
        API namespace here: the environment needs ``SCIPY_ARRAY_API=1``, as
        for scikit-learn's dispatch).
    device : device, default=None
        A device of ``xp`` (e.g. ``"cuda"``).
    dtype : dtype of ``xp``, default=None
        Precision of the Hessian products and conjugate gradients
        (``xp.float64`` by default; ``xp.float32`` trades accuracy of the
        Newton directions, not of the returned certificate, for speed).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import implicit_bias_limit, newton_device
    >>> with newton_device(np, dtype=np.float32):  # float32 products on the host
    ...     limit = implicit_bias_limit(np.eye(2), [0, 1])
    >>> limit.status
    'certified'
    """
    if not _is_numpy_namespace(xp):
        with config_context(array_api_dispatch=True):
            xp, _ = get_namespace(xp.asarray(0.0))
    token = _NEWTON_DEVICE.set(NewtonDevice(xp, device, dtype))
    try:
        yield
    finally:
        _NEWTON_DEVICE.reset(token)


def current_newton_device():
    """The :class:`NewtonDevice` set by :func:`newton_device`, or None (NumPy)."""
    return _NEWTON_DEVICE.get()
