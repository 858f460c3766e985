"""Power-of-two rescaling of the contexts' columns, undone exactly in the decoder.

Dividing column ``j`` of the contexts by ``s_j`` and multiplying column ``j``
of the decoder by it leaves every logit ``W h`` unchanged: a solver may run on
``h' = h / s`` and ``W' = W s`` (column-wise) and return ``W = W' / s``. With
``s_j = 2^{k_j}`` both maps are exact in binary floating point
(:func:`numpy.ldexp`) wherever the results are representable, so nothing is
rounded on the way in or out.

The estimator uses this twice:

* a **uniform** power of two near the largest column's scale when that
  scale is extreme. At scales such as ``1e-300`` or ``1e-155`` the
  smoothness constant ``L`` (a square of that scale) and the step ``1 / L``
  under- and overflow, and the loss's products lose their precision; on the
  rescaled contexts they are of order one. A uniform scale changes nothing
  else: gradient descent makes the same iterates up to the factor, and its
  limit (``W~``, the direction ``U~``, ``L*``) is the same.
* **per-column** powers of two for the step-size solvers with
  ``learning_rate="auto"``, and for lbfgs (whose minimizer they do not
  change): the diagonal of the smoothness bound
  ``sum_j pi_j h_j h_j^T / 2 + alpha I`` is then nearly constant (a Jacobi
  preconditioner, rounded to powers of two), so one step fits every column.
  On raw tabular data, whose columns can differ by a factor ``1e4`` in scale,
  plain gradient descent needs ``~1e7`` times more iterations. Columns whose
  scale is within a factor :data:`COLUMN_BAND` of the median are left alone,
  so on embeddings with comparable columns (e.g. Gaussian ones) the scale is
  uniform and ``"auto"`` is gradient descent on the given features.
"""

import math
from dataclasses import dataclass

import numpy as np

from .._utils._array_api import frobenius_norm, from_host, namespace, to_host
from ._ntp_data import NTPData, _freeze

#: Columns whose scale is within this factor of the median column scale keep
#: the uniform scale; the others are rescaled to it (a power of two).
COLUMN_BAND = 2.0
#: Contexts whose median column scale lies within ``2^-b`` and ``2^b`` for this
#: ``b`` keep their uniform scale: every quantity of the solvers is then far
#: inside float64's range, and fits reuse a limit held for the given data.
UNIFORM_SAFE_BITS = 64
#: Bits below the largest exponent of the dtype left to a rescaled decoder's
#: entries: a column of scale ``2^k`` needs coefficients of order ``2^-k``.
DECODER_HEADROOM_BITS = 24


def times_powers_of_two(W, exponents):
    """``W * 2 ** exponents`` (column-wise), exact on the host, in ``W``'s namespace."""
    xp, on_host = namespace(W)
    if on_host:
        return np.ldexp(W, exponents).astype(W.dtype, copy=False)
    return W * from_host(np.ldexp(1.0, exponents), xp, W.device, W.dtype)


@dataclass(frozen=True)
class FeatureScaling:
    """Column ``j`` of the contexts is divided by ``2 ** exponents[j]``.

    Attributes
    ----------
    exponents : ndarray of int, shape (n_features,)
        The powers of two ``k_j``.
    base : int, default=0
        The uniform part: every ``k_j`` when the scale is uniform.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._data._scaling import FeatureScaling
    >>> scaling = FeatureScaling(np.array([3, -1]))
    >>> W = np.array([[1.0, 2.0]])
    >>> scaling.to_scaled(W), scaling.from_scaled(scaling.to_scaled(W))
    (array([[8., 1.]]), array([[1., 2.]]))
    """

    exponents: np.ndarray
    base: int = 0

    @property
    def relative(self):
        """``k_j - base``: zero for every column when the scale is uniform."""
        return self.exponents - self.base

    @property
    def uniform(self):
        """Whether every column has the same scale."""
        return not np.any(self.relative)

    @property
    def identity(self):
        """Whether the contexts are used as given."""
        return not np.any(self.exponents)

    @property
    def scale(self):
        """The column scales ``2 ** k_j``, ndarray of shape (n_features,)."""
        return np.ldexp(1.0, self.exponents)

    def contexts(self, data):
        """``data`` with its contexts divided column-wise by the scales."""
        if self.identity:
            return data
        H = np.ldexp(data.embeddings, -self.exponents).astype(data.embeddings.dtype)
        return _freeze(NTPData(H, data.probabilities, data.weights, data.classes,
                               data.context_index))

    def to_scaled(self, W):
        """The decoder ``W s`` of the rescaled contexts."""
        return W if self.identity else times_powers_of_two(W, self.exponents)

    def from_scaled(self, W):
        """The decoder ``W / s`` of the given contexts."""
        return W if self.identity else times_powers_of_two(W, -self.exponents)

    def relative_coef(self, W):
        """``W / s`` up to the exact factor ``2 ** -base``: the given contexts'
        decoder at the magnitude of the rescaled one, for norms and angles."""
        return W if self.uniform else times_powers_of_two(W, -self.relative)

    def direction(self, U):
        """The unit direction of the given problem along the rescaled one's ``U``."""
        if U is None or self.uniform:
            return U
        U = self.relative_coef(U)
        return U / np.linalg.norm(U)

    def unit_norm(self, value):
        """A norm of :meth:`relative_coef` in the given problem's units (exact)."""
        return value if self.base == 0 else value * math.ldexp(1.0, -self.base)

    def gradient_norm(self, grad):
        """``||grad_W||_F`` of the given problem from the gradient in ``W'``.

        ``W = W' / s`` makes ``grad_W = grad_W' s`` (column-wise).
        """
        grad = grad if self.uniform else times_powers_of_two(grad, self.relative)
        with np.errstate(over="ignore"):
            return float(np.ldexp(float(frobenius_norm(grad)), self.base))


def column_scale_exponents(embeddings, weights, alpha=0.0, per_column=False):
    """The powers of two by which the estimator divides the contexts' columns.

    The scale of column ``j`` is ``c_j = sqrt(sum_i pi_i h_ij^2 + 2 alpha)``,
    the square root of twice the ``j``-th diagonal entry of the smoothness
    bound ``sum_i pi_i h_i h_i^T / 2 + alpha I``; it is computed without
    squaring the entries, so no scale under- or overflows.

    Parameters
    ----------
    embeddings : ndarray of shape (n_contexts, n_features)
        Distinct contexts ``h_i``.
    weights : ndarray of shape (n_contexts,)
        Context weights ``pi_i`` summing to one.
    alpha : float, default=0.0
        Ridge strength.
    per_column : bool, default=False
        Rescale every column whose scale is not within :data:`COLUMN_BAND`
        of the median column scale to that scale; otherwise all columns
        share one power of two.

    Returns
    -------
    scaling : FeatureScaling
        Its ``base`` is the power of two nearest the median column scale
        (per column) or the largest one (otherwise), over the columns of
        positive scale, when that scale is beyond ``2 ** UNIFORM_SAFE_BITS``
        or below its inverse, and zero otherwise.

    Raises
    ------
    ValueError
        If a column is so small that its coefficients would overflow the dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._data._scaling import column_scale_exponents
    >>> H, pi = np.array([[1.0, 3.0, 1000.0], [-1.0, 1.0, 3000.0]]), np.array([0.5, 0.5])
    >>> column_scale_exponents(H, pi).exponents
    array([0, 0, 0])
    >>> column_scale_exponents(H, pi, per_column=True).exponents
    array([-1,  0, 10])
    >>> column_scale_exponents(1e-300 * H, pi).exponents
    array([-985, -985, -985])
    """
    H = np.asarray(to_host(embeddings), dtype=np.float64)
    top = np.max(np.abs(H), axis=0) if H.shape[0] else np.zeros(H.shape[1])
    safe = np.where(top > 0, top, 1.0)
    rms = top * np.sqrt(np.asarray(weights, dtype=np.float64) @ (H / safe) ** 2)
    with np.errstate(divide="ignore"):
        log_scale = np.log2(np.hypot(rms, np.sqrt(2.0 * alpha)))
    positive = np.isfinite(log_scale)
    if not np.any(positive):  # all contexts zero, no penalty: nothing to scale
        return FeatureScaling(np.zeros(H.shape[1], dtype=int))
    # Per column, every column is brought to the median one; one power of two
    # for all keeps the largest column (which sets L and the products) in range.
    reference = float(np.median(log_scale[positive]) if per_column
                      else np.max(log_scale[positive]))
    base = int(np.rint(reference)) if abs(reference) > UNIFORM_SAFE_BITS else 0
    exponents = np.full(H.shape[1], base)
    if per_column:
        offset = np.where(positive, log_scale - reference, 0.0)
        far = np.abs(offset) > np.log2(COLUMN_BAND)
        exponents = exponents + np.where(far, np.rint(offset), 0).astype(int)
    dtype = np.asarray(embeddings).dtype
    if exponents.min() < -(np.finfo(dtype).maxexp - DECODER_HEADROOM_BITS):
        j = int(np.argmin(exponents))
        raise ValueError(
            f"X's column {j} has the scale {float(np.exp2(log_scale[j])):.3g}: a decoder "
            f"of such contexts needs coefficients beyond the range of {dtype}; rescale X "
            "(e.g. with StandardScaler).")
    return FeatureScaling(exponents, base)
