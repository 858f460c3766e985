"""Distinct contexts of row-chunked dask arrays, merged where the chunks live.

The paper's contexts are the distinct rows of ``X`` whichever chunk holds
them: a context split over two chunks is one context. The merge runs on the
workers in two rounds, as a hash shuffle:

1. every chunk is merged on its own (the distinct rows of the chunk, their
   total weights ``c`` and weighted target sums ``sum_i w_i y_i``), and each
   distinct row goes to one of ``n_partitions`` pieces by a hash of its bytes;
2. partition ``k`` merges piece ``k`` of every chunk: identical rows from any
   chunk meet there and become one context (weights and target sums add up).

Only the total weight (one float per partition) comes back to the client,
which divides the weights by it on the workers. The result,
:class:`DaskNTPData`, keeps one :class:`~._ntp_data.NTPData` per partition
on the workers; :meth:`DaskNTPData.gather` brings the contexts to the client
in the order of :func:`~._ntp_data.aggregate_contexts` (lexicographic), for
the parts of the library that need them in one process.

Where the work runs: on the ``Client`` passed in or found by
``distributed.default_client()`` (partitions are futures held by its
workers), or, without one, with dask's default scheduler in this process
(:class:`LocalBackend`).
"""

import asyncio
import math
import operator
from concurrent.futures import CancelledError
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.special import entr
from sklearn.utils.validation import _check_sample_weight

from ._ntp_data import (
    NTPData,
    _freeze,
    _labels_of,
    _unique_rows,
    as_ntp_data,
    check_embeddings,
    check_targets,
    with_intercept_column,
)

#: Partial results added per task in the tree reductions on a cluster.
SUM_FAN_IN = 4
#: Broadcast arrays up to this size travel inside every task; larger ones are
#: scattered to every worker first (one copy per worker, one extra round trip).
EMBED_BYTES = 2 ** 20
#: Bytes the client fetches from the workers in one request: gathering every
#: partition of a data set larger than a worker at once makes each worker
#: serialize all of its share at once, past its memory limit (1.41 GB of
#: contexts on two workers of 1.25 GiB: both killed; in requests of this size
#: each peaked at 0.93 GiB).
GATHER_BYTES = 64 * 2 ** 20
#: Evaluations sent again after losing a worker, before the fit stops with an error.
LOST_WORKER_RETRIES = 2
#: Rows hashed at a time.
HASH_BLOCK_ROWS = 256
#: Odd 64-bit multipliers of the row hash (fixed: every process hashes alike).
_HASH_WORDS = 4096
_MULTIPLIERS = (np.random.default_rng(20240521).integers(
    1, 2 ** 63, size=_HASH_WORDS, dtype=np.uint64) * np.uint64(2) + np.uint64(1))


def is_dask_array(a):
    """Whether ``a`` is a dask array (without importing dask when it is not loaded)."""
    return type(a).__module__.startswith("dask.array")


def any_dask(*arrays):
    """Whether any of ``arrays`` is a dask array."""
    return any(is_dask_array(a) for a in arrays)


# --------------------------------------------------------------------------- backends
def _row_blocks(arrays):
    """The row blocks of each dask array, as delayed objects (None stays None)."""
    return [None if a is None else list(a.to_delayed().ravel()) for a in arrays]


def _tasks(func, parts, broadcast):
    """``func(part_1[i], part_2[i], ..., *broadcast)`` for every ``i``, as delayed calls."""
    import dask

    return [dask.delayed(func, pure=False)(*args, *broadcast) for args in zip(*parts)]


class ClusterBackend:
    """Runs functions of the partitions on a ``distributed`` cluster (futures).

    Chunks of the input are computed as inputs of the tasks that merge them
    and released after: the workers hold the merged partitions, not the raw
    chunks beside them.
    """

    def __init__(self, client):
        self.client = client
        self._placement = None

    blocks = staticmethod(_row_blocks)

    def _shared(self, broadcast):
        """The broadcast arguments; those above :data:`EMBED_BYTES` sent once to
        every worker (not once per task)."""
        return [self.client.scatter(b, broadcast=True, hash=False)
                if getattr(b, "nbytes", 0) > EMBED_BYTES else b for b in broadcast]

    def map(self, func, *parts, broadcast=()):
        """``func(part_1[i], part_2[i], ..., *broadcast)`` for every ``i``, as futures."""
        return self.client.compute(_tasks(func, parts, self._shared(broadcast)))

    def _by_worker(self, parts):
        """``{worker: [its partitions]}``, asked of the scheduler once per set of parts."""
        keys = tuple(p.key for p in parts)
        if self._placement is None or self._placement[0] != keys:
            self._wait(parts)  # a partition being computed is nowhere yet
            where = self.client.who_has(parts)
            groups = {}
            for part in parts:
                groups.setdefault(sorted(where[part.key])[0], []).append(part)
            self._placement = keys, groups
        return self._placement[1]

    def _wait(self, parts):
        """Until every one of ``parts`` is computed (on this backend's client,
        whether or not it is the default one)."""
        from distributed import wait

        with self.client.as_current():
            wait(parts)

    def gather(self, parts):
        """The results of ``parts``, fetched in requests of at most
        :data:`GATHER_BYTES` (one partition at a time when they are larger)."""
        self._wait(parts)  # sizes are known once computed
        sizes = self.client.nbytes([p.key for p in parts], summary=False)
        results, request, size = [], [], 0
        for part in parts:
            if request and size + sizes.get(part.key, 0) > GATHER_BYTES:
                results += self.client.gather(request)
                request, size = [], 0
            request.append(part)
            size += sizes.get(part.key, 0)
        return results + (self.client.gather(request) if request else [])

    def sum(self, parts):
        """``sum(parts)`` (see :func:`add`) as a tree of additions on the workers, gathered.

        Additions run where their inputs are (those of one worker first), so a
        worker sends one partial result up the tree, not one per partition.
        """
        while len(parts) > 1:
            parts = [self.client.submit(add, *parts[i:i + SUM_FAN_IN], pure=False)
                     for i in range(0, len(parts), SUM_FAN_IN)]
        return self.client.gather(parts[0])

    def map_sum(self, func, parts, broadcast=()):
        """``sum(func(part, *broadcast))`` over ``parts``, sent again if a worker is lost.

        Every worker adds up the results of its own partitions one after the
        other (one partial result in memory at a time, whatever its size), and
        the workers' sums go up a tree of additions: the client receives one
        result. Partitions lost with a worker are recomputed by dask from their
        lineage; what cannot be (the broadcast arguments, when their copies
        are gone) is sent again, up to :data:`LOST_WORKER_RETRIES` times.
        """
        from distributed import KilledWorker

        for _ in range(LOST_WORKER_RETRIES + 1):
            try:
                shared = self._shared(broadcast)
                return self.sum([
                    self.client.submit(fold, func, group, *shared, workers=[worker],
                                       allow_other_workers=True, pure=False)
                    for worker, group in self._by_worker(parts).items()])
            except (CancelledError, asyncio.CancelledError, KilledWorker) as exc:
                lost, self._placement = exc, None
        raise RuntimeError(f"dask workers were lost {LOST_WORKER_RETRIES + 1} times while "
                           f"evaluating {func.__name__}; the fit was stopped (no result "
                           f"is returned): {lost!r}") from lost


class LocalBackend:
    """Runs functions of the partitions with dask's default scheduler, in this process."""

    client = None
    blocks = staticmethod(_row_blocks)

    def map(self, func, *parts, broadcast=()):
        import dask

        return list(dask.compute(*_tasks(func, parts, broadcast)))

    def gather(self, parts):
        return list(parts)

    def sum(self, parts):
        return add(*parts)

    def map_sum(self, func, parts, broadcast=()):
        import dask

        return fold(func, parts, *broadcast) if len(parts) < 2 else add(*dask.compute(
            *[dask.delayed(fold, pure=False)(func, parts[i::2], *broadcast)
              for i in range(2)]))


def fold(func, parts, *broadcast):
    """``sum(func(part, *broadcast) for part in parts)``, one result at a time, in float64."""
    total = None
    for part in parts:
        value = func(part, *broadcast)
        total = add(value) if total is None else _accumulate(total, value)
    return total


def _accumulate(total, value):
    """``total + value`` (float64 arrays added in place)."""
    if isinstance(total, tuple):
        return tuple(_accumulate(t, v) for t, v in zip(total, value))
    if isinstance(total, np.ndarray):
        total += value
        return total
    return total + value


def add(*terms):
    """The sum of ``terms``, in float64 and in the given order: numbers, arrays, or
    tuples of them (added entry by entry)."""
    if isinstance(terms[0], tuple):
        return tuple(add(*entries) for entries in zip(*terms))
    total = np.asarray(terms[0], dtype=np.float64).copy()
    for term in terms[1:]:
        total += term
    return total if total.ndim else float(total)


def backend(client=None):
    """The backend of ``client``, of ``distributed.default_client()``, or the local one."""
    if client is None:
        try:
            from distributed import default_client

            client = default_client()
        except (ImportError, ValueError):  # no distributed, or no client started
            return LocalBackend()
    return ClusterBackend(client)


# --------------------------------------------------------------------------- validation
def _check_row_chunks(a, name, n_dims):
    """Refuse a dask array split along its columns or of the wrong dimension."""
    if a.ndim not in n_dims:
        raise ValueError(f"{name} must be a dask array with {' or '.join(map(str, n_dims))} "
                         f"dimension(s), got {a.ndim}.")
    if a.ndim == 2 and a.numblocks[1] != 1:
        raise ValueError(
            f"{name} is chunked along its columns ({a.numblocks[1]} column chunks): the "
            f"loss reduces over rows, so every chunk must hold whole rows. Rechunk it "
            f"with {name}.rechunk({{1: -1}}).")


def _known_rows(a):
    """``a`` with its row chunk sizes known (computed once when they are NaN)."""
    if a is None or not any(math.isnan(c) for c in a.chunks[0]):
        return a
    return a.compute_chunk_sizes()


def _as_chunked(a, name, like):
    """``a`` (dask or in-memory) as a dask array with the row chunks of ``like``."""
    import dask.array as da

    if a is None:
        return None
    if not is_dask_array(a):
        sparse = sp.issparse(a)
        a = sp.csr_matrix(a) if sparse else np.asarray(a)
        if a.shape[0] != like.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows but X has {like.shape[0]} samples.")
        return da.from_array(a, chunks=(like.chunks[0],) + tuple((s,) for s in a.shape[1:]),
                             asarray=not sparse)
    _check_row_chunks(a, name, (1, 2) if name == "y" else (1,))
    a = _known_rows(a)
    if a.shape[0] != like.shape[0]:
        raise ValueError(f"{name} has {a.shape[0]} rows but X has {like.shape[0]} samples.")
    return a if a.chunks[0] == like.chunks[0] else a.rechunk({0: like.chunks[0]})


def check_dask_X(X):
    """A 2-D dask ``X`` chunked by rows only, or a ValueError naming ``X``."""
    if not is_dask_array(X):
        raise ValueError("X is an in-memory array but y or sample_weight is a dask array: "
                         "pass X as a dask array too (chunked by rows), or compute the others.")
    _check_row_chunks(X, "X", (2,))
    return X


def check_dask_inputs(X, y, sample_weight):
    """Validated dask ``(X, y, sample_weight)`` with matching row chunks.

    The rule for mixed inputs: ``X`` decides. A dask ``X`` takes ``y`` and
    ``sample_weight`` as dask or in-memory arrays (the latter are split into
    the row chunks of ``X``); an in-memory ``X`` with a dask ``y`` or
    ``sample_weight`` is refused.
    """
    if y is None:
        raise ValueError("y is required: pass token labels or a probability matrix.")
    X = _known_rows(check_dask_X(X))
    return X, _as_chunked(y, "y", X), _as_chunked(sample_weight, "sample_weight", X)


# --------------------------------------------------------------------------- chunk work
def _chunk_facts(y, w):
    """``(labels, largest weight)`` of a chunk: what the global validation needs."""
    # Every row's label counts, also at weight zero, as in aggregate_contexts.
    labels = np.unique(np.asarray(y)) if getattr(y, "ndim", 2) == 1 else None
    largest = 1.0 if w is None else (float(np.max(w)) if np.size(w) else 0.0)
    return labels, largest


def _row_hash(H):
    """A deterministic 64-bit hash of every row's bytes (``-0.0`` counts as ``0.0``).

    Computed over blocks of rows: its temporaries stay small beside ``H``.
    """
    h = np.empty(H.shape[0], dtype=np.uint64)
    for start in range(0, H.shape[0], HASH_BLOCK_ROWS):
        block = np.ascontiguousarray(H[start:start + HASH_BLOCK_ROWS] + 0.0)
        raw = block.view(np.uint8).reshape(block.shape[0], -1)
        words = np.pad(raw, ((0, 0), (0, (-raw.shape[1]) % 8))).view(np.uint64)
        with np.errstate(over="ignore"):
            block_hash = (words * np.resize(_MULTIPLIERS, words.shape[1])).sum(
                axis=1, dtype=np.uint64)
        h[start:start + len(block)] = block_hash ^ (block_hash >> np.uint64(31))
    return h


def _weighted_groups(H_rows, S_rows, w):
    """Distinct rows of ``H_rows``, the sums of their rows of ``S_rows`` and of ``w``."""
    H, inverse = _unique_rows(H_rows)
    group = sp.csr_matrix((np.ones(len(w)), (inverse, np.arange(len(w)))),
                          shape=(H.shape[0], len(w)))
    return H, sp.csr_matrix(group @ S_rows), group @ w


def _chunk_pieces(X, y, w, classes, exponent, n_partitions):
    """Merge one chunk and split its distinct rows into ``n_partitions`` pieces."""
    X = check_embeddings(X)
    n = X.shape[0]
    Y, _ = check_targets(y, n, classes)
    if w is None:
        w = np.ones(n)
    else:
        try:
            w = _check_sample_weight(w, np.empty((n, 0)), dtype=np.float64,
                                     ensure_non_negative=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Invalid sample_weight: {exc}") from exc
        # The power of two of the largest weight of all chunks: the very
        # numbers aggregate_contexts uses on the whole sample_weight.
        w = np.ldexp(w, -exponent)
    keep = np.flatnonzero(w > 0)
    H, S, counts = _weighted_groups(X[keep], sp.diags(w[keep]) @ Y[keep], w[keep])
    target = (_row_hash(H) % np.uint64(n_partitions)).astype(np.intp)
    return tuple((H[target == k], S[target == k], counts[target == k])
                 for k in range(n_partitions))


def _merge_pieces(*pieces):
    """One partition: the pieces of every chunk merged (identical rows are one context)."""
    H = np.concatenate([p[0] for p in pieces])
    S = sp.vstack([p[1] for p in pieces], format="csr")
    counts = np.concatenate([p[2] for p in pieces])
    H, S, counts = _weighted_groups(H, S, counts)
    return H, S, counts


def _partition_total(merged):
    return float(np.sum(merged[2]))


def _partition_data(merged, total, classes):
    """The partition's contexts with weights normalized by the total of all partitions."""
    H, S, counts = merged
    P = sp.csr_matrix(sp.diags(1.0 / counts) @ S) if len(counts) else S
    P.eliminate_zeros()
    P.sort_indices()
    return _freeze(NTPData(H, P, counts / total, classes, np.empty(0, dtype=np.intp)))


def _summary(data):
    """What the client keeps of a partition: its size, entropy part and context norms."""
    entropy = float(np.sum(data.weights[data.support_rows] * entr(data.probabilities.data)))
    return data.n_contexts, entropy, np.asarray(data.context_norms)


def _column_squares(data):
    """``(largest |h_jk|, sum_j pi_j (h_jk / largest)^2)`` per column, without overflow."""
    H = np.asarray(data.embeddings, dtype=np.float64)
    largest = np.max(np.abs(H), axis=0, initial=0.0)
    unit = H / np.where(largest > 0, largest, 1.0)
    return largest, data.weights @ (unit * unit)


def _weighted_gram(data):
    """``sum_j pi_j h_j h_j^T`` of the partition, in float64."""
    A = np.sqrt(data.weights)[:, None] * np.asarray(data.embeddings, dtype=np.float64)
    return A.T @ A


def _rescaled(data, exponents):
    H = np.ldexp(data.embeddings, -exponents).astype(data.embeddings.dtype)
    return _freeze(NTPData(H, data.probabilities, data.weights, data.classes,
                           data.context_index))


def _global_classes(facts, y, classes):
    """Token labels: given, the sorted labels of 1-D ``y``, or ``arange`` of its columns."""
    if classes is not None:
        return np.array(classes)
    labels = [f[0] for f in facts]
    if y.ndim == 2:
        return np.arange(y.shape[1])
    union = np.unique(np.concatenate(labels))
    if union.size < 2:
        raise ValueError("y has fewer than two tokens (classes); next-token prediction "
                         "needs at least two.")
    return _labels_of(union)


# --------------------------------------------------------------------------- the data
@dataclass(eq=False)
class DaskNTPData:
    """Distinct contexts held as partitions on the workers (or in this process).

    Built by :func:`aggregate_dask_contexts`. Every partition is an
    :class:`~._ntp_data.NTPData` whose weights are those of the whole data
    (they sum to one over all partitions); partitions share no context.

    Attributes
    ----------
    parts : list
        The partitions (futures on a cluster, NTPData locally).
    backend : ClusterBackend or LocalBackend
        Where they live.
    classes : ndarray of shape (n_tokens,)
        Token labels.
    n_features : int
        Embedding dimension.
    dtype : numpy dtype
        Dtype of the embeddings (float32 or float64).
    sizes : list of int
        Contexts per partition.
    entropy : float
        ``H = -sum_j pi_j sum_z p_jz log p_jz`` of all partitions.
    context_norms : ndarray of shape (n_contexts,)
        ``||h_j||`` (partition after partition).
    """

    parts: list
    backend: object
    classes: np.ndarray
    n_features: int
    dtype: np.dtype
    sizes: list
    entropy: float
    context_norms: np.ndarray

    @property
    def n_contexts(self):
        """Number of distinct contexts ``m``."""
        return int(sum(self.sizes))

    @property
    def n_tokens(self):
        """Vocabulary size ``V``."""
        return len(self.classes)

    def map(self, func, broadcast=()):
        """``func(partition, *broadcast)`` on every partition (futures or values)."""
        return self.backend.map(func, self.parts, broadcast=broadcast)

    def reduce(self, func, broadcast=()):
        """The sum over partitions of ``func(partition, *broadcast)``, on the client.

        Parts are added in float64 in a fixed order (the same data give the
        same sum whatever finishes first).
        """
        return self.backend.map_sum(func, self.parts, broadcast)

    def with_intercept_column(self):
        """The contexts augmented by a constant feature, on the workers."""
        return self._replaced(self.map(with_intercept_column), self.n_features + 1)

    def rescaled(self, scaling):
        """The contexts divided column-wise by ``scaling`` (a FeatureScaling), on the workers."""
        if scaling.identity:
            return self
        return self._replaced(self.map(_rescaled, broadcast=(scaling.exponents,)),
                              self.n_features)

    def _replaced(self, parts, n_features):
        """The same contexts with new embeddings ``parts`` (their norms recomputed)."""
        summaries = self.backend.gather(self.backend.map(_summary, parts))
        return DaskNTPData(parts, self.backend, self.classes, n_features, self.dtype, self.sizes,
                           self.entropy, np.concatenate([s[2] for s in summaries]))

    def column_scales(self):
        """``sqrt(sum_j pi_j h_jk^2)`` per column, computed without squaring large entries."""
        parts = self.backend.gather(self.map(_column_squares))
        largest = np.max([p[0] for p in parts], axis=0)
        safe = np.where(largest > 0, largest, 1.0)
        total = sum(p[1] * (p[0] / safe) ** 2 for p in parts)
        return largest * np.sqrt(total)

    def largest_gram_eigenvalue(self):
        """``lambda_max(sum_j pi_j h_j h_j^T)``: the Gram matrix (n_features squared,
        float64) is summed on the workers, its eigenvalue computed on the client."""
        return max(float(np.linalg.eigvalsh(self.reduce(_weighted_gram))[-1]), 0.0)

    def gather(self):
        """All contexts as one :class:`~._ntp_data.NTPData` on the client, in the
        lexicographic order of :func:`~._ntp_data.aggregate_contexts`.

        Its ``context_index`` is empty: the map from the samples to their
        contexts (one integer per sample) is not kept.
        """
        return self._gathered

    @cached_property
    def _gathered(self):
        parts = [p for p in self.backend.gather(self.parts) if p.n_contexts]
        H = np.concatenate([p.embeddings for p in parts])
        P = sp.vstack([p.probabilities for p in parts], format="csr")
        pi = np.concatenate([p.weights for p in parts])
        order = np.lexsort(H.T[::-1])  # the row order of np.unique(H, axis=0)
        P = P[order]
        P.sort_indices()
        return _freeze(NTPData(np.ascontiguousarray(H[order]), P, pi[order], self.classes,
                               np.empty(0, dtype=np.intp)))


def aggregate_dask_contexts(X, y, sample_weight=None, *, client=None, classes=None):
    """Merge identical rows of row-chunked dask arrays into distinct contexts, on the workers.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
        Context embeddings, chunked by rows only (one column chunk).
        Unknown chunk sizes (NaN) are computed once.
    y : dask or in-memory array of shape (n_samples,) or (n_samples, n_tokens)
        Token labels, or probability rows (dense or scipy.sparse chunks).
        In-memory arrays are split into the row chunks of ``X``.
    sample_weight : dask or in-memory array of shape (n_samples,), default=None
        Nonnegative row weights (only their ratios matter).
    client : distributed.Client, default=None
        Where to run; by default ``distributed.default_client()``, and
        without one dask's default scheduler in this process.
    classes : array-like of shape (n_tokens,), default=None
        Token labels fixing the vocabulary (as in ``aggregate_contexts``).

    Returns
    -------
    data : DaskNTPData
        The distinct contexts, one partition per chunk of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from sklearn_ntp._data._dask import aggregate_dask_contexts
    >>> X = da.from_array(np.array([[0.0], [1.0], [0.0], [1.0]]), chunks=2)
    >>> data = aggregate_dask_contexts(X, [0, 1, 1, 1])  # h = 0 in both chunks
    >>> data.n_contexts, data.gather().probabilities.toarray().tolist()
    (2, [[0.5, 0.5], [0.0, 1.0]])
    """
    X, y, sample_weight = check_dask_inputs(X, y, sample_weight)
    run = backend(client)
    X_blocks, y_blocks, w_blocks = run.blocks([X, y, sample_weight])
    n = len(X_blocks)
    w_blocks = [None] * n if w_blocks is None else w_blocks
    facts = run.gather(run.map(_chunk_facts, y_blocks, w_blocks))
    largest = max(f[1] for f in facts)
    if not largest > 0:
        raise ValueError("sample_weight must have at least one positive entry "
                         "(all weights are zero).")
    exponent = int(np.frexp(largest)[1])
    classes = _global_classes(facts, y, classes)
    pieces = run.map(_chunk_pieces, X_blocks, y_blocks, w_blocks,
                     broadcast=(classes, exponent, n))
    workers = (sorted(run.client.scheduler_info()["workers"]) if run.client is not None
               else None)
    merged = [_merge_partition(run, pieces, k, workers) for k in range(n)]
    del pieces  # held by the merges until they are done, then released
    total = math.fsum(run.gather(run.map(_partition_total, merged)))
    parts = run.map(_partition_data, merged, broadcast=(total, classes))
    del merged
    summaries = run.gather(run.map(_summary, parts))
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    return DaskNTPData(parts, run, np.asarray(classes), X.shape[1], dtype,
                       [s[0] for s in summaries],
                       float(sum(s[1] for s in summaries)) + 0.0,
                       np.concatenate([s[2] for s in summaries]))


def _merge_partition(run, pieces, k, workers):
    """Partition ``k``: piece ``k`` of every chunk, taken where it is, then merged.

    Partitions go to the workers in turn (``workers``; any other one if that
    one is gone): each worker then holds its share of the contexts, which the
    scheduler's own placement (near the largest input) does not ensure.
    """
    if run.client is None:
        return _merge_pieces(*[p[k] for p in pieces])
    taken = [run.client.submit(operator.getitem, p, k, pure=False) for p in pieces]
    return run.client.submit(_merge_pieces, *taken, pure=False,
                             workers=[workers[k % len(workers)]], allow_other_workers=True)


def as_gathered_ntp_data(X, y=None, sample_weight=None):
    """:func:`~._ntp_data.as_ntp_data`, also of dask arrays: merged on the workers, then
    gathered on the client (the distinct contexts only, in ``aggregate_contexts``'s order)."""
    if any_dask(X, y, sample_weight):
        return aggregate_dask_contexts(X, y, sample_weight).gather()
    return as_ntp_data(X, y, sample_weight)
