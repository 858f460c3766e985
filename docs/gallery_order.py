"""Order of the example gallery: the quickstart first, then alphabetical."""

FIRST = ("plot_quickstart.py", "plot_word_embeddings.py", "plot_optimizers.py")


def quickstart_first(filename):
    """Sort key of a gallery file name: the files in ``FIRST``, then the rest."""
    return (FIRST.index(filename) if filename in FIRST else len(FIRST), filename)
