"""Tiny real models for tests: a random Llama, and a GGUF file written the way llama.cpp's converter does."""

import json

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def tiny_llama(vocab: int = 97, tie: bool = True, **over) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        **{
            "vocab_size": vocab,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 32,
            "tie_word_embeddings": tie,
            **over,
        }
    )
    return LlamaForCausalLM(cfg).eval()


def write_tiny_gguf(path, model, tok) -> None:
    """A llama GGUF as llama.cpp's converter writes one: fp32 tensors under GGUF names, q/k rows
    permuted to llama.cpp's rotary layout, a gpt2 (byte-level BPE) vocabulary with its merges."""
    import gguf
    import numpy as np

    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny")
    w.add_context_length(c.max_position_embeddings)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_embedding_length(c.hidden_size)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_rope_freq_base(10000.0)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    spec = json.loads(tok.backend_tokenizer.to_str())
    specials = {t["content"] for t in spec["added_tokens"]}
    vocab = sorted(spec["model"]["vocab"], key=spec["model"]["vocab"].get)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(vocab)
    w.add_token_types([gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in vocab])
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]])
    w.add_bos_token_id(tok.eos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, c.num_hidden_layers)

    def permute(x, heads):
        return x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)

    for name, t in model.state_dict().items():
        x = t.numpy().astype(np.float32)
        if name.endswith("q_proj.weight"):
            x = permute(x, c.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            x = permute(x, c.num_key_value_heads)
        w.add_tensor(names.get_name(name, try_suffixes=(".weight",)), x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def sentencepiece_style_tokenizer(texts: list[str], vocab_size: int = 500, layout: str = "metaspace"):
    """A Llama-2-style tokenizer.json trained here: BPE over "▁"-marked words, the 256 <0xXX> byte
    tokens at ids 3-258 for characters it never saw, <s> prepended; the layout transformers gives
    a converted SentencePiece model (no such tokenizer ships in a wheel). `layout`: "metaspace"
    (the "▁" from a Metaspace pre-tokenizer, as newer conversions write it) or "llama2" (from a
    Prepend + Replace normalizer and no pre-tokenizer, as Llama 2's own tokenizer.json has it)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.BPE())  # pieces never cross a word boundary, as in SentencePiece
    words.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    words.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False))
    trained = json.loads(words.to_str())["model"]
    specials = ["<unk>", "<s>", "</s>"]
    pieces = specials + [f"<0x{b:02X}>" for b in range(256)] + sorted(trained["vocab"], key=trained["vocab"].get)
    vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    if layout == "llama2":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens(specials)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def long_talker(folder, tokenizer_dir, context: int = 4096):
    """A random tiny Llama that greedy decoding never stops: the rows of its end-of-text and
    end-of-turn tokens in the (untied) output layer are zero, so their logit is 0 while the top
    one of the others is positive. Requests run to `max_tokens`, long enough (thousands of tokens)
    for tests of abandoned and in-flight requests."""
    from transformers import AutoTokenizer

    from lmforge.engine import stop_token_ids

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = tiny_llama(
        vocab=len(tok),
        tie=False,
        max_position_embeddings=context,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    with torch.no_grad():
        for i in stop_token_ids(tok):
            model.lm_head.weight[i] = 0
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


FAMILY_CONFIGS = {
    # the features each family adds to Llama's layer, at toy size; rows of 64 split into GGUF blocks
    "llama3": (
        "LlamaConfig",
        {
            "rope_parameters": {
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            }
        },
    ),
    "mistral": ("MistralConfig", {"sliding_window": None}),
    "qwen2": ("Qwen2Config", {"tie_word_embeddings": True}),
    "qwen3": ("Qwen3Config", {"head_dim": 32}),
    "gemma2": (
        "Gemma2Config",
        {
            "tie_word_embeddings": True,
            "head_dim": 32,
            "query_pre_attn_scalar": 32,
            "sliding_window": 8,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
        },
    ),
    "gemma3": (
        "Gemma3TextConfig",
        {
            "tie_word_embeddings": True,
            "head_dim": 32,
            "query_pre_attn_scalar": 32,
            "sliding_window": 8,
            "num_hidden_layers": 6,
        },
    ),
    "phi3": ("Phi3Config", {"sliding_window": None}),
    "smollm3": ("SmolLM3Config", {"num_hidden_layers": 4}),
}


def tiny_family(family: str, vocab: int, bos: int, eos: int, **over):
    """A random model of `family` (a key of FAMILY_CONFIGS) built from its transformers config."""
    import transformers

    name, extra = FAMILY_CONFIGS[family]
    torch.manual_seed(0)
    cfg = getattr(transformers, name)(
        **{
            "vocab_size": vocab,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 128,
            "tie_word_embeddings": False,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
            **extra,
            **over,
        }
    )
    return transformers.AutoModelForCausalLM.from_config(cfg).eval()
