"""Solvers of the (penalized) NTP loss and the tracking of their iterates."""
