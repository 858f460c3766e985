"""Separability phase diagrams, locally and on a real dask cluster.

Every draw is re-decided independently: separability by a feasibility LP
(scipy's HiGHS) on the explicit NTP-SVM constraints, margins by a cvxpy
NTP-SVM, compatibility by the explicit Kronecker log-odds system; the binary
one-hot case is compared with Cover's exact formula.
"""

import contextlib
import gc
import io
import warnings

import joblib
import numpy as np
import pytest
from _reference import kronecker_log_odds_system, naive_ntp_svm, supports
from scipy.optimize import linprog
from scipy.spatial.distance import cosine
from scipy.special import comb
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp._cli._main import main
from sklearn_ntp.datasets import make_ntp_data
from sklearn_ntp.implicit_bias import log_odds_solution, ntp_svm
from sklearn_ntp.studies import convergence_rate_curve, separability_phase_diagram
from sklearn_ntp.studies._phase_diagram import _draw, _root_seed

GRID = {"n_contexts": [6, 9], "n_features": [2, 4, 8], "n_tokens": 4, "support_size": 2,
        "n_draws": 4, "random_state": 7}


def lp_separable(H, P):
    """Feasibility of the NTP-SVM constraints over the full V x d variable."""
    V, d = P.shape[1], H.shape[1]
    eq, ub = [], []
    for j, S in enumerate(supports(P)):
        def row(z, sign=1.0, j=j, S=S):
            E = np.zeros((V, d))
            E[z] += H[j]
            E[S[0]] -= H[j]
            return sign * E.ravel()
        eq += [row(z) for z in S[1:]]
        ub += [row(z) for z in np.setdiff1d(np.arange(V), S)]  # w_z h - w_s0 h <= -1
    res = linprog(np.zeros(V * d), A_ub=np.array(ub) if ub else None,
                  b_ub=-np.ones(len(ub)) if ub else None,
                  A_eq=np.array(eq) if eq else None, b_eq=np.zeros(len(eq)) if eq else None,
                  bounds=(None, None), method="highs")
    assert res.status in (0, 2)
    return res.status == 0


def lstsq_compatible(H, P):
    M, ell = kronecker_log_odds_system(H, P)
    W = np.linalg.lstsq(M, ell, rcond=None)[0]
    return np.max(np.abs(M @ W - ell)) <= 1e-8 * max(1.0, np.max(np.abs(ell)))


def assert_same(a, b):
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture(scope="module")
def local_results():
    return separability_phase_diagram(**GRID)


def test_fractions_match_independent_decisions(local_results):
    r = local_results
    cells = list(zip(r["n_contexts"], r["n_features"]))
    assert cells == [(m, d) for m in GRID["n_contexts"] for d in GRID["n_features"]]
    seeds = _root_seed(GRID["random_state"]).spawn(len(cells))
    for i, ((m, d), seed) in enumerate(zip(cells, seeds)):
        separable, compatible, margins = [], [], []
        for child in seed.spawn(GRID["n_draws"]):
            X, Y, _ = _draw(m, d, 4, 2, 20 * m, child)
            P = Y.toarray()
            separable.append(lp_separable(X, P))
            compatible.append(lstsq_compatible(X, P))
            if separable[-1]:
                margins.append(1 / np.linalg.norm(naive_ntp_svm(X, P)[0]))
        assert r["separable_fraction"][i] == np.mean(separable)
        assert r["compatible_fraction"][i] == np.mean(compatible)
        assert r["separable_and_compatible_fraction"][i] == np.mean(
            np.logical_and(separable, compatible))
        if margins:
            np.testing.assert_allclose(r["mean_margin"][i], np.mean(margins), rtol=1e-5)
        else:
            assert np.isnan(r["mean_margin"][i])
    # Lemma 1: d > m with Gaussian embeddings is separable.
    over = r["n_features"] > r["n_contexts"]
    assert np.all(r["separable_fraction"][over] == 1)
    np.testing.assert_array_equal(r["features_per_context"], r["n_features"] / r["n_contexts"])


def test_draws_follow_make_ntp_data():
    seed = np.random.SeedSequence(3)
    X, Y, w = _draw(5, 3, 4, 2, 40, seed)
    X2, Y2, w2 = make_ntp_data(n_contexts=5, vocab_size=4, n_features=3, support_size=2,
                               n_sequences=40,
                               random_state=np.random.RandomState(np.random.MT19937(seed)))
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y.toarray(), Y2.toarray())


@pytest.mark.slow
def test_binary_one_hot_follows_cover():
    # m = 8 points in R^4 with random labels: P(separable) = 2^-7 sum_{k<4} C(7, k) = 1/2.
    n_draws = 150
    r = separability_phase_diagram(n_contexts=[8], n_features=[2, 4], n_tokens=2,
                                   support_size=1, n_draws=n_draws, random_state=0)
    for d, fraction in zip(r["n_features"], r["separable_fraction"]):
        p = comb(7, np.arange(d)).sum() / 2.0 ** 7
        assert abs(fraction - p) <= 4 * np.sqrt(p * (1 - p) / n_draws)


def test_n_jobs_and_pandas(local_results):
    assert_same(separability_phase_diagram(**GRID, n_jobs=2), local_results)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(local_results)
    assert frame.shape == (6, len(local_results))


def test_random_state_instance_is_reproducible():
    kwargs = {**GRID, "n_contexts": [6], "n_features": [3], "n_draws": 8}
    a = separability_phase_diagram(**{**kwargs, "random_state": np.random.RandomState(1)})
    b = separability_phase_diagram(**{**kwargs, "random_state": np.random.RandomState(1)})
    assert_same(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_contexts": [0]}, "n_contexts"),
    ({"n_features": [2.5]}, "n_features"),
    ({"n_features": []}, "at least one"),
    ({"n_tokens": 3, "support_size": 4}, "support_size"),
    ({"support_size": 3, "sequences_per_context": 2}, "sequences_per_context"),
    ({"n_draws": 0}, "n_draws"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        separability_phase_diagram(**kwargs)


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


CLI_ARGS = ["phase-diagram", "--n-contexts", "6", "9", "--n-features", "2", "4", "8",
            "--n-tokens", "4", "--support-size", "2", "--n-draws", "4", "--seed", "7"]


def check_cli_table(argv, tmp_path, local_results):
    """Run the CLI with ``--out``; its CSV must hold exactly the local results."""
    out = tmp_path / "diagram.csv"
    code, stdout, stderr = run_cli(argv + ["--out", str(out)])
    assert code == 0, stderr
    table = np.genfromtxt(out, delimiter=",", names=True)
    for key in local_results:
        np.testing.assert_array_equal(table[key], local_results[key])
    assert stdout.splitlines()[0].split() == list(local_results)


def test_cli_local(local_results, tmp_path):
    check_cli_table(CLI_ARGS + ["--n-jobs", "2"], tmp_path, local_results)


def test_cli_errors():
    code, _, stderr = run_cli(CLI_ARGS + ["--n-tokens", "1"])
    assert code == 1 and stderr.startswith("sklearn-ntp: error: phase-diagram")
    code, _, stderr = run_cli(CLI_ARGS + ["--scheduler", "not-an-address"])
    assert code == 1 and stderr.count("\n") == 1 and "dask scheduler" in stderr


# --- a real dask cluster -----------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    # A Client whose connection failed (the CLI test above) is closed by its
    # __del__; collected while the new cluster starts its event loop, that
    # close waits on the loop being started: a deadlock. Collect it first.
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. about the dashboard's port
        cluster = distributed.LocalCluster(n_workers=2, processes=True,
                                           threads_per_worker=1, dashboard_address=None)
    with cluster:
        yield cluster


@pytest.mark.slow
def test_cluster_runs_grid_search_and_phase_diagram(cluster, local_results):
    from dask.distributed import Client

    X, Y, w = make_ntp_data(n_contexts=30, vocab_size=5, n_features=8, support_size=3,
                            n_sequences=300, random_state=0)
    search = GridSearchCV(
        NTPLinearClassifier(compute_implicit_bias=False, max_iter=40),
        {"learning_rate": [0.05, 0.2, 0.5]}, cv=KFold(3, shuffle=True, random_state=0))
    local = search.fit(X, Y, sample_weight=w)
    local_scores, local_coef = local.cv_results_["mean_test_score"], local.best_estimator_.coef_
    with Client(cluster) as client, joblib.parallel_backend("dask"):
        remote = GridSearchCV(search.estimator, search.param_grid, cv=search.cv,
                              n_jobs=-1).fit(X, Y, sample_weight=w)
        diagram = separability_phase_diagram(**GRID, n_jobs=-1)
        # The work really ran on the two worker processes.
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"], local_scores)
    np.testing.assert_array_equal(remote.best_estimator_.coef_, local_coef)
    assert_same(diagram, local_results)


@pytest.mark.slow
def test_cli_with_scheduler(cluster, local_results, tmp_path):
    check_cli_table(CLI_ARGS + ["--scheduler", cluster.scheduler_address], tmp_path,
                    local_results)


# --- rates of directional convergence ------------------------------------------------


def test_convergence_rate_curve_measures_the_refit_at_each_budget():
    """Each point is the seeded fit stopped at its budget, measured by the margin
    and the cosine written out here (scipy's cosine distance is 1 - cos)."""
    X, Y, w = make_ntp_data(n_contexts=8, vocab_size=5, n_features=12, support_size=2,
                            n_sequences=200, random_state=0)
    W_star, W_mm = log_odds_solution(X, Y, w), ntp_svm(X, Y, w)
    params = {"solver": "gd", "learning_rate": 0.5}
    budgets, gaps, errors = convergence_rate_curve(params, (X, Y, w), 40, W_star, W_mm,
                                                   seed=1, n_points=4)
    np.testing.assert_array_equal(budgets, [1, 3, 11, 40])
    S = supports(Y.toarray())
    for k, gap, error in zip(budgets, gaps, errors):
        D = NTPLinearClassifier(**params, max_iter=int(k), tol=0.0, init="lecun",
                                random_state=1, compute_implicit_bias=False).fit(
            X, Y, sample_weight=w).coef_ - W_star
        margin = min((D[z] - D[v]) @ X[j] for j in range(len(X)) for z in S[j]
                     for v in np.setdiff1d(np.arange(Y.shape[1]), S[j]))
        expected_gap = abs(1 - margin / np.linalg.norm(D) * np.linalg.norm(W_mm))
        assert gap == pytest.approx(expected_gap, rel=1e-9, abs=1e-12)
        assert error == pytest.approx(cosine(D.ravel(), W_mm.ravel()), rel=1e-9, abs=1e-12)
