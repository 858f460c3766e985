"""Tracking of iterates against the implicit-bias limits ``W*`` and ``W^mm``.

Theorem 2 of the paper says that gradient descent on the unregularized NTP
loss behaves like ``W_k ~ W* + ||P_perp(W_k)|| W^mm / ||W^mm||``. The tracker
records the quantities that make this visible (alignment with ``W^mm``, with
and without the finite component, and the distance of ``P_F(W_k)`` to ``W*``)
every few iterations. A record keeps only the generator coordinates of
``W_k`` (one pass over the support pairs); the distances to ``W*`` are
computed for all records at once, with one triangular solve.
"""

from dataclasses import dataclass

import numpy as np

from ._exceptions import CertificationError, NotNTPSeparableError
from ._subspace import DataSubspace
from ._svm import ntp_svm


@dataclass(frozen=True)
class ImplicitBiasReference:
    """The limits an NTP iterate is compared with.

    Attributes
    ----------
    subspace : DataSubspace
        The data subspace ``F`` (for ``P_F``).
    finite_component : ndarray of shape (n_tokens, n_features)
        ``W*``, the log-odds solution in ``F`` (least-squares if inexact).
    margin_direction : ndarray of shape (n_tokens, n_features) or None
        ``W^mm / ||W^mm||``, or None when it does not exist.
    issues : tuple of str
        Why a limit is inexact or missing, one sentence each (empty when the
        data are NTP_H-compatible and NTP-separable with some partial support).
    """

    subspace: DataSubspace
    finite_component: np.ndarray
    margin_direction: np.ndarray | None
    issues: tuple


def implicit_bias_reference(data):
    """Compute ``W*`` and ``W^mm / ||W^mm||`` for ``data``.

    Parameters
    ----------
    data : NTPData
        Distinct contexts.

    Returns
    -------
    reference : ImplicitBiasReference
        ``margin_direction`` is None when the data are not NTP-separable or
        every support is full; ``issues`` says so, and also when ``W*`` only
        solves the log-odds equations in the least-squares sense.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import aggregate_contexts
    >>> from sklearn_ntp._tracking import implicit_bias_reference
    >>> data = aggregate_contexts(np.eye(2), np.array([[0.5, 0.5, 0.0], [0, 0, 1]]))
    >>> ref = implicit_bias_reference(data)
    >>> float(np.linalg.norm(ref.margin_direction)), ref.issues
    (1.0, ())
    >>> full = aggregate_contexts(np.eye(2), np.array([[0.5, 0.5], [0.2, 0.8]]))
    >>> implicit_bias_reference(full).issues
    ('Every context supports every token: ...',)
    """
    subspace = DataSubspace(data)
    W_star, residual = subspace.log_odds_solution()
    issues = []
    if not subspace.is_exact(residual):
        issues.append("The data are not NTP_H-compatible: W* is the least-squares "
                      f"log-odds solution (largest residual {residual:.3g}).")
    try:
        W_mm = ntp_svm(data)
    except NotNTPSeparableError:
        W_mm = None
        issues.append("The data are not NTP-separable: there is no max-margin direction.")
    except CertificationError as exc:
        W_mm = None
        issues.append(f"The max-margin direction could not be certified: {exc}")
    if W_mm is not None and not np.any(W_mm):
        W_mm = None
        issues.append("Every context supports every token: the loss attains its "
                      "minimum and there is no max-margin direction.")
    direction = None if W_mm is None else W_mm / np.linalg.norm(W_mm)
    return ImplicitBiasReference(subspace, W_star, direction, tuple(issues))


def _cosine(A, unit):
    norm = np.linalg.norm(A)
    return float(np.vdot(A, unit) / norm) if norm > 0 else np.nan


class HistoryTracker:
    """Record the objective at every iterate and a snapshot every ``every`` ones.

    Solvers call :meth:`record` once per iterate ``W_k`` (``k = 0`` is the
    initialization) and :meth:`finish` once at the end; they must not modify
    a recorded ``W`` in place.

    Parameters
    ----------
    entropy : float
        The entropy lower bound ``H`` of the data.
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

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._tracking import HistoryTracker
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
                 total=None):
        self.entropy = entropy
        self.total = total
        self.every = every
        self.reference = reference
        self.verbose = verbose
        self.print_every = print_every
        self._losses = []
        self._snapshots = []
        self._coordinates = []
        self._last = None

    def record(self, k, W, objective, ce):
        """Store the objective at ``W_k`` (and a snapshot if ``k`` is due)."""
        self._losses.append(objective)
        self._last = (k, W, ce)
        if k % self.every == 0:
            self._snapshots.append(self._snapshot(k, W, ce))
        if self.verbose and k % self.print_every == 0:
            self._print(k, W, ce)

    def finish(self):
        """Make sure the last recorded iterate has a snapshot."""
        if self._last is None:
            return
        k, W, ce = self._last
        if not self._snapshots or self._snapshots[-1][0] != k:
            self._snapshots.append(self._snapshot(k, W, ce))
        if self.verbose and k % self.print_every:
            self._print(k, W, ce)

    def _snapshot(self, k, W, ce):
        row = (k, ce, float(np.linalg.norm(W)))
        ref = self.reference
        if ref is None:
            return row
        W = np.asarray(W, dtype=np.float64)
        self._coordinates.append(ref.subspace.coordinates(W))
        if ref.margin_direction is None:
            return row + (np.nan, np.nan)
        return row + (_cosine(W, ref.margin_direction),
                      _cosine(W - ref.finite_component, ref.margin_direction))

    def _print(self, k, W, ce):
        step = f"iteration {k:7d}"
        if self.total:
            step += f"/{self.total} ({100 * k / self.total:3.0f}%)"
        line = f"{step}  excess loss {ce - self.entropy:.4e}  ||W|| {np.linalg.norm(W):.4e}"
        ref = self.reference
        if ref is not None and ref.margin_direction is not None:
            line += f"  alignment {_cosine(np.asarray(W, float), ref.margin_direction):.6f}"
        print(line, flush=True)

    @property
    def loss_curve(self):
        """Objective value at every recorded iterate, ndarray of shape (n_iter + 1,)."""
        return np.asarray(self._losses, dtype=np.float64)

    @property
    def history(self):
        """Snapshots as a dict of equal-length arrays."""
        names = ["iteration", "loss", "norm"]
        if self.reference is not None:
            names += ["alignment", "corrected_alignment"]
        columns = list(zip(*self._snapshots)) or [()] * len(names)
        history = {name: np.asarray(col, dtype=np.float64)
                   for name, col in zip(names, columns)}
        history["iteration"] = history["iteration"].astype(np.intp)
        if self.reference is not None:
            ref = self.reference
            history["subspace_error"] = (
                ref.subspace.distances(np.array(self._coordinates), ref.finite_component)
                if self._coordinates else np.zeros(0))
        return history
