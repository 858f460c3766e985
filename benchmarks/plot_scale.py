"""Log-log plot of NTP-SVM and limit times against the number of contexts, from bench_scale.py.

    python benchmarks/bench_scale.py --big && python benchmarks/plot_scale.py

Reads ``benchmarks/scale_results.csv``; writes ``docs/_static/scale.png`` and
the table ``docs/_static/scale_table.inc`` included by the user guide.
"""

import argparse
import csv
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def write_table(rows, path):
    """The measurements as an RST list-table."""
    lines = [".. list-table::", "   :header-rows: 1", "",
             "   * - m, V, d", "     - method", "     - time (s)", "     - peak (MiB)",
             "     - outcome"]
    for row in rows:
        lines += [f"   * - {row['m']}, {row['V']}, {row['d']}", f"     - {row['method']}",
                  f"     - {float(row['seconds']):.2f}", f"     - {float(row['peak_mib']):.0f}",
                  f"     - {row['outcome']}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default="benchmarks/scale_results.csv")
    parser.add_argument("--out", default="docs/_static/scale.png")
    parser.add_argument("--table", default="docs/_static/scale_table.inc")
    args = parser.parse_args()
    series = defaultdict(list)
    with open(args.csv) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if not row["outcome"].startswith("refused"):
            series[row["method"]].append((int(row["m"]), float(row["seconds"])))
    write_table(rows, args.table)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, points in sorted(series.items()):
        m, seconds = zip(*sorted(points))
        ax.loglog(m, seconds, "o-", label=method)
    ax.set_xlabel("distinct contexts m")
    ax.set_ylabel("time (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)


if __name__ == "__main__":
    main()
