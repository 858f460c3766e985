"""sklearn-ntp: next-token prediction with linear decoders, and its implicit bias."""

__version__ = "0.1.0"
