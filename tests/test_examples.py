"""Every gallery example runs to completion (the documentation build does not run them)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))
#: Each example must stay well under a minute on two cores; this is a hard stop.
TIMEOUT_SECONDS = 120


def test_gallery_is_not_empty():
    assert len(EXAMPLES) >= 6, f"expected the gallery examples in {EXAMPLES_DIR}"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, tmp_path):
    # A fresh interpreter per example: the Agg backend, no state shared between
    # examples, and any file an example writes lands in a temporary directory.
    # One BLAS thread: on small matrices extra threads only add contention.
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, (
        f"{path.name} failed with exit code {result.returncode}:\n{result.stderr[-4000:]}"
    )
