"""Running the command line in-process, and reading what it prints (shared by the CLI tests)."""

import contextlib
import io
import re

from sklearn_ntp._cli._main import main


def run(argv):
    """Run ``main(argv)``; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, stderr):
    assert code == 1
    assert stderr.startswith("sklearn-ntp: error: ")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


def printed_entropy(stdout):
    return float(re.search(r"entropy bound H\s+([0-9.e+-]+) nats", stdout).group(1))
