"""What a HiGHS linear program of :func:`scipy.optimize.linprog` ended with.

One map of its status codes (as scipy's ``_linprog_highs`` reports them)
and one sentence for a result, shared by every linear program of the package.
"""

#: ``linprog(method="highs")`` status codes; only 0 has a solution.
HIGHS_STATUS = {
    0: "optimal",
    1: "iteration or time limit reached",
    2: "reported infeasible",
    3: "reported unbounded",
    4: "numerical difficulties",
}


def highs_message(result):
    """``"<status> (<solver message>)"`` for a ``linprog`` result.

    Examples
    --------
    >>> from scipy.optimize import linprog
    >>> from sklearn_ntp._linalg._highs import highs_message
    >>> result = linprog([-1.0], bounds=[(0, None)], method="highs")
    >>> highs_message(result).startswith("reported unbounded (")
    True
    """
    status = HIGHS_STATUS.get(result.status, f"unknown status {result.status}")
    return f"{status} ({result.message})"
