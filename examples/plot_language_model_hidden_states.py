"""
===================================
Hidden states of a language model
===================================

The paper's decoder reads *fixed* context embeddings. In a causal language
model they are the final hidden states, and its output embedding matrix is a
decoder ``W`` of shape ``(V, d)``. This example turns a token corpus and a
model into NTP data with :func:`~sklearn_ntp.datasets.next_token_statistics`,
fits a decoder on the model's own hidden states and compares it with the
model's decoder using :func:`~sklearn_ntp.metrics.decoder_similarity`. It
ends with :func:`~sklearn_ntp.datasets.make_zipf_ntp_data`, synthetic data
with the statistics of text at GPT-2's sizes (``V = 50,257``, ``d = 768``).

The model is a tiny randomly initialised GPT-2 when ``transformers`` is
installed (``pip install "sklearn-ntp[lm]"``); otherwise a NumPy stand-in with
the same interface. Neither is trained, so the numbers only show the recipe.
"""

# %%
# A corpus of token ids
# ---------------------
# Logical lines of the Python standard library, tokenized by
# :func:`~sklearn_ntp.datasets.load_python_tokens`; the vocabulary lists the
# token names, and a token's id is its position in it.
import matplotlib.pyplot as plt
import numpy as np

from sklearn_ntp import NTPLinearClassifier
from sklearn_ntp.datasets import load_python_tokens, make_zipf_ntp_data, next_token_statistics
from sklearn_ntp.metrics import decoder_similarity, token_cosine_similarity

lines = load_python_tokens(vocab_size=39, max_files=10)
vocabulary = sorted({token for line in lines for token in line})
print(f"{len(lines)} lines, V = {len(vocabulary)} tokens, e.g. {lines[0]}")

# %%
# A model: its ``embed`` function and its decoder
# ------------------------------------------------
# :func:`~sklearn_ntp.datasets.hidden_state_embedder` runs a Hugging Face
# causal LM on batches of contexts and returns the last position's hidden
# state; :func:`~sklearn_ntp.datasets.lm_decoder` returns its output
# embedding matrix. Without ``transformers`` we write an ``embed`` function by
# hand: any function from a list of contexts (tuples of token ids) to an
# ``(n, d)`` array will do.
try:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from sklearn_ntp.datasets import hidden_state_embedder, lm_decoder

    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(vocabulary),
                        bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    embed = hidden_state_embedder(model)
    W_lm, _ = lm_decoder(model)
    print("model: a tiny random GPT-2")
except ImportError:
    rng = np.random.default_rng(0)
    E = rng.standard_normal((len(vocabulary), 32)) / np.sqrt(32)  # tied embeddings
    mixing = rng.standard_normal((32, 32)) / np.sqrt(32)

    def embed(contexts):
        """Decaying sum of the tokens' embeddings, through one nonlinear layer."""
        states = []
        for context in contexts:
            decay = 0.5 ** np.arange(len(context))[::-1]
            states.append(np.tanh(decay @ E[list(context)] @ mixing))
        return np.array(states)

    W_lm = E
    print("model: a NumPy stand-in (transformers is not installed)")

# %%
# Next-token statistics
# ---------------------
# Every context of the last ``k = 2`` tokens is embedded once, in batches;
# identical contexts are one context, with its empirical next-token
# distribution (a row of the sparse ``target``) and its frequency.
stats = next_token_statistics(lines, embed, context_length=2, vocabulary=vocabulary)
sizes = np.diff(stats.target.indptr)
print(f"m = {len(stats.contexts)} distinct contexts, d = {stats.data.shape[1]}, "
      f"median support {np.median(sizes):g} of V = {stats.target.shape[1]}")
for j in np.argsort(stats.sample_weight)[::-1][:3]:
    context = " ".join(stats.target_names[z] for z in stats.contexts[j])
    print(f"  {context!r:>12}: frequency {stats.sample_weight[j]:.3f}, support {sizes[j]}")

# %%
# A decoder fitted on the hidden states, against the model's
# ----------------------------------------------------------
# The output plugs into the estimator as it is. The decoders live in the same
# feature space; :func:`~sklearn_ntp.metrics.decoder_similarity` is invariant
# to rotating either one and to adding a vector to every row (which leaves the
# softmax unchanged). A random decoder of the same shape gives the scale of
# "unrelated": with ``d = 32`` features for ``V = 40`` tokens a rotation fits
# a lot, and unrelated decoders already score about one half (the baseline
# shrinks like ``sqrt(d / V)``, to about 0.1 at GPT-2's sizes).
clf = NTPLinearClassifier(max_iter=300, compute_implicit_bias=False)
clf.fit(stats.data, stats.target, sample_weight=stats.sample_weight)
W_random = np.random.default_rng(1).standard_normal(W_lm.shape)
for name, W in {"model's decoder": W_lm, "random decoder": W_random}.items():
    print(f"fitted vs {name:<16} Procrustes cosine "
          f"{decoder_similarity(clf.coef_, W):.3f}, CKA "
          f"{decoder_similarity(clf.coef_, W, method='cka'):.3f}")

# %%
# Per token, after the best rotation of the fitted decoder onto the model's,
# :func:`~sklearn_ntp.metrics.token_cosine_similarity` shows which tokens
# the two decoders agree on. An untrained model's decoder has nothing to do
# with the statistics of Python code, and the cosines scatter around zero;
# with a trained checkpoint (below) this is the comparison that tells how much
# of the model's decoder the next-token statistics of a corpus explain.
counts = np.asarray(stats.target.T @ stats.counts).ravel()  # token frequencies
cosines = token_cosine_similarity(clf.coef_, W_lm, align=True)
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.scatter(counts + 1, cosines)
ax.set(xscale="log", xlabel="number of occurrences as next token (+1)",
       ylabel="cosine after alignment", title="Fitted decoder vs the model's, per token")
plt.show()

# %%
# A real checkpoint
# -----------------
# With a model in your own Hugging Face cache (nothing is downloaded with
# ``local_files_only=True``), the same lines run at GPT-2's sizes:
#
# .. code-block:: python
#
#    from transformers import AutoModelForCausalLM, AutoTokenizer
#
#    tokenizer = AutoTokenizer.from_pretrained("gpt2", local_files_only=True)
#    model = AutoModelForCausalLM.from_pretrained("gpt2", local_files_only=True)
#    sequences = [tokenizer(text)["input_ids"] for text in texts]  # your corpus
#    stats = next_token_statistics(
#        sequences, hidden_state_embedder(model), context_length=16,
#        vocabulary=tokenizer.convert_ids_to_tokens(range(len(tokenizer))))
#    W_lm, _ = lm_decoder(model)                                 # (50257, 768)
#    clf = NTPLinearClassifier(solver="lbfgs", compute_implicit_bias=False)
#    clf.fit(stats.data, stats.target, sample_weight=stats.sample_weight)
#    decoder_similarity(W_lm, clf.coef_)
#
# Contexts of 16 tokens keep the number of distinct contexts close to the
# number of positions; whole prefixes (``context_length=None``) make every
# position its own context.
#
# Synthetic data at language-model sizes
# --------------------------------------
# :func:`~sklearn_ntp.datasets.make_zipf_ntp_data` draws next tokens from
# Zipf's law over GPT-2's vocabulary, context by context until a
# heavy-tailed number of distinct tokens is seen: ``Y`` stays sparse (here a
# few nonzeros per row out of 50,257 columns) and the pooled token counts
# have the rank-frequency slope ``-exponent`` of natural language.
X, Y, weights = make_zipf_ntp_data(2000, 50257, 768, exponent=1.1, dtype=np.float32,
                                   random_state=0)
print(f"X {X.shape} {X.dtype}, Y {Y.shape} with {Y.nnz} nonzeros "
      f"({Y.nnz / Y.shape[0]:.1f} per row)")
pooled = np.sort(np.asarray(Y.T @ weights).ravel())[::-1]
ranks = np.arange(1, pooled.size + 1)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
ax1.loglog(ranks[pooled > 0], pooled[pooled > 0], ".", label="pooled counts")
ax1.loglog(ranks[:1000], pooled[0] * ranks[:1000] ** -1.1, label="slope -1.1")
ax1.set(xlabel="rank", ylabel="count", title="Token frequencies")
ax1.legend()
ax2.hist(np.diff(Y.indptr), bins=np.logspace(0, 3, 20))
ax2.set(xscale="log", yscale="log", xlabel="support size S_j", ylabel="contexts",
        title="Support sizes")
plt.show()
