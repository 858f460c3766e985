"""Table and log-log plot of bench_vocab.py's runs, before and after block-wise kernels.

    python benchmarks/bench_vocab.py --sweep 2500 5000 10000 --out after.json
    python benchmarks/bench_vocab.py --library OLD --out before.json
    python benchmarks/plot_vocab.py after.json [more.json ...] --before before.json [...]

Writes ``docs/_static/vocab.png`` (seconds per GD iteration and two float32
products against the number of contexts) and the table
``docs/_static/vocab_table.inc`` included by the user guide.
"""

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from bench_vocab import format_table  # noqa: E402


def write_table(runs, path):
    """The runs as an RST list-table, one row per (code, run, m)."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 10 8 8 74", "",
             "   * - code", "     - run", "     - m", "     - result"]
    for code, results in runs.items():
        for line, result in zip(format_table(results).splitlines()[1:], results):
            lines += [f"   * - {code}", f"     - {result['run']}", f"     - {result['m']}",
                      f"     - {line[16:].strip()}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(runs, path):
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for code, results in runs.items():
        fits = sorted((r for r in results if r["run"] == "fit" and "error" not in r),
                      key=lambda r: r["m"])
        if not fits:
            continue
        m = [r["m"] for r in fits]
        ax.loglog(m, [r["iteration_s"] for r in fits], "o-", label=f"GD iteration ({code})")
        if code == "after":
            ax.loglog(m, [r["products_s"] for r in fits], "k--",
                      label=r"two products $HW^\top$, $G^\top H$")
    ax.set_xlabel("contexts m (V = 50,257, d = 768, float32)")
    ax.set_ylabel("seconds per iteration")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _results(paths):
    """The runs of several ``--out`` files, in order."""
    return [result for path in paths for result in json.load(open(path))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("after", nargs="+", help="bench_vocab.py --out files of the current code")
    parser.add_argument("--before", nargs="*", default=(), help="the same of older code")
    parser.add_argument("--out", default="docs/_static/vocab.png")
    parser.add_argument("--table", default="docs/_static/vocab_table.inc")
    args = parser.parse_args()
    runs = {"before": _results(args.before), "after": _results(args.after)}
    runs = {code: results for code, results in runs.items() if results}
    write_table(runs, args.table)
    plot(runs, args.out)


if __name__ == "__main__":
    main()
