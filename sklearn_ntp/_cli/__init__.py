"""The ``python -m sklearn_ntp`` command line (:func:`._main.main`)."""
