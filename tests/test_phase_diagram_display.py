"""PhaseDiagramDisplay: drawn cells against the study's table, Cover's line."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklearn_ntp.plotting import PhaseDiagramDisplay  # noqa: E402


def table(n_tokens, support_size):
    m = np.array([4, 4, 4, 8, 8])
    d = np.array([6, 2, 4, 4, 8])
    return {"n_contexts": m, "n_features": d, "n_tokens": np.full(5, n_tokens),
            "support_size": np.full(5, support_size),
            "separable_fraction": np.array([1.0, 0.0, 0.5, 0.25, 1.0]),
            "mean_margin": np.array([2.0, np.nan, 1.0, 0.5, 1.5])}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_cells_are_the_table_sorted_by_ratio():
    display = PhaseDiagramDisplay.from_results(table(5, 2))
    first, second = (mesh.get_array().ravel() for mesh in display.meshes_)
    np.testing.assert_array_equal(first, [0.0, 0.5, 1.0])  # d/m = 0.5, 1, 1.5
    np.testing.assert_array_equal(second, [0.25, 1.0])
    # Cell edges: midpoints between the ratios, half a step beyond the ends.
    edges = display.meshes_[0].get_coordinates()[0, :, 0]
    np.testing.assert_allclose(edges, [0.25, 0.75, 1.25, 1.75])
    assert display.cover_line_ is None
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == ["4", "8"]
    assert display.colorbar_.mappable.get_clim() == (0.0, 1.0)


def test_cover_line_only_for_binary_one_hot():
    display = PhaseDiagramDisplay.from_results(table(2, 1))
    assert list(display.cover_line_.get_xdata()) == [0.5, 0.5]
    assert "Cover" in display.cover_line_.get_label()


def test_other_value_and_axes():
    fig, ax = plt.subplots()
    display = PhaseDiagramDisplay.from_results(table(5, 2), value="mean_margin", ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    assert display.colorbar_.mappable.get_clim() == (0.5, 2.0)


@pytest.mark.parametrize("results, match", [
    ([1, 2], "mapping"),
    ({"n_contexts": [1]}, "lacks"),
    ({**table(5, 2), "n_features": [1, 2]}, "equal length"),
])
def test_invalid_results(results, match):
    with pytest.raises(ValueError, match=match):
        PhaseDiagramDisplay.from_results(results)
