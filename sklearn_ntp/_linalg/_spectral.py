"""The largest eigenvalue of a Gram matrix ``A^T A``, exactly or by Lanczos."""

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

#: Up to this size of the smaller side of ``A`` the eigenvalue is exact
#: (``eigvalsh`` of a Gram matrix of at most this order); above it, Lanczos.
EXACT_MAX_ORDER = 1000


def largest_gram_eigenvalue(A, exact_max_order=EXACT_MAX_ORDER):
    """``lambda_max(A^T A)``, the squared largest singular value of ``A``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntp._linalg._spectral import largest_gram_eigenvalue
    >>> round(largest_gram_eigenvalue(np.array([[3.0, 0.0], [0.0, 1.0]])), 12)
    9.0
    """
    if min(A.shape) <= exact_max_order:
        gram = A.T @ A if A.shape[1] <= A.shape[0] else A @ A.T
        top = float(np.linalg.eigvalsh(gram)[-1])
    else:
        operator = LinearOperator((A.shape[1],) * 2, matvec=lambda v: A.T @ (A @ v),
                                  dtype=np.float64)
        top = float(eigsh(operator, k=1, which="LA", tol=1e-8,
                          return_eigenvectors=False)[0])
    return max(top, 0.0)
