"""Tracking of iterates against the implicit-bias limit ``(W~, U~)``.

Gradient descent on the unregularized NTP loss behaves like
``W_k ~ W~ + ||P_perp(W_k)|| U~ / ||U~||`` (Theorem 2 of the paper when the
data are compatible and separable, with ``W~ = W*`` and ``U~ = W^mm``; the
general limit of :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`
otherwise). The tracker records the quantities that make this visible
(alignment with ``U~``, with and without the finite component, and the
distance of ``P_G(W_k)`` to ``W~``) every few iterations. A record keeps
only the generator coordinates of ``W_k`` (one pass over the support pairs);
the distances to ``W~`` are computed for all records at once, with one triangular solve.
"""

from dataclasses import dataclass

import numpy as np

from .._geometry._limit import implicit_bias_limit
from .._geometry._subspace import DecoderSubspace
from .._utils._array_api import frobenius_norm, from_host, namespace, stack_to_host


@dataclass(frozen=True)
class ImplicitBiasReference:
    """The limits an NTP iterate is compared with.

    Attributes
    ----------
    subspace : DecoderSubspace
        The subspace ``G`` of the effective supports (for ``P_G``; ``F`` when
        the data are NTP-separable).
    finite_component : ndarray of shape (n_tokens, n_features)
        ``W~``, the finite part of the limit (``W*`` on compatible, separable data).
    margin_direction : ndarray of shape (n_tokens, n_features) or None
        ``U~ / ||U~||`` (``W^mm / ||W^mm||`` when separable), or None when no
        off-support pair is separable (then gradient descent converges).
    loss_infimum : float
        ``L* = inf CE`` (``H`` on compatible, separable data).
    issues : tuple of str
        Which part of the limit is not certified, one sentence each (empty
        when every certificate holds).
    """

    subspace: DecoderSubspace
    finite_component: np.ndarray
    margin_direction: np.ndarray | None
    loss_infimum: float
    issues: tuple


def implicit_bias_reference(data, limit=None):
    """The limit ``(W~, U~ / ||U~||, L*)`` of gradient descent on ``data``.

    Parameters
    ----------
    data : NTPData
        Distinct contexts.
    limit : ImplicitBiasLimit, default=None
        A limit already computed for ``data`` (e.g. ``report.limit``);
        computed by :func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`
        when None.

    Returns
    -------
    reference : ImplicitBiasReference
        ``margin_direction`` is None when no off-support pair is separable
        (non-separable data, or every support full); ``issues`` names the
        parts of the limit whose certificate does not hold.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> from sklearn_ntp._solvers._tracking import implicit_bias_reference
    >>> data = aggregate_contexts(np.eye(2), np.array([[0.5, 0.5, 0.0], [0, 0, 1]]))
    >>> ref = implicit_bias_reference(data)
    >>> round(float(np.linalg.norm(ref.margin_direction)), 12), ref.issues
    (1.0, ())
    >>> full = aggregate_contexts(np.eye(2), np.array([[0.5, 0.5], [0.2, 0.8]]))
    >>> implicit_bias_reference(full).margin_direction is None
    True
    """
    if limit is None:
        limit = implicit_bias_limit(data)
    issues = () if limit.certified else (
        f"The implicit-bias limit is not fully certified: {limit.status.rstrip('.')}.",)
    return ImplicitBiasReference(limit.effective_subspace, limit.finite_component,
                                 limit.margin_direction, limit.loss_infimum, issues)


def same_contexts(a, b):
    """Whether two NTPData hold the same distinct contexts, weights and tokens
    (so that a limit computed for one is the limit of the other)."""
    return a is b or (
        a.embeddings.shape == b.embeddings.shape
        and a.probabilities.shape == b.probabilities.shape
        and np.array_equal(a.embeddings, b.embeddings)
        and np.array_equal(a.weights, b.weights)
        and np.array_equal(a.classes, b.classes)
        and (a.probabilities != b.probabilities).nnz == 0
    )


def _cosine(A, unit):
    norm = np.linalg.norm(A)
    return float(np.vdot(A, unit) / norm) if norm > 0 else np.nan


class _DeviceReference:
    """The reference limits on the device of the iterates, for sync-free snapshots.

    Cosines with ``W^mm`` and the coordinates of ``P_G(W_k)``
    (:meth:`DecoderSubspace.coordinate_map`) are computed on the device; the
    coordinates are whitened into distances on the host once, at the end.
    """

    def __init__(self, subspace, direction, finite, W):
        xp, _ = namespace(W)
        move = lambda a: from_host(np.asarray(a), xp, W.device, W.dtype)  # noqa: E731
        self.xp = xp
        self.coordinates = subspace.coordinate_map(W)
        self.direction = None if direction is None else move(direction)
        self.finite = move(finite)

    def _cosine(self, A):
        xp = self.xp
        return xp.sum(A * self.direction) / xp.linalg.vector_norm(A)

    def snapshot(self, W, user, coordinates):
        """Coordinates of the solver's iterate ``W``; angles of the user's ``user``."""
        coordinates.append(self.coordinates(W))
        if self.direction is None:
            return (np.nan, np.nan)
        return (self._cosine(user), self._cosine(user - self.finite))


class HistoryTracker:
    """Record the objective at every iterate and a snapshot every ``every`` ones.

    Solvers call :meth:`record` once per iterate ``W_k`` (``k = 0`` is the
    initialization) and :meth:`finish` once at the end; they must not modify
    a recorded ``W`` in place.

    Parameters
    ----------
    entropy : float
        The entropy lower bound ``H`` of the data (progress lines show the
        excess loss over ``reference.loss_infimum`` instead when given).
    every : int, default=1
        Take a snapshot at iterations that are multiples of ``every``; the last
        iterate is always recorded by :meth:`finish`.
    reference : ImplicitBiasReference, default=None
        Limits to compare the snapshots with; without it, snapshots hold only
        the iteration, loss and norm.
    verbose : int, default=0
        Print a progress line every ``print_every`` iterations when positive.
    print_every : int, default=1
        Period of the progress lines.
    total : int, default=None
        Iteration budget; when given, progress lines show ``k/total`` and the
        percentage done.
    scaling : FeatureScaling, default=None
        When the solver runs on contexts rescaled column-wise (see
        :mod:`sklearn_ntp._data._scaling`) and ``reference`` is their limit: norms
        and angles are then those of the given problem's decoders, and the
        subspace distances too when the scale is uniform (those of the
        rescaled problem otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._solvers._tracking import HistoryTracker
    >>> tracker = HistoryTracker(entropy=0.5, every=2)
    >>> for k in range(4):
    ...     tracker.record(k, np.full((2, 2), k), 1.0 / (k + 1), 1.0 / (k + 1))
    >>> tracker.finish()
    >>> tracker.history["iteration"]
    array([0, 2, 3])
    >>> tracker.loss_curve
    array([1.        , 0.5       , 0.33333333, 0.25      ])
    """

    def __init__(self, entropy, *, every=1, reference=None, verbose=0, print_every=1,
                 total=None, scaling=None):
        self.entropy = entropy
        self.total = total
        self.every = every
        self.reference = reference
        self.scaling = scaling
        self._finite, self._direction = _user_limits(reference, scaling)
        self.verbose = verbose
        self.print_every = print_every
        self._losses = []
        self._snapshots = []
        self._coordinates = []
        self._last = None
        self._device = None

    def record(self, k, W, objective, ce):
        """Store the objective at ``W_k`` (and a snapshot if ``k`` is due)."""
        self._losses.append(objective)
        self._last = (k, W, ce)
        if k % self.every == 0:
            self._snapshots.append(self._snapshot(k, W, ce))
        if self.verbose and k % self.print_every == 0:
            self._print(k, W, ce)

    def rewind(self, k, W, ce):
        """Forget the records after iterate ``k`` (a snapshot iterate ``W`` with ``ce``)."""
        del self._losses[k + 1:]
        kept = sum(1 for row in self._snapshots if row[0] <= k)
        del self._snapshots[kept:]
        del self._coordinates[kept:]  # empty without a reference
        self._last = (k, W, ce)

    def finish(self):
        """Make sure the last recorded iterate has a snapshot."""
        if self._last is None:
            return
        k, W, ce = self._last
        if not self._snapshots or self._snapshots[-1][0] != k:
            self._snapshots.append(self._snapshot(k, W, ce))
        if self.verbose and k % self.print_every:
            self._print(k, W, ce)

    def _user(self, W):
        """The given problem's decoder, up to the exact factor of a uniform scale."""
        return W if self.scaling is None else self.scaling.relative_coef(W)

    def _norm(self, user):
        norm = frobenius_norm(user)
        return norm if self.scaling is None else self.scaling.unit_norm(norm)

    def _snapshot(self, k, W, ce):
        user = self._user(W)
        row = (k, ce, self._norm(user))
        ref = self.reference
        if ref is None:
            return row
        if not isinstance(W, np.ndarray):  # on W's device, without a sync
            if self._device is None:
                self._device = _DeviceReference(ref.subspace, self._direction, self._finite,
                                                W)
            return row + self._device.snapshot(W, user, self._coordinates)
        self._coordinates.append(ref.subspace.coordinates(np.asarray(W, dtype=np.float64)))
        if self._direction is None:
            return row + (np.nan, np.nan)
        user = np.asarray(user, dtype=np.float64)
        return row + (_cosine(user, self._direction),
                      _cosine(user - self._finite, self._direction))

    def _print(self, k, W, ce):
        step = f"iteration {k:7d}"
        if self.total:
            step += f"/{self.total} ({100 * k / self.total:3.0f}%)"
        ref = self.reference
        infimum = self.entropy if ref is None else ref.loss_infimum
        user = np.asarray(self._user(W), dtype=np.float64)
        line = f"{step}  excess loss {ce - infimum:.4e}  ||W|| {float(self._norm(user)):.4e}"
        if self._direction is not None:
            line += f"  alignment {_cosine(user, self._direction):.6f}"
        print(line, flush=True)

    @property
    def loss_curve(self):
        """Objective value at every recorded iterate, ndarray of shape (n_iter + 1,)."""
        return stack_to_host(self._losses)

    @property
    def history(self):
        """Snapshots as a dict of equal-length arrays."""
        names = ["iteration", "loss", "norm"]
        if self.reference is not None:
            names += ["alignment", "corrected_alignment"]
        columns = list(zip(*self._snapshots)) or [()] * len(names)
        history = {name: stack_to_host(list(col)) for name, col in zip(names, columns)}
        history["iteration"] = history["iteration"].astype(np.intp)
        if self.reference is not None:
            ref = self.reference
            history["subspace_error"] = (
                ref.subspace.distances(stack_to_host(self._coordinates), ref.finite_component)
                if self._coordinates else np.zeros(0))
            if self.scaling is not None and self.scaling.uniform:
                history["subspace_error"] = self.scaling.unit_norm(history["subspace_error"])
        return history


def _user_limits(reference, scaling):
    """``(W~, U~ / ||U~||)`` of the given problem, up to a uniform scale's factor."""
    if reference is None:
        return None, None
    if scaling is None or scaling.uniform:
        return reference.finite_component, reference.margin_direction
    return (scaling.relative_coef(reference.finite_component),
            scaling.direction(reference.margin_direction))
