"""Errors and warnings for data that do not meet the paper's conditions."""


class NotNTPCompatibleError(ValueError):
    """The log-odds equations of Definition 1 have no exact solution.

    Raised by :func:`~sklearn_ntp.implicit_bias.log_odds_solution` unless
    ``allow_inexact=True``. The ``residual`` attribute holds the largest
    violation of a log-odds equation by the least-squares solution.

    Examples
    --------
    >>> from sklearn_ntp.implicit_bias import NotNTPCompatibleError
    >>> issubclass(NotNTPCompatibleError, ValueError)
    True
    """

    def __init__(self, message, residual=None):
        super().__init__(message)
        self.residual = residual


class NotNTPSeparableError(ValueError):
    """No matrix satisfies the NTP-separability constraints (6a)-(6b).

    Raised by :func:`~sklearn_ntp.implicit_bias.ntp_svm`. The ``certificate``
    attribute holds a dual matrix ``A`` of shape (n_tokens, n_contexts) with
    zero-sum columns, nonpositive out-of-support entries and ``A H = 0``: a
    Farkas certificate that the constraints cannot all hold.

    Examples
    --------
    >>> from sklearn_ntp.implicit_bias import NotNTPSeparableError
    >>> issubclass(NotNTPSeparableError, ValueError)
    True
    """

    def __init__(self, message, certificate=None):
        super().__init__(message)
        self.certificate = certificate


class NTPSeparabilityWarning(UserWarning):
    """Warning that training data are not NTP_H-compatible or not NTP-separable.

    Issued by :class:`~sklearn_ntp.NTPSeparabilityChecker` with
    ``on_failure="warn"``, and by :class:`~sklearn_ntp.NTPLinearClassifier`
    when ``W*`` or ``W^mm`` cannot be computed exactly for the training data.

    Examples
    --------
    >>> from sklearn_ntp import NTPSeparabilityWarning
    >>> issubclass(NTPSeparabilityWarning, UserWarning)
    True
    """


class CertificationError(RuntimeError):
    """A geometric result could not be certified, so it is not returned.

    Raised by :func:`~sklearn_ntp.implicit_bias.ntp_svm` when no candidate
    meets its optimality certificate (KKT residuals and duality gap), when a
    linear program fails, or when the data are numerically degenerate (two
    nearly collinear contexts with different supports, named in the message).
    ``status`` names the cause and ``residuals`` holds what was measured.

    Examples
    --------
    >>> from sklearn_ntp.implicit_bias import CertificationError
    >>> issubclass(CertificationError, RuntimeError)
    True
    """

    def __init__(self, message, status=None, residuals=None):
        super().__init__(message)
        self.status = status
        self.residuals = residuals
