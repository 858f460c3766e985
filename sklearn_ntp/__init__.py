"""sklearn-ntp: next-token prediction with linear decoders, and its implicit bias."""

__version__ = "0.1.0"

from ._checker import NTPSeparabilityChecker
from ._classifier import NTPLinearClassifier
from ._exceptions import (
    NotNTPCompatibleError,
    NotNTPSeparableError,
    NTPSeparabilityWarning,
)

__all__ = [
    "NTPLinearClassifier",
    "NTPSeparabilityChecker",
    "NTPSeparabilityWarning",
    "NotNTPCompatibleError",
    "NotNTPSeparableError",
]
