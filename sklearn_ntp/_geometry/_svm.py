"""The NTP-SVM (paper Definition 3), solved through its dual in row-space form.

Primal:  W^mm = argmin ||W||_F^2  subject to
    (6a) (e_z - e_z0)^T W h_j = 0          for z in S_j,
    (6b) (e_z0 - e_v)^T W h_j >= 1         for v not in S_j.

Stationarity gives ``W = A H`` with one dual column ``a_j`` in R^V per context:
``a_j`` sums to zero, and its out-of-support entries are ``-lambda_jv <= 0``.
The dual is therefore a QP over the (n_tokens, n_contexts) matrix ``A``:

    minimize   1/2 tr(A K A^T) + sum_{v not in S_j} A_vj
    subject to sum_v A_vj = 0,   A_vj <= 0 for v not in S_j,

with ``K = H H^T``. Its solvers reach its neighbourhood: a primal-dual
interior point (:mod:`._svm_interior_point`, small problems), the sequential dual
method (:mod:`._svm_dual_cd`, large ones with ``d >= m``), constraint generation
(:mod:`._svm_working_set`, many contexts in few dimensions), the active-set
method (:mod:`._svm_active_set`, badly conditioned features) and any cvxpy QP solver. All of them
then go through the same exact polish of the support vectors and the same
certificate (:mod:`._svm_certificate`); an uncertified result is refused.
Infeasibility is decided by a verified Farkas certificate (:mod:`._infeasibility`).
"""

import warnings
from dataclasses import replace
from functools import partial

import numpy as np

from .._data._ntp_data import as_ntp_data
from .._exceptions import CertificationError, NotNTPSeparableError
from .._linalg._gram import GramFactor
from .._utils._threads import kernel_threads
from ._basis import context_basis, orthonormal_data
from ._generators import RANK_RTOL, margin_pairs, support_pairs
from ._infeasibility import separability_certificate
from ._svm_active_set import ACTIVE_SET_ENTRIES, active_set_size, active_set_svm
from ._svm_certificate import (
    DENSE_GENERATORS,
    Certificate,
    certify,
    degenerate_message,
    degenerate_pair,
    gram_logits,
    kkt_violation,
    polish,
    primal_violation,
)
from ._svm_dual_cd import MAX_BLOCK, sequential_dual
from ._svm_interior_point import interior_point
from ._svm_working_set import InfeasibleWorkingSet, RestrictedProblemError, working_set_svm

__all__ = ["embedding_rank", "kkt_violation", "ntp_svm"]

#: Smallest singular-value ratio of H for the interior point on K itself.
WELL_CONDITIONED = 1e-4
#: Condition number of the features (against orthonormal coordinates of the
#: contexts) above which a refusal names them as the cause.
ILL_CONDITIONED = 1e6
#: ... and above which ``method="auto"`` takes the active-set method while it
#: fits (dual methods on ``H H^T`` lose the square of it).
ACTIVE_SET_CONDITION = 1e3
#: Relative ridges of the lifted embeddings tried for degenerate Gram matrices.
LIFTS = (1e-7, 1e-9, 1e-11)
#: ``method="auto"`` takes the active-set method whenever its dense constraint
#: matrix has at most this many entries (8 MB) and the Farkas LP that decides
#: infeasible data is small: it is then the fastest method (milliseconds on
#: scikit-learn's small data sets, where the others cost tens of them) and the
#: most accurate one.
SMALL_ACTIVE_SET_ENTRIES = 1_000_000
#: ``method="auto"`` uses the interior point up to this many contexts ...
INTERIOR_POINT_MAX_CONTEXTS = 100
#: ... and, for ``d < m``, the working-set method up to this many variables
#: ``V d`` (the sequential dual method converges slowly on such hard-margin
#: duals; the restricted problems have ``V min(m, d)`` variables).
WORKING_SET_MAX_VARIABLES = 100_000
#: Largest Farkas LP (``n_tokens * (n_contexts - rank)`` variables) run before the
#: sequential dual method; larger ones only run if that method fails.
EAGER_LP_VARIABLES = 50_000
#: Epochs of the sequential dual method between certificate attempts, and in all.
EPOCHS_PER_CHECK = 10
MAX_EPOCHS = 3000
#: Primal infeasibility of a dual iterate below which polishing is attempted:
#: early for the dense polish (cheap), late for the conjugate-gradient one,
#: whose iterations each cost as much as half an epoch.
POLISH_RTOL = 1e-2
POLISH_RTOL_CG = 1e-5
#: Cosine, in orthonormal coordinates, above which two contexts with
#: different supports are named as the cause of a refusal (nearly collinear).
DEGENERATE_COSINE = 1.0 - 1e-6
METHODS = ("auto", "interior-point", "dual-cd", "cvxpy", "active-set", "working-set")


def embedding_rank(H):
    """Return ``(s, rank)``: singular values of ``H`` and the dimension of its
    column space (:func:`._basis.context_basis`, the same in any coordinates)."""
    return np.linalg.svd(H, compute_uv=False), context_basis(H).rank


def ntp_svm(X, y=None, sample_weight=None, *, method="auto", verbose=0):
    """Max-margin direction: the NTP-SVM solution ``W^mm`` (paper Definition 3).

    ``W^mm = argmin ||W||_F`` subject to equal logits on each support
    (6a) and in-support logits exceeding out-of-support logits by one (6b).
    ``W^mm`` lies in the orthogonal complement of the data subspace, and
    ``1 / ||W^mm||`` is the largest NTP margin of a unit-norm matrix there.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or NTPData
        Context embeddings, or aggregated data (then ``y`` is ignored).
    y : array-like of shape (n_samples,) or (n_samples, n_tokens)
        Hard or soft next-token targets.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights (only which rows have positive weight matters).
    method : {"auto", "interior-point", "dual-cd", "cvxpy", "active-set", \
"working-set"}, default="auto"
        Solver of the dual QP. ``"interior-point"``: primal-dual interior point,
        ``n_tokens`` (m, m) factorizations per step (exact and fastest for
        small ``m``). ``"dual-cd"``: the sequential dual method (block
        coordinate descent over contexts), each epoch costing about two
        ``n_tokens x m x d`` products for ``d < m``, and one
        ``n_tokens x m x m`` product with the stored ``H H^T`` otherwise. ``"cvxpy"``: the primal
        in row-space coordinates (``n_tokens x min(m, d)`` variables) handed
        to cvxpy's Clarabel solver (the default cvxpy solver if Clarabel is
        not installed). ``"active-set"``: the primal in the same coordinates
        by the dual active-set method of Goldfarb and Idnani (``quadprog``),
        which keeps an orthogonal factorization of the active constraints
        and so loses ``eps cond(H)`` where the others lose ``eps cond(H)^2``
        (badly scaled or offset features); its constraint matrix is dense.
        ``"working-set"``: constraint generation on the same primal: Clarabel
        solves it restricted to every tie and a working set of margins (at
        first the few most competitive tokens of each context; with at most
        32 tokens, the ``n_tokens x min(m, d)`` margins smallest after ten
        epochs of the sequential dual method), a scan of all
        ``m (n_tokens - 1)`` margins in blocks of contexts adds the worst
        violated ones of each context and drops inactive ones, until none is
        violated; with ``d`` much smaller than ``m`` few margins are active,
        so the cost grows about linearly in the number of margins.
        ``"auto"`` takes the active-set method when that matrix has at most
        a million entries and ``n_tokens * n_contexts <= 50,000`` (the
        fastest method there; should it not be certified, the method chosen
        as below is tried next), or when the features' condition
        number (against orthonormal coordinates of the contexts) exceeds
        ``1e3`` and that matrix has at most 20 million entries, else the
        interior point up to 100 distinct contexts; above, when ``d < m`` and
        ``n_tokens * d <= 100,000``, the working-set method, and otherwise
        the sequential dual method (which suits full-row-rank embeddings; on
        ``d < m`` it converges slowly).
        Every method ends with the same certificate over every constraint
        (the dual and working-set methods after an exact polish of their
        active set).
    verbose : int, default=0
        Print the progress of the sequential dual and working-set methods if
        positive.

    Returns
    -------
    W_mm : ndarray of shape (n_tokens, n_features)
        The NTP-SVM solution. If every context has full support there is no
        inequality, and ``W_mm`` is the zero matrix (the margin is undefined).

    Raises
    ------
    NotNTPSeparableError
        If the constraints are infeasible; the error carries a verified Farkas
        certificate (``A`` with ``A H = 0`` to rounding).
    CertificationError
        If no solution meets the certificate (feasibility to ``1e-8`` relative
        to the largest logit, relative duality gap ``<= 1e-6``), for instance
        on numerically degenerate data (the message names the pair of
        contexts involved, nearly collinear in orthonormal coordinates of
        their column space), on features too badly conditioned for their own
        metric (the message says so), or when a linear program fails.

    Notes
    -----
    The embeddings are rescaled to unit largest row norm internally, and the
    solution scaled back (``W^mm(H) = W^mm(H / s) / s``), so embeddings of any
    floating-point scale give the same answer. Whatever the method, the
    support vectors found are refined into the exact solution of the
    equality-constrained problem they define (a dense or conjugate-gradient
    solve in the span of the constraint generators, so no matrix indexed by
    (token, feature) pairs is formed), which is returned only once certified.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp.implicit_bias import ntp_svm
    >>> X = np.eye(2)
    >>> Y = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    >>> ntp_svm(X, Y).round(4)
    array([[ 0.3333, -0.3333],
           [ 0.3333, -0.3333],
           [-0.6667,  0.6667]])
    >>> ntp_svm(X, Y, method="dual-cd").round(4)
    array([[ 0.3333, -0.3333],
           [ 0.3333, -0.3333],
           [-0.6667,  0.6667]])
    >>> ntp_svm(X, Y, method="working-set").round(4)
    array([[ 0.3333, -0.3333],
           [ 0.3333, -0.3333],
           [-0.6667,  0.6667]])
    """
    return solve_ntp_svm(as_ntp_data(X, y, sample_weight), method=method, verbose=verbose)[0]


def solve_ntp_svm(data, *, method="auto", verbose=0, gram=None, farkas_lp=True):
    """``(W^mm, certificate)``: :func:`ntp_svm` of aggregated data, with the
    :class:`~._svm_certificate.Certificate` that its dual matrix holds.

    With ``farkas_lp=False`` every method refuses infeasible data
    (:class:`CertificationError`) instead of proving them infeasible by the
    Farkas LP, whose size grows like ``n_tokens * n_contexts``.

    ``gram`` is the :class:`GramFactor` of ``data.embeddings`` when the caller
    holds one (:attr:`._basis.ContextBasis.gram`): ``H H^T`` and its Cholesky
    factor are then not computed again.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if data.support_mask.all():
        return np.zeros((data.n_tokens, data.n_features)), Certificate(0.0, 0.0, 0.0)
    H = np.asarray(data.embeddings, dtype=np.float64)
    scale = float(np.abs(H).max())
    if scale == 0.0:
        _raise_zero_embeddings(data)
    scale = float(data.context_norms.max())
    scaled = replace(data, embeddings=H / scale)
    if gram is not None:
        if not gram.belongs_to(data.embeddings):
            raise ValueError("gram must be the GramFactor of data.embeddings.")
    names = _choose_methods(method, data, gram)
    if gram is not None:
        gram = gram.rescaled(scaled.embeddings, scale)
    m, d = data.n_contexts, data.n_features
    # Each method calls ``farkas`` where infeasibility is to be decided.
    farkas = partial(_raise_if_infeasible, scaled, gram) if farkas_lp else _no_farkas_lp
    for name in names:
        try:
            with kernel_threads(data.n_tokens * m * min(m, d)):
                A, W = _SOLVERS[name](scaled, verbose, gram, farkas)
            break
        except CertificationError:
            if name == names[-1]:
                raise
    return W / scale, certify(A, scaled, W)


def _choose_methods(method, data, gram=None):
    """The methods that ``method`` tries, in order, until one is certified:
    ``method`` itself, or the path of ``"auto"`` (documented in
    :func:`ntp_svm`), which on small problems tries the active-set method
    first; ``gram``, the caller's :class:`GramFactor` of the embeddings, if any."""
    if method != "auto":
        return (method,)
    choice = _choose_method(data, gram)
    small = (active_set_size(data) <= SMALL_ACTIVE_SET_ENTRIES
             and data.n_tokens * data.n_contexts <= EAGER_LP_VARIABLES)
    return ("active-set", choice) if small and choice != "active-set" else (choice,)


def _choose_method(data, gram=None):
    """The method of ``"auto"`` apart from small problems."""
    m, d = data.n_contexts, data.n_features
    if (active_set_size(data) <= ACTIVE_SET_ENTRIES
            and context_basis(data.embeddings, gram).condition_number > ACTIVE_SET_CONDITION):
        return "active-set"
    if m <= INTERIOR_POINT_MAX_CONTEXTS:
        return "interior-point"
    if d < m and data.n_tokens * d <= WORKING_SET_MAX_VARIABLES:
        return "working-set"
    return "dual-cd"


def _raise_zero_embeddings(data):
    """All-zero embeddings: every margin is 0; one off-support pair certifies it."""
    off = ~data.support_mask
    j, v = np.argwhere(off)[0]
    A = np.zeros((data.n_tokens, data.n_contexts))
    A[v, j] = -1.0
    A[data.probabilities.indices[data.probabilities.indptr[j]], j] = 1.0
    raise NotNTPSeparableError(
        "The data are not NTP-separable: every embedding is zero, so every margin is 0.",
        certificate=A,
    )


def _no_farkas_lp():
    """What a method calls instead of the Farkas LP when it is not allowed."""


def _raise_if_infeasible(data, gram=None):
    """Raise :class:`NotNTPSeparableError` with its certificate if the LP finds one."""
    certificate = separability_certificate(data, gram=gram)
    if certificate is not None:
        raise NotNTPSeparableError(
            "The data are not NTP-separable: no W gives every in-support token "
            "equal logits and a positive margin over every out-of-support token "
            "(a Farkas certificate was found by linear programming).",
            certificate=certificate,
        )


def _certified(data, Z, A_approx, gram=None, active=None):
    """``(A, W)``: the polished (else the given) dual matrix and its primal
    solution if their certificate holds, else None (``active``: the initial
    active set of the polish, if known)."""
    for A, W in (polish(data, Z, A_approx, gram=gram, active=active), (A_approx, None)):
        if A is None or not np.all(np.isfinite(A)):
            continue
        W = A @ data.embeddings if W is None else W
        if certify(A, data, W).holds:
            return A, W
    return None


def _refuse(data, A, method):
    """Raise :class:`CertificationError` for an uncertified result of ``method``.

    The reason is one that holds in any coordinates: nearly collinear
    contexts are measured in an orthonormal basis of their column space, and
    otherwise badly conditioned features (where the minimum-norm problem of
    their own metric loses accuracy) are named as such.
    """
    residual = kkt_violation(A, data) if A is not None and np.all(np.isfinite(A)) else np.inf
    basis = context_basis(data.embeddings)
    unit = orthonormal_data(data, basis)
    message = (f"The NTP-SVM solution of method {method!r} could not be certified "
               f"(KKT residual {residual:.2g}).")
    if degenerate_pair(unit)[1] > DEGENERATE_COSINE:
        message += " " + degenerate_message(unit)
        status = "degenerate"
    elif basis.condition_number > ILL_CONDITIONED:
        message += (f" The features are badly conditioned (condition number "
                    f"{basis.condition_number:.2g} against orthonormal coordinates of the "
                    "contexts): the minimum-norm solution in their metric is not resolved. "
                    "Centring or standardizing the features changes that metric but not "
                    "which pairs are separable.")
        status = "ill_conditioned"
    else:
        status = "not_converged"
    raise CertificationError(message, status=status, residuals={"kkt": residual})


def gram_factor(H, gram=None):
    """Embeddings with the Gram matrix of ``H`` and ``min(m, d)`` columns.

    Returns ``(Z, full_rank, K)``: the Cholesky factor of ``K = H H^T`` when
    ``d > m`` and its pivots exceed :data:`~._generators.RANK_RTOL` relative
    (then ``rank(H) = m``), else ``H`` itself (``full_rank`` False: not known
    to have full row rank); ``K`` is returned when ``d > m`` (no larger than
    ``H`` then), else None. ``gram``, the :class:`GramFactor` of ``H`` if one
    exists already, saves forming and factoring ``K`` again.
    """
    m, d = H.shape
    if d <= m:
        return H, False, None
    gram = gram if gram is not None else GramFactor(H)
    if gram.pivot_ratio > RANK_RTOL:
        return gram.cholesky, True, gram.matrix
    return H, False, gram.matrix


def _solve_interior_point(data, verbose, gram, farkas):
    """Interior point on ``K`` (well-conditioned full rank), then on lifted embeddings.

    A rank-deficient (or nearly so) ``K`` makes the dual degenerate; the lifted
    problem ``[H, eps I]`` is full rank with the same constraints, and its
    solution tends to ``W^mm`` as ``eps -> 0``. It only has to reveal the
    support vectors: the polish that follows is exact for ``H`` itself.
    """
    H = data.embeddings
    m = data.n_contexts
    sing, rank = embedding_rank(H)
    K = H @ H.T if gram is None else gram.matrix
    off = ~data.support_mask.T
    lifts = [K + lift * sing[0] ** 2 * np.eye(m) for lift in LIFTS]
    if rank == m and sing[-1] > WELL_CONDITIONED * sing[0]:
        lifts.insert(0, K)
    else:
        farkas()
    A_ipm = None
    for K_lift in lifts:
        A_ipm = interior_point(K_lift, off)
        result = _certified(data, H, A_ipm)
        if result is not None:
            return result
    _refuse(data, A_ipm, "interior-point")


def _solve_dual_cd(data, verbose, gram, farkas):
    """Sequential dual method, polished and certified every few epochs."""
    H = data.embeddings
    V, m = data.n_tokens, data.n_contexts
    Z, full_rank, K = gram_factor(H, gram)
    if not full_rank and V * (m - min(m, H.shape[1])) <= EAGER_LP_VARIABLES:
        farkas()
    off = ~data.support_mask.T
    # Ties plus about one support vector per context: sum_j S_j generators.
    dense = int(data.support_sizes.sum()) <= DENSE_GENERATORS
    gate = POLISH_RTOL if dense else POLISH_RTOL_CG
    A = None
    for epoch in range(EPOCHS_PER_CHECK, MAX_EPOCHS + 1, EPOCHS_PER_CHECK):
        with kernel_threads(V * Z.shape[1] * MAX_BLOCK):  # one block's products
            A = sequential_dual(Z, off, A=A, n_epochs=EPOCHS_PER_CHECK, random_state=epoch,
                                gram=K)
        violation = primal_violation(data, gram_logits(A, Z, K))
        if verbose:
            print(f"ntp_svm dual-cd: epoch {epoch}, primal infeasibility {violation:.2e}")
        if violation <= gate:
            result = _certified(data, Z, A, gram=K)
            if result is not None:
                return result
    if not full_rank:
        farkas()
    _refuse(data, A, "dual-cd")


def qp_solver():
    """Clarabel if cvxpy has it, else None (cvxpy's default QP solver)."""
    import cvxpy as cp

    return "CLARABEL" if "CLARABEL" in cp.installed_solvers() else None


def _solve_cvxpy(data, verbose, gram, farkas):
    """The row-space primal in cvxpy (Clarabel by default), then the polish.

    ``W^mm = A H`` lies in the row space of ``H``; with ``H = Z Q^T``
    (``Q`` orthonormal) the variable is ``W_Z = W Q`` of shape
    (n_tokens, min(m, d)), with the same norm and logits ``Z W_Z^T``.
    """
    import cvxpy as cp

    H = data.embeddings
    Z, full_rank, _ = gram_factor(H, gram)
    V = data.n_tokens
    W_z = cp.Variable((V, Z.shape[1]))
    logits = cp.vec(Z @ W_z.T, order="C")  # logit of token z in context j at j * V + z
    z, z0, j = support_pairs(data)
    a, v, i = margin_pairs(data)
    constraints = [logits[i * V + a] - logits[i * V + v] >= 1]
    if z.size:
        constraints.append(logits[j * V + z] == logits[j * V + z0])
    problem = cp.Problem(cp.Minimize(cp.sum_squares(W_z)), constraints)
    solver = qp_solver()
    try:
        with warnings.catch_warnings():
            # "Solution may be inaccurate": the certificate below decides that.
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=solver, verbose=verbose > 1)
    except cp.SolverError as exc:
        raise CertificationError(f"cvxpy failed on the NTP-SVM: {exc}",
                                 status="cvxpy_error") from exc
    if problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        # Feasibility is decided by the verified Farkas LP, not by the solver.
        farkas()
        _refuse(data, None, "cvxpy")
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise CertificationError(
            f"cvxpy ({problem.solver_stats.solver_name}) ended with status "
            f"{problem.status!r} on the NTP-SVM.", status=f"cvxpy_{problem.status}")
    # Minus the margin multipliers: the polish needs only the support vectors.
    A = np.zeros(data.support_mask.T.shape)
    A[v, i] = -constraints[0].dual_value
    result = _certified(data, Z, A)
    if result is None:
        _refuse(data, A, "cvxpy")
    return result


def _solve_active_set(data, verbose, gram, farkas):
    """The active-set method of :mod:`._svm_active_set`, certified as the others."""
    try:
        A, W = active_set_svm(data)
    except ValueError:  # quadprog: "constraints are inconsistent"
        farkas()
        _refuse(data, None, "active-set")
    if not certify(A, data, W).holds:
        _refuse(data, A, "active-set")
    return A, W


def _solve_working_set(data, verbose, gram, farkas):
    """Constraint generation (:mod:`._svm_working_set`), polished and certified
    over every constraint; infeasibility is decided by ``farkas``."""
    Z, full_rank, _ = gram_factor(data.embeddings, gram)
    try:
        result = working_set_svm(data, Z, verbose=verbose)
    except InfeasibleWorkingSet:
        farkas()
        _refuse(data, None, "working-set")
    except RestrictedProblemError as exc:
        raise CertificationError(f"Clarabel failed on a restricted NTP-SVM: {exc}",
                                 status="clarabel_error") from exc
    certified = _certified(data, Z, result.A, active=result.active)
    if certified is None:
        if not full_rank:
            farkas()
        _refuse(data, result.A, "working-set")
    return certified


_SOLVERS = {
    "interior-point": _solve_interior_point,
    "dual-cd": _solve_dual_cd,
    "cvxpy": _solve_cvxpy,
    "active-set": _solve_active_set,
    "working-set": _solve_working_set,
}
