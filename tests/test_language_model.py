"""Next-token statistics of a corpus embedded by a language model, and the Hugging Face adapter."""

import sys
from collections import Counter

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import hidden_state_embedder, lm_decoder, next_token_statistics
from sklearn_ntp.implicit_bias import entropy_lower_bound, implicit_bias_limit

CORPUS = [[3, 1, 4, 1, 5, 9, 2, 6], [3, 1, 4, 1, 3], [2, 7, 1, 8, 2, 8], [3, 1]]


def features(context):
    """A deterministic feature vector of a context, to find out which context a row is."""
    return np.array([len(context), sum(context), context[-1], context[0], hash(context) % 97],
                    dtype=np.float64)


def feature_embed(contexts):
    return np.stack([features(c) for c in contexts])


def reference_pairs(sequences, k):
    """The raw (context, next token) pairs, counted directly."""
    return Counter(
        (tuple(seq[t - k:t]) if k else tuple(seq[:t]), seq[t])
        for seq in sequences for t in range(k or 1, len(seq))
    )


@pytest.mark.parametrize("context_length", [None, 1, 2, 3])
def test_statistics_match_direct_counts(context_length):
    stats = next_token_statistics(CORPUS, feature_embed, context_length=context_length,
                                  batch_size=3)
    pairs = reference_pairs(CORPUS, context_length)
    contexts = Counter()
    for (context, _), n in pairs.items():
        contexts[context] += n
    assert sorted(stats.contexts) == sorted(contexts)
    assert stats.target.shape == (len(contexts), 10)  # ids 0..9: V = max id + 1
    Y = stats.target.toarray()
    for j, context in enumerate(stats.contexts):
        assert stats.counts[j] == contexts[context]
        for z in range(10):
            assert Y[j, z] == pytest.approx(pairs[(context, z)] / contexts[context])
        assert_array_equal(stats.data[j], features(context))
    assert_allclose(stats.sample_weight, stats.counts / sum(pairs.values()))
    assert stats.target_names == list(range(10))
    assert stats.data.dtype == np.float64


def test_each_distinct_context_is_embedded_once_in_bounded_batches():
    calls = []

    def embed(contexts):
        calls.append(list(contexts))
        return feature_embed(contexts)

    stats = next_token_statistics(CORPUS, embed, batch_size=4)
    embedded = [c for batch in calls for c in batch]
    assert sorted(embedded) == sorted(stats.contexts)
    assert len(set(embedded)) == len(embedded)
    assert all(1 <= len(batch) <= 4 for batch in calls)
    assert all(isinstance(t, int) for c in embedded for t in c)
    # Batches of increasing lengths, so that a language model pads little.
    lengths = [len(c) for c in embedded]
    assert lengths == sorted(lengths)


def test_token_names_from_a_list_or_a_tokenizer_dict():
    names = ["<eos>", "the", "cat", "sat", "on", "mat"]
    text = [["the", "cat", "sat", "on", "the", "mat", "<eos>"], ["the", "cat", "<eos>"]]
    ids = [[names.index(t) for t in seq] for seq in text]
    expected = next_token_statistics(ids, feature_embed, context_length=1)
    for vocabulary in (names, {name: z for z, name in enumerate(names)}):
        stats = next_token_statistics(text, feature_embed, context_length=1,
                                      vocabulary=vocabulary)
        assert stats.target_names == names
        assert stats.contexts == expected.contexts
        assert (stats.target != expected.target).nnz == 0
    # The vocabulary fixes the number of columns, beyond the largest id seen.
    wider = next_token_statistics(ids, feature_embed, vocabulary=names + ["dog"])
    assert wider.target.shape[1] == 7


def test_output_fits_and_matches_the_raw_pairs():
    stats = next_token_statistics(CORPUS, feature_embed, context_length=2)
    pairs = reference_pairs(CORPUS, 2)
    X_raw = np.stack([features(c) for (c, _), n in pairs.items() for _ in range(n)])
    y_raw = np.array([z for (_, z), n in pairs.items() for _ in range(n)])
    # The entropy bound of the raw pairs (aggregated by the library from X alone)
    # against the distinct contexts with their weights.
    V = stats.target.shape[1]
    raw_H = entropy_lower_bound(np.eye(V)[y_raw], X=X_raw)
    assert entropy_lower_bound(stats.target, X=stats.data,
                               sample_weight=stats.sample_weight) == pytest.approx(raw_H)
    clf = NTPLinearClassifier(max_iter=20).fit(stats.data, stats.target,
                                                sample_weight=stats.sample_weight)
    assert clf.coef_.shape == (V, stats.data.shape[1])
    limit = implicit_bias_limit(stats.data, stats.target, stats.sample_weight)
    assert limit.finite_component.shape == (V, stats.data.shape[1])
    assert limit.entropy == pytest.approx(raw_H)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int64, np.float64])
def test_dtype_of_the_hidden_states(dtype):
    stats = next_token_statistics(CORPUS, lambda cs: feature_embed(cs).astype(dtype))
    expected = {np.float16: np.float32, np.int64: np.float64}.get(dtype, dtype)
    assert stats.data.dtype == expected
    assert_array_equal(stats.data, feature_embed(stats.contexts).astype(dtype))


def test_bfloat16_batches_are_upcast():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    stats = next_token_statistics(CORPUS, lambda cs: feature_embed(cs).astype(ml_dtypes.bfloat16))
    assert stats.data.dtype == np.float32


def test_a_wider_later_batch_widens_the_result():
    def embed(contexts):  # float32 for short contexts, float64 for long ones
        return feature_embed(contexts).astype(np.float32 if len(contexts[0]) < 3 else np.float64)

    stats = next_token_statistics(CORPUS, embed, batch_size=2)
    assert stats.data.dtype == np.float64
    assert_array_equal(stats.data, feature_embed(stats.contexts))


def _batch_dependent(bad):
    """An embed function that returns ``bad(states)`` for its second batch."""
    calls = []

    def embed(contexts):
        calls.append(None)
        states = feature_embed(contexts)
        return bad(states) if len(calls) == 2 else states

    return embed


@pytest.mark.parametrize("bad, message", [
    (lambda s: s[:-1], r"shape \(1, 5\); expected \(2, n_features\)"),
    (lambda s: s.ravel(), "shape"),
    (lambda s: s[:, :3], "3 features, but 5 for the earlier batches"),
    (lambda s: np.where(s > 3, np.nan, s), "non-finite"),
    (lambda s: np.where(s > 3, np.inf, s), "non-finite"),
    (lambda s: s.astype(complex), "not real numbers"),
    (lambda s: [[1.0], [1.0, 2.0]], "not an array"),
])
def test_bad_hidden_states_name_the_batch(bad, message):
    sequences = [[0, 1, 2, 3, 4]]  # prefixes (0,), (0, 1), ...; batch 1 starts at (0, 1, 2)
    with pytest.raises(ValueError, match=r"batch 1 \(first context \(0, 1, 2\)\)") as info:
        next_token_statistics(sequences, _batch_dependent(bad), batch_size=2)
    assert info.match(message)


@pytest.mark.parametrize("kwargs, sequences, message", [
    ({}, [], "no \\(context, next token\\) pair"),
    ({}, [[1], [2], []], "no \\(context, next token\\) pair"),
    ({"context_length": 3}, [[1, 2, 3]], "no \\(context, next token\\) pair"),
    ({}, "abc", "single string"),
    ({}, 5, "iterable of token sequences"),
    ({}, [["a", "b"]], "not an integer token id; pass vocabulary"),
    ({"vocabulary": ["a", "b"]}, [["a", "c"]], "'c', which is not in vocabulary"),
    ({}, [[0, -1]], "negative token id"),
    ({"vocabulary": ["a", "b"]}, [[0, 2]], "token id 2, but vocabulary has only 2"),
    ({"vocabulary": {"a": 0, "b": 2}}, [[0, 1]], "ids 0, ..., 1 exactly once"),
    ({"vocabulary": ["a", "a"]}, [[0, 1]], "duplicate"),
    ({"vocabulary": []}, [[0, 1]], "vocabulary is empty"),
    ({"context_length": 0}, [[0, 1]], "context_length must be an integer >= 1"),
    ({"batch_size": 0}, [[0, 1]], "batch_size must be an integer >= 1"),
    ({"batch_size": 2.0}, [[0, 1]], "batch_size must be an integer >= 1"),
])
def test_bad_input(kwargs, sequences, message):
    with pytest.raises(ValueError, match=message):
        next_token_statistics(sequences, feature_embed, **kwargs)


def test_embed_must_be_callable():
    with pytest.raises(ValueError, match="embed must be a callable"):
        next_token_statistics(CORPUS, np.eye(3))


# Hugging Face adapter: a tiny randomly initialised GPT-2, built from a config (no download).


@pytest.fixture(scope="module")
def tiny_gpt2():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50,
                                     n_positions=16, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)  # in training mode, as constructed


def one_by_one(model, contexts, layer=-1):
    """Every context's last hidden state, from a direct call of the model on it alone."""
    import torch

    model.eval()
    with torch.no_grad():
        return np.stack([
            model(torch.tensor([list(c)]), output_hidden_states=True)
            .hidden_states[layer][0, -1].numpy() for c in contexts
        ])


@pytest.mark.parametrize("layer", [-1, 0, 1])
def test_hidden_states_equal_the_model_on_each_context_alone(tiny_gpt2, layer):
    sequences = [[5, 17, 3, 3, 42, 8, 11], [5, 17, 9], [49, 0, 5, 17, 3, 1]]
    stats = next_token_statistics(sequences, hidden_state_embedder(tiny_gpt2, layer=layer),
                                  batch_size=4)
    assert not tiny_gpt2.training  # no dropout: equal contexts, equal states
    assert stats.data.dtype == np.float32 and stats.data.shape == (len(stats.contexts), 32)
    # Batches mix lengths 1 to 6: padding must not change any state.
    assert_allclose(stats.data, one_by_one(tiny_gpt2, stats.contexts, layer),
                    rtol=1e-5, atol=1e-5)
    assert stats.target.shape == (len(stats.contexts), 50)


def test_hidden_states_with_fixed_windows_fit_end_to_end(tiny_gpt2):
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 50, size=30).tolist() for _ in range(4)]
    stats = next_token_statistics(sequences, hidden_state_embedder(tiny_gpt2), context_length=3)
    assert all(len(c) == 3 for c in stats.contexts)
    assert_allclose(stats.data, one_by_one(tiny_gpt2, stats.contexts), rtol=1e-5, atol=1e-5)
    # No implicit-bias reference: the geometry of 100 contexts in 32 dimensions is
    # tested elsewhere and costs half a minute.
    clf = NTPLinearClassifier(max_iter=10, compute_implicit_bias=False).fit(
        stats.data, stats.target, sample_weight=stats.sample_weight)
    assert clf.coef_.shape == (50, 32)


def test_embedder_bad_layer_and_long_contexts(tiny_gpt2):
    with pytest.raises(ValueError, match="layer must be an integer"):
        hidden_state_embedder(tiny_gpt2, layer=1.0)
    with pytest.raises(ValueError, match="layer=3 is out of range .* 3 hidden states"):
        hidden_state_embedder(tiny_gpt2, layer=3)([(1, 2)])
    with pytest.raises(ValueError, match="17 tokens, more than .*=16; pass context_length"):
        next_token_statistics([list(range(18))], hidden_state_embedder(tiny_gpt2))


def test_lm_decoder(tiny_gpt2):
    import torch

    W, b = lm_decoder(tiny_gpt2)
    assert W.dtype == np.float32 and W.shape == (50, 32) and b is None
    assert_array_equal(W, tiny_gpt2.transformer.wte.weight.detach().numpy())  # tied
    W[0, 0] += 1.0  # a copy: the model is unchanged
    assert W[0, 0] != tiny_gpt2.lm_head.weight[0, 0].item()

    head = torch.nn.Linear(4, 6, bias=True)
    model = type("WithBias", (), {"get_output_embeddings": lambda self: head})()
    W, b = lm_decoder(model)
    assert_array_equal(b, head.bias.detach().numpy())
    no_head = type("NoHead", (), {"get_output_embeddings": lambda self: None})()
    with pytest.raises(ValueError, match="no output embedding"):
        lm_decoder(no_head)


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes ``import torch`` fail
    for call in (lambda: hidden_state_embedder(object()), lambda: lm_decoder(object())):
        with pytest.raises(ImportError, match=r'pip install "sklearn-ntp\[lm\]"'):
            call()
