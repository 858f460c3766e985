"""A real token corpus without download: the installed Python standard library."""

import os
import sysconfig
import token
import tokenize
from collections import Counter
from pathlib import Path

from ._utils import check_count

#: Marker of tokens outside the kept vocabulary.
UNKNOWN = "<unk>"
#: Every string literal (f-strings included) becomes this one token.
STRING = "<str>"
#: Closes every logical line, so that line endings are predicted too.
END_OF_LINE = "<newline>"
#: Directories that hold installed third-party packages or caches, not sources.
SKIPPED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
#: Token types kept verbatim (their text is the token).
VERBATIM = frozenset({token.NAME, token.OP, token.NUMBER})
# f-strings are split into several tokens from Python 3.12 on; absent before.
FSTRING_START = getattr(token, "FSTRING_START", None)
FSTRING_END = getattr(token, "FSTRING_END", None)


def load_python_tokens(vocab_size=100, max_files=50, *, path=None):
    """Token sequences of Python source files, one per logical line.

    Reads the ``.py`` files under ``path`` (by default the standard library
    of the running interpreter, ``sysconfig.get_paths()["stdlib"]``) in
    sorted order of their relative paths, skipping ``site-packages``,
    ``dist-packages`` and ``__pycache__`` directories and files that fail to
    tokenize, and stops after ``max_files`` files. Each file is split by the
    :mod:`tokenize` module into logical lines:

    * names, keywords, operators and numbers are kept as their text;
    * every string literal (f-strings included) becomes ``"<str>"``;
    * comments, blank lines, indentation and encoding markers are dropped;
    * each logical line ends with ``"<newline>"``.

    The ``vocab_size`` most frequent tokens are kept (ties broken by the token
    text) and the others become the out-of-vocabulary token ``"<unk>"``, so the
    output has at most ``vocab_size + 1`` distinct tokens. The output depends
    only on the files read, so it is identical across runs of the same Python
    version.

    Parameters
    ----------
    vocab_size : int, default=100
        Number of most frequent tokens kept, ``"<unk>"`` not included: a
        corpus with more distinct tokens than that yields ``vocab_size + 1``
        (the kept ones and ``"<unk>"``), a smaller one is returned unchanged.
        At least 1.
    max_files : int or None, default=50
        Number of successfully tokenized files to read; None reads them all
        (about 1800 files and half a minute for the standard library).
    path : str or path-like, default=None
        Directory to read instead of the standard library.

    Returns
    -------
    list of list of str
        One token sequence per logical line, ready for
        :func:`contexts_from_sequences`.

    Raises
    ------
    ValueError
        If ``vocab_size`` or ``max_files`` is not a valid count.
    FileNotFoundError
        If the directory does not exist or holds no Python file that tokenizes.

    See Also
    --------
    contexts_from_sequences : Turns the sequences into (X, Y, sample_weight).

    Examples
    --------
    >>> from sklearn_ntp.datasets import load_python_tokens
    >>> lines = load_python_tokens(vocab_size=30, max_files=3)
    >>> len({token for line in lines for token in line})  # 30 kept, and "<unk>"
    31
    >>> all(line[-1] == "<newline>" for line in lines)
    True
    """
    vocab_size = check_count(vocab_size, "vocab_size")
    max_files = check_count(max_files, "max_files", allow_none=True)
    root = Path(sysconfig.get_paths()["stdlib"] if path is None else path)
    if not root.is_dir():
        raise FileNotFoundError(f"No directory of Python sources at {str(root)!r}.")

    lines, n_files = [], 0
    for file in _source_files(root):
        file_lines = _logical_lines(file)
        if file_lines is None:
            continue
        lines.extend(file_lines)
        n_files += 1
        if n_files == max_files:
            break
    if n_files == 0:
        raise FileNotFoundError(f"No Python file that tokenizes under {str(root)!r}.")
    return _restrict_vocabulary(lines, vocab_size)


def _source_files(root):
    """``.py`` files under ``root`` in sorted order of their relative paths."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS]
        found.extend(Path(directory, f) for f in files if f.endswith(".py"))
    return sorted(found, key=lambda file: file.relative_to(root).as_posix())


def _logical_lines(file):
    """Token lists of the logical lines of ``file``, or None if it does not tokenize."""
    try:
        with open(file, "rb") as stream:
            tokens = list(tokenize.tokenize(stream.readline))
    except (OSError, SyntaxError, tokenize.TokenError, UnicodeDecodeError):
        return None
    lines, line, fstring_depth = [], [], 0
    for tok in tokens:
        if tok.type == FSTRING_START:
            if fstring_depth == 0:
                line.append(STRING)
            fstring_depth += 1
        elif tok.type == FSTRING_END:
            fstring_depth -= 1
        elif fstring_depth:
            continue  # the pieces of an f-string are part of its one token
        elif tok.type == token.NEWLINE and line:
            lines.append(line + [END_OF_LINE])
            line = []
        elif tok.type == token.STRING:
            line.append(STRING)
        elif tok.type in VERBATIM:
            line.append(tok.string)
    return lines


def _restrict_vocabulary(lines, vocab_size):
    """Map all but the ``vocab_size`` most frequent tokens to :data:`UNKNOWN`."""
    counts = Counter(tok for line in lines for tok in line)
    if len(counts) <= vocab_size:
        return lines
    ranked = sorted(counts, key=lambda tok: (-counts[tok], tok))
    kept = set(ranked[:vocab_size])
    return [[tok if tok in kept else UNKNOWN for tok in line] for line in lines]
