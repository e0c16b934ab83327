"""Shared fixtures: tiny random models (unit tests, seconds) and real packaged models (integration).

Tiny models are built in memory from a config with a small byte-level BPE tokenizer trained
on the fly, so unit tests need no download and no cache.
"""

from __future__ import annotations

import functools

import pytest
import torch

from steerlab.models import LoadedModel, from_pretrained_objects

CORPUS = [
    "The cat sat on the mat and looked at the garden.",
    "A kind neighbour helps carry the shopping upstairs.",
    "The recipe calls for two cups of flour and some milk.",
    "Tomorrow's weather forecast says rain in the afternoon.",
    "She answered the question honestly and with care.",
    "He ignored the request and left the office early.",
    "Numbers like 1234 and 5678 appear in the report.",
] * 3


@functools.lru_cache(maxsize=None)
def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    from tokenizers.processors import TemplateProcessing

    tokenizer.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny(arch: str, n_layers: int = 4, hidden: int = 32, seed: int = 0) -> LoadedModel:
    """A randomly initialised causal LM of the given architecture, wrapped as a LoadedModel."""
    import copy

    import transformers as tf

    tokenizer = copy.deepcopy(tiny_tokenizer())
    vocab = len(tokenizer)
    common = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    if arch == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**common))
    elif arch == "qwen2":
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(**common))
    elif arch == "gemma3":
        model = tf.Gemma3ForCausalLM(
            tf.Gemma3TextConfig(**common, head_dim=8, sliding_window=8, query_pre_attn_scalar=8)
        )
    elif arch == "gpt2":
        model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=vocab, n_embd=hidden, n_layer=n_layers, n_head=4, n_positions=256))
    elif arch == "gpt_neox":
        model = tf.GPTNeoXForCausalLM(
            tf.GPTNeoXConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=n_layers, num_attention_heads=4, intermediate_size=2 * hidden, max_position_embeddings=256)
        )
    elif arch == "olmo":
        model = tf.OlmoForCausalLM(tf.OlmoConfig(**common))
    else:
        raise ValueError(arch)
    model.to(torch.float32)
    return from_pretrained_objects(f"tiny-{arch}", model, tokenizer, is_chat=False)


TINY_ARCHS = ["llama", "gemma3", "qwen2"]


@pytest.fixture(params=TINY_ARCHS)
def tiny_lm(request) -> LoadedModel:
    return build_tiny(request.param)


@pytest.fixture
def tiny_llama() -> LoadedModel:
    return build_tiny("llama")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One OpenMP thread for a module: small models gain nothing from two, and on a shared
    2-core machine two threads contend badly (5-20x slower was measured)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def smollm() -> LoadedModel:
    from steerlab import load_model

    return load_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def gemma() -> LoadedModel:
    from steerlab import load_model

    return load_model("gemma-3-270m")
