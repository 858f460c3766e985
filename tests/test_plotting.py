"""Plots: the ImplicitBiasDisplay panels and the word-embedding geometry.

Drawn data are checked against the estimator's history and against naive
references (cvxpy NTP-SVM, the explicit Kronecker log-odds system, a plain
entropy sum), never against the plotting code itself.
"""

import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from _reference import (  # noqa: E402
    explicit_separable_pairs,
    kronecker_log_odds_solution,
    naive_ntp_svm,
)
from matplotlib.axes import Axes  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from sklearn_ntp import NTPLinearClassifier  # noqa: E402
from sklearn_ntp.datasets import make_ntp_data, make_toy_ntp_data  # noqa: E402
from sklearn_ntp.plotting import (  # noqa: E402
    ImplicitBiasDisplay,
    plot_convergence_rates,
    plot_probability_matrix,
    plot_word_embeddings,
)
from sklearn_ntp.plotting._implicit_bias import (  # noqa: E402
    NOT_TRACKED,
    TRIVIAL_SUBSPACE,
)

HISTORY_KEYS = ["iteration", "loss", "norm", "alignment", "corrected_alignment",
                "subspace_error"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def small_data():
    return make_ntp_data(n_contexts=8, vocab_size=5, n_features=10, support_size=3,
                         n_sequences=200, random_state=0)


@pytest.fixture(scope="module")
def fitted(small_data):
    X, Y, w = small_data
    params = {"gd": 0.5, "ngd": 0.05, "adam": 0.05}
    return {solver: NTPLinearClassifier(solver=solver, learning_rate=eta, max_iter=150,
                                        tol=0.0, history_every=5).fit(X, Y, sample_weight=w)
            for solver, eta in params.items()}


def naive_entropy(Y, w):
    P, pi = Y.toarray(), w / w.sum()
    logs = np.log(P, out=np.zeros_like(P), where=P > 0)
    return -float(np.sum(pi[:, None] * P * logs))


def curve_lines(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() != "--"]


def test_from_estimator_draws_history_in_four_panels(fitted, small_data):
    clf = fitted["gd"]
    display = ImplicitBiasDisplay.from_estimator(clf)
    assert display.ax_.shape == (4,)
    assert all(isinstance(ax, Axes) for ax in display.ax_)
    assert display.figure_ is display.ax_[0].figure
    assert sorted(display.lines_) == sorted(HISTORY_KEYS[1:])
    # Iteration 0 has no place on the log axis: every later snapshot is drawn.
    later = clf.history_["iteration"] > 0
    assert later.sum() == len(later) - 1
    for key, line in display.lines_.items():
        np.testing.assert_array_equal(line.get_xdata(), clf.history_["iteration"][later])
        np.testing.assert_array_equal(line.get_ydata(), clf.history_[key][later])
    assert [len(curve_lines(ax)) for ax in display.ax_] == [1, 1, 2, 1]
    assert all(ax.get_ylabel() for ax in display.ax_)
    # The dashed line is the entropy bound, computed here from the raw data.
    assert display.entropy_line_.get_linestyle() == "--"
    assert display.entropy_line_.get_ydata()[0] == pytest.approx(naive_entropy(*small_data[1:]))
    assert display.lines_["loss"].get_label() == "gd"
    assert all(ax.get_xscale() == "log" for ax in display.ax_)


def test_one_color_per_display_across_panels(fitted):
    display = ImplicitBiasDisplay.from_estimator(fitted["gd"])
    assert len({line.get_color() for line in display.lines_.values()}) == 1
    red = ImplicitBiasDisplay.from_estimator(fitted["gd"], color="red")
    assert {line.get_color() for line in red.lines_.values()} == {"red"}


def test_overlay_of_several_optimizers(fitted):
    ax = None
    for solver, clf in fitted.items():
        display = ImplicitBiasDisplay.from_estimator(clf, ax=ax, name=solver.upper())
        if ax is not None:
            assert all(a is b for a, b in zip(display.ax_, ax))
        ax = display.ax_
    assert [len(curve_lines(a)) for a in ax] == [3, 3, 6, 3]
    labels = ax[0].get_legend().get_texts()
    assert [t.get_text() for t in labels] == ["GD", "entropy $H$", "NGD", "ADAM"]
    assert len({line.get_color() for line in curve_lines(ax[1])}) == 3


def test_from_history_matches_from_estimator(fitted):
    clf = fitted["ngd"]
    a = ImplicitBiasDisplay.from_estimator(clf, name="run")
    b = ImplicitBiasDisplay.from_history(clf.history_, entropy=clf.entropy_, name="run")
    for key in a.lines_:
        np.testing.assert_array_equal(a.lines_[key].get_xydata(), b.lines_[key].get_xydata())
        assert a.lines_[key].get_label() == b.lines_[key].get_label()
    assert a.entropy_line_.get_ydata()[0] == b.entropy_line_.get_ydata()[0]
    assert [x.get_title() for x in a.ax_] == [x.get_title() for x in b.ax_]


def test_history_without_implicit_bias_leaves_panels_marked(small_data):
    X, Y, w = small_data
    clf = NTPLinearClassifier(max_iter=20, compute_implicit_bias=False).fit(
        X, Y, sample_weight=w)
    display = ImplicitBiasDisplay.from_estimator(clf)
    assert np.isnan(display.lines_["alignment"].get_ydata()).all()
    for ax in display.ax_[2:]:
        assert [t.get_text() for t in ax.texts] == [NOT_TRACKED]
    assert not display.ax_[0].texts


def test_non_separable_history_explains_the_missing_direction():
    """Contexts 1 and 2 on a line followed by tokens 0 and 1: no off-support pair
    is separable (the logit gap would need both signs), so there is no U~ and
    gradient descent converges to W~, above the entropy, at L*."""
    X, y = np.array([[1.0], [2.0]]), np.array([0, 1])
    assert not explicit_separable_pairs(X, np.eye(2)).any()  # T is empty
    clf = NTPLinearClassifier(max_iter=50).fit(X, y)
    display = ImplicitBiasDisplay.from_estimator(clf, title="two contexts on a line")
    # The alignment panel draws no curve but the note saying why.
    assert np.isnan(display.lines_["alignment"].get_ydata()).all()
    (note,) = display.ax_[2].texts
    assert "no max-margin direction" in note.get_text()
    assert "$T$ is empty" in note.get_text()
    # L* = min over the logit gap a = w_0 - w_1 of (log(1 + e^-a) + log(1 + e^2a)) / 2.
    L_star = minimize_scalar(lambda a: (np.logaddexp(0, -a) + np.logaddexp(0, 2 * a)) / 2,
                             tol=1e-12).fun
    assert display.infimum_line_.get_ydata()[0] == pytest.approx(L_star, abs=1e-9)
    assert clf.entropy_ == 0
    assert not display.ax_[3].texts  # the distance to W~ is drawn
    assert display.figure_.get_suptitle() == "two contexts on a line"


def test_one_hot_separable_history_explains_a_zero_subspace_error():
    """One next token per context and every other token separable: G = {0}."""
    clf = NTPLinearClassifier(max_iter=50).fit(np.eye(2), [0, 1])
    assert np.all(clf.history_["subspace_error"] == 0)
    display = ImplicitBiasDisplay.from_estimator(clf)
    assert [t.get_text() for t in display.ax_[3].texts] == [TRIVIAL_SUBSPACE]
    assert display.infimum_line_ is None  # L* = H


def test_y_limits_fit_the_drawn_curves():
    """Iteration 0 (a huge initial loss here) is not drawn on the log axis, so it
    must not stretch the y-range either."""
    k = np.arange(0, 101)
    history = {"iteration": k, "loss": np.r_[1e3, 1 + 1 / k[1:]], "norm": np.log1p(k)}
    ax = ImplicitBiasDisplay.from_history(history).ax_
    assert ax[0].get_ylim()[1] < 3


def test_plot_without_entropy_or_name():
    history = {"iteration": [0, 1, 2], "loss": [3.0, 2.0, 1.5], "norm": [0.0, 1.0, 2.0]}
    display = ImplicitBiasDisplay(history=history, entropy=None).plot()
    assert display.entropy_line_ is None
    assert display.ax_[0].get_legend() is None


@pytest.mark.parametrize("history, match", [
    ([1, 2, 3], "mapping"),
    ({"iteration": [0, 1], "loss": [1.0, 0.5]}, "norm"),
    ({"iteration": [0, 1], "loss": [1.0], "norm": [0.0, 1.0]}, "equal length"),
    ({"iteration": [], "loss": [], "norm": []}, "non-empty"),
    ({"iteration": [[0, 1]], "loss": [[1, 0]], "norm": [[0, 1]]}, "1-D"),
])
def test_bad_history_raises(history, match):
    with pytest.raises(ValueError, match=match):
        ImplicitBiasDisplay.from_history(history)


def test_bad_axes_raise(fitted):
    _, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="ax must be 4 matplotlib Axes"):
        ImplicitBiasDisplay.from_estimator(fitted["gd"], ax=axes)
    with pytest.raises(ValueError, match="ax must be 4 matplotlib Axes"):
        ImplicitBiasDisplay.from_estimator(fitted["gd"], ax=["a", "b", "c", "d"])


def test_unfitted_estimator_raises():
    with pytest.raises(NotFittedError):
        ImplicitBiasDisplay.from_estimator(NTPLinearClassifier())


def test_conflicting_style_aliases_raise(fitted):
    with pytest.raises(TypeError, match="aliases"):
        ImplicitBiasDisplay.from_estimator(fitted["gd"], c="red", color="blue")


def test_importing_the_library_does_not_import_matplotlib():
    code = ("import sys, sklearn_ntp, sklearn_ntp.plotting, sklearn_ntp.datasets; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# --- word-embedding geometry -------------------------------------------------------


def arrow_tips(ax):
    return np.array([text.xy for text in ax.texts if text.arrow_patch is not None])


def as_sorted_rows(A):
    return A[np.lexsort(A.T[::-1])]


@pytest.fixture(scope="module")
def toy():
    X, Y, w = make_toy_ntp_data(random_state=0)
    return X, Y, w, Y.toarray()


def test_word_embeddings_draw_the_rows_of_w_mm_and_w_star(toy):
    X, Y, w, P = toy
    axes = plot_word_embeddings(X, Y, sample_weight=w, title="toy data")
    assert axes.shape == (2,)
    assert axes[0].figure.get_suptitle() == "toy data"
    assert all(ax.get_ylabel() and "$" in ax.get_title() for ax in axes)
    W_mm = naive_ntp_svm(X, P)[0]
    W_star = kronecker_log_odds_solution(X, P)
    # Tokens 3 and 4 follow the same contexts, so W^mm has one shared row for them.
    np.testing.assert_allclose(W_mm[3], W_mm[4], atol=1e-5)
    distinct_mm = np.delete(W_mm, 4, axis=0)
    np.testing.assert_allclose(as_sorted_rows(arrow_tips(axes[0])),
                               as_sorted_rows(distinct_mm), atol=1e-5)
    np.testing.assert_allclose(as_sorted_rows(arrow_tips(axes[1])),
                               as_sorted_rows(W_star), atol=1e-8)
    labels = {t.get_text() for t in axes[0].texts}
    assert {"{0,1,2}", "{0,3,4}", "{1,3,4}", "$w_{3}=w_{4}$"} <= labels
    points = axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(as_sorted_rows(np.asarray(points)), as_sorted_rows(X))


def test_word_embeddings_accept_given_matrices_and_axes(toy):
    X, Y, w, _ = toy
    _, ax = plt.subplots(2, 1)
    W = np.arange(10.0).reshape(5, 2)
    axes = plot_word_embeddings(X, Y, W_star=W, W_mm=-W, ax=ax)
    assert all(a is b for a, b in zip(axes, ax))
    np.testing.assert_allclose(as_sorted_rows(arrow_tips(axes[1])), as_sorted_rows(W))
    # Every drawn point (contexts and arrow tips) lies inside the limits.
    for panel, M in zip(axes, (-W, W)):
        points = np.vstack([X, M])
        (x0, x1), (y0, y1) = panel.get_xlim(), panel.get_ylim()
        assert np.all((points[:, 0] > x0) & (points[:, 0] < x1))
        assert np.all((points[:, 1] > y0) & (points[:, 1] < y1))


def test_word_embeddings_solve_nothing_they_are_given(toy, monkeypatch):
    """Given both matrices, drawing computes neither (non-separable data would fail)."""
    import sklearn_ntp.plotting._geometry as geometry

    def forbidden(*args, **kwargs):
        raise AssertionError("a given matrix must not be computed")

    monkeypatch.setattr(geometry, "ntp_svm", forbidden)
    monkeypatch.setattr(geometry, "log_odds_solution", forbidden)
    X, Y, w, _ = toy
    W = np.arange(10.0).reshape(5, 2)
    axes = plot_word_embeddings(X, Y, sample_weight=w, W_star=W, W_mm=2 * W)
    np.testing.assert_allclose(as_sorted_rows(arrow_tips(axes[0])), as_sorted_rows(2 * W))
    with pytest.raises(AssertionError, match="must not be computed"):
        plot_word_embeddings(X, Y, sample_weight=w, W_star=W)


def test_word_embeddings_reject_bad_input(toy):
    X, Y, w, _ = toy
    with pytest.raises(ValueError, match="n_features=2"):
        plot_word_embeddings(np.c_[X, X[:, :1]], Y)
    with pytest.raises(ValueError, match="W_star"):
        plot_word_embeddings(X, Y, W_star=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="W_mm"):
        plot_word_embeddings(X, Y, W_mm=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="ax must be 2"):
        plot_word_embeddings(X, Y, ax=plt.subplots()[1])


def test_probability_matrix_heatmap(toy):
    *_, P = toy
    ax = plot_probability_matrix(P, title="toy data")
    np.testing.assert_allclose(ax.images[0].get_array(), P)
    assert len(ax.texts) == np.count_nonzero(P)
    assert ax.get_xlabel() == "token $z$" and ax.get_ylabel() == "context $j$"
    assert ax.get_title() == "toy data"


def test_probability_matrix_accepts_sparse(toy):
    _, Y, _, P = toy
    ax = plot_probability_matrix(Y)
    np.testing.assert_allclose(ax.images[0].get_array(), P)


@pytest.mark.parametrize("y, match", [
    ([0, 1, 2], "2-D"),
    ([[0.5, 0.2], [0.0, 1.0]], "sum to 1"),
    ([[1.5, -0.5], [0.0, 1.0]], "nonnegative"),
])
def test_probability_matrix_rejects_bad_input(y, match):
    with pytest.raises(ValueError, match=match):
        plot_probability_matrix(y)


def test_convergence_rate_curve_moved_to_studies_with_a_deprecated_alias():
    import sklearn_ntp.plotting as plotting
    from sklearn_ntp.studies import convergence_rate_curve

    X, Y, w = make_ntp_data(n_contexts=6, n_features=9, random_state=0)
    W = np.ones((Y.shape[1], 9))
    args = ({"solver": "gd"}, (X, Y, w), 20, 0 * W, W)
    with pytest.warns(FutureWarning, match="moved to sklearn_ntp.studies"):
        old = plotting.convergence_rate_curve(*args, n_points=3)
    for got, expected in zip(old, convergence_rate_curve(*args, n_points=3)):
        np.testing.assert_array_equal(got, expected)
    assert "convergence_rate_curve" not in plotting.__all__
    with pytest.raises(AttributeError, match="no_such_name"):
        plotting.no_such_name  # noqa: B018


def test_convergence_rates_keep_coinciding_curves_visible_and_label_both_panels():
    """SGD over contexts follows GD: identical curves must both show, with a legend."""
    k = np.array([1, 10, 100, 1000])
    curve = (k, 1 / np.log1p(k), 1 / np.log1p(k) ** 2)
    axes = plot_convergence_rates({"GD": curve, "SGD": curve, "Adam": curve})
    for ax in axes:
        assert [text.get_text() for text in ax.get_legend().get_texts()] == [
            "GD", "SGD", "Adam"]
        gd, sgd, adam = ax.get_lines()[:3]
        np.testing.assert_array_equal(gd.get_ydata(), sgd.get_ydata())
        styles = {(line.get_marker(), str(line.get_linestyle())) for line in (gd, sgd, adam)}
        assert len(styles) == 3
        # The earlier curve is on top with larger hollow markers, so the later
        # one shows inside them.
        assert gd.get_zorder() > sgd.get_zorder() > adam.get_zorder()
        assert gd.get_markersize() > sgd.get_markersize()
        assert gd.get_markerfacecolor() == "none"
    # Mathematical symbols are typeset (mathtext), not written as plain text.
    assert axes[0].get_ylabel() == r"$|1 - \gamma(W_k - W^\star) / \gamma^\star|$"
    assert axes[1].get_ylabel() == r"$1 - \cos(W_k - W^\star, W^{\mathrm{mm}})$"
    axes[0].figure.canvas.draw()  # mathtext parses
