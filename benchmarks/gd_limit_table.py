"""Gradient descent against the general limit: the table of the theory page.

    python benchmarks/gd_limit_table.py                 # seed 0, 10^5 steps (a few seconds)
    python benchmarks/gd_limit_table.py --steps 10000   # a quicker run

The data (``partially_separable`` in ``tests/_cases.py``): m = 20 contexts
h_j ~ N(0, I_30), V = 8 tokens, supports of size 3 drawn uniformly, in-support
probabilities proportional to U(0.1, 1), uniform weights pi_j = 1/m; then
h_1 = 2 h_0 and context 1 gets a support disjoint from context 0's, with
Dirichlet(1, 1, 1) probabilities (all from ``numpy.random.default_rng(seed)``,
in that order). Gradient descent with step 0.5 from W_0 = 0, written out here,
is compared at k = 10^2, ..., 10^5 with the limit of
:func:`~sklearn_ntp.implicit_bias.implicit_bias_limit`.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import log_softmax, softmax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _cases import partially_separable  # noqa: E402

from sklearn_ntp.implicit_bias import implicit_bias_limit  # noqa: E402


def cross_entropy(W, H, P):
    """Mean over contexts of -sum_z p_jz log softmax_z(W h_j) (uniform weights)."""
    log_q = log_softmax(H @ W.T, axis=1)
    return -np.mean(np.sum(P * np.where(P > 0, log_q, 0.0), axis=1))


def cosine(A, B):
    return float(np.vdot(A, B) / (np.linalg.norm(A) * np.linalg.norm(B)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    args = parser.parse_args()

    H, P = partially_separable(args.seed)
    limit = implicit_bias_limit(H, P)
    W_t, U = limit.finite_component, limit.max_margin_solution
    project = limit.effective_subspace.project
    print(f"seed {args.seed}: m = {H.shape[0]}, V = {P.shape[1]}, d = {H.shape[1]}; "
          f"|T| = {int(limit.separable_pairs.sum())} of {int(np.sum(P == 0))} off-support "
          f"pairs; L* - H = {limit.loss_infimum - limit.entropy:.4f}; "
          f"status {limit.status}")
    print(f"{'k':>8} {'CE - L*':>10} {'||P_G(W_k) - W~||':>18} "
          f"{'cos(W_k - W~, U~)':>18} {'cos(W_k, U~)':>13} {'||W_k||':>8}")

    checkpoints = {10 ** e for e in range(2, 9) if 10 ** e <= args.steps}
    W = np.zeros_like(W_t)
    target = P.T @ H / len(H)  # the targets' part of the gradient, fixed
    start = time.perf_counter()
    for k in range(1, args.steps + 1):
        W -= args.learning_rate * (softmax(H @ W.T, axis=1).T @ H / len(H) - target)
        if k in checkpoints:
            print(f"{k:>8} {cross_entropy(W, H, P) - limit.loss_infimum:>10.2e} "
                  f"{np.linalg.norm(project(W) - W_t):>18.2e} "
                  f"{cosine(W - W_t, U):>18.3f} {cosine(W, U):>13.3f} "
                  f"{np.linalg.norm(W):>8.1f}", flush=True)
    print(f"{args.steps} steps in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
