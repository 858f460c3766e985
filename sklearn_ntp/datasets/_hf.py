"""Adapters for Hugging Face ``transformers`` causal language models (optional)."""

import numbers

import numpy as np

#: How to get the optional dependencies of this module.
INSTALL_HINT = 'pip install "sklearn-ntp[lm]"'


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"this function needs PyTorch and transformers: {INSTALL_HINT}"
        ) from exc
    return torch


def hidden_state_embedder(model, *, layer=-1, device=None):
    """An ``embed`` function of :func:`next_token_statistics` for a causal LM.

    The returned ``embed(contexts)`` runs ``model`` once on the batch of
    contexts (tuples of token ids) with ``output_hidden_states=True`` under
    :func:`torch.no_grad`, and returns the hidden state of layer ``layer`` at
    each context's last position, as a float32 NumPy array of shape
    ``(len(contexts), hidden_size)``. Contexts of unequal lengths are padded on
    the right and masked: in a causal model no position attends to a later
    one, so every context's last state is the one it has alone.

    The model is put in evaluation mode (``model.eval()``: no dropout), so
    that equal contexts have equal states.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal language model, e.g. from
        ``transformers.AutoModelForCausalLM.from_pretrained``.
    layer : int, default=-1
        Index into the model's ``hidden_states``: 0 is the input embeddings,
        ``i`` the output of block ``i``; -1, the last, is the state the LM
        head reads (for GPT-2 after the final layer norm).
    device : str or torch.device, default=None
        Device to run on; the model is moved there. Default: the device of
        the model's parameters.

    Returns
    -------
    embed : callable
        ``embed(contexts) -> ndarray of shape (len(contexts), hidden_size)``.

    Raises
    ------
    ImportError
        If PyTorch is not installed (``pip install "sklearn-ntp[lm]"``).
    ValueError
        If ``layer`` is not an integer, or (when ``embed`` is called) is out of
        the model's range, or a context is longer than the model's
        ``max_position_embeddings``.

    See Also
    --------
    next_token_statistics : Calls ``embed`` on the distinct contexts of a corpus.
    lm_decoder : The model's output embedding matrix.

    Examples
    --------
    >>> from transformers import AutoModelForCausalLM  # doctest: +SKIP
    >>> from sklearn_ntp.datasets import hidden_state_embedder, next_token_statistics
    >>> model = AutoModelForCausalLM.from_pretrained(
    ...     "gpt2", local_files_only=True)  # doctest: +SKIP
    >>> stats = next_token_statistics(
    ...     [[464, 3290, 318, 257], [464, 3290, 373]],
    ...     hidden_state_embedder(model))  # doctest: +SKIP
    >>> stats.data.shape  # doctest: +SKIP
    (5, 768)
    """
    torch = _import_torch()
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise ValueError(f"layer must be an integer, got {layer!r}.")
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device
    model.eval()
    max_length = getattr(model.config, "max_position_embeddings", None)

    def embed(contexts):
        lengths = torch.tensor([len(c) for c in contexts])
        if max_length is not None and int(lengths.max()) > max_length:
            raise ValueError(
                f"a context has {int(lengths.max())} tokens, more than the model's "
                f"max_position_embeddings={max_length}; pass context_length."
            )
        # Right padding with token id 0: masked, and later than every real position.
        ids = torch.zeros((len(contexts), int(lengths.max())), dtype=torch.long)
        mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
        ids[mask] = torch.tensor([t for c in contexts for t in c], dtype=torch.long)
        with torch.no_grad():
            states = model(input_ids=ids.to(device), attention_mask=mask.long().to(device),
                           output_hidden_states=True).hidden_states
        if not -len(states) <= layer < len(states):
            raise ValueError(f"layer={layer} is out of range for a model with "
                             f"{len(states)} hidden states (embeddings and blocks).")
        rows = torch.arange(len(contexts), device=device)
        last = states[layer][rows, (lengths - 1).to(device)]
        return last.float().cpu().numpy()

    return embed


def lm_decoder(model):
    """The output embedding matrix of a language model, and its bias.

    The LM head computes the logits ``W h + b`` from the last hidden state
    ``h``: ``W`` is a decoder in the package's convention (one row per token,
    like an estimator's ``coef_``), to compare with the decoders fitted on the
    model's hidden states, e.g. with :func:`sklearn_ntp.metrics.decoder_similarity`.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A model with an output embedding (``model.get_output_embeddings()``).

    Returns
    -------
    W : ndarray of shape (vocab_size, hidden_size)
        The output embedding matrix, float32 (a copy).
    b : ndarray of shape (vocab_size,) or None
        Its bias, float32, or None when the head has none (GPT-2).

    Raises
    ------
    ImportError
        If PyTorch is not installed (``pip install "sklearn-ntp[lm]"``).
    ValueError
        If the model has no output embedding.

    See Also
    --------
    hidden_state_embedder : Hidden states of the same model.

    Examples
    --------
    >>> from transformers import AutoModelForCausalLM  # doctest: +SKIP
    >>> from sklearn_ntp.datasets import lm_decoder
    >>> model = AutoModelForCausalLM.from_pretrained(
    ...     "gpt2", local_files_only=True)  # doctest: +SKIP
    >>> W, b = lm_decoder(model)  # doctest: +SKIP
    >>> W.shape, b  # doctest: +SKIP
    ((50257, 768), None)
    """
    _import_torch()
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"model ({type(model).__name__}) has no output embedding: "
                         "pass a causal language model (e.g. ...ForCausalLM).")
    bias = getattr(head, "bias", None)
    return (_to_numpy(head.weight), None if bias is None else _to_numpy(bias))


def _to_numpy(tensor):
    return np.array(tensor.detach().float().cpu().numpy(), dtype=np.float32)
