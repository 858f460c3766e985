"""The NTP cross-entropy and its penalty.

Full and restricted to the effective supports; the public loss functions.
"""
