"""Simulation studies built on the exact geometry, parallel through joblib.

* :func:`separability_phase_diagram` — how often random NTP data are
  NTP-separable and NTP_H-compatible, over a grid of ``(m, d)`` (the open
  question of the paper's Remark 1);
* :func:`convergence_rate_curve` — margin gap and alignment error of an
  optimizer's iterates on a geometric grid of iteration budgets (drawn by
  :func:`sklearn_ntp.plotting.plot_convergence_rates`).

The draws run through :class:`joblib.Parallel`, so any joblib backend
applies: ``with joblib.parallel_backend("dask"):`` spreads them over a
``dask.distributed`` cluster. Results do not depend on the backend.
"""

from ._phase_diagram import separability_phase_diagram
from ._rates import convergence_rate_curve

__all__ = ["convergence_rate_curve", "separability_phase_diagram"]
