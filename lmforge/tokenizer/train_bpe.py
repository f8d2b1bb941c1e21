"""Train a byte-level BPE with HF `tokenizers` and save it as a transformers tokenizer folder."""

import time
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast
from typing_extensions import TypedDict

from lmforge.chat.template import CHATML_TEMPLATE, EOS, PAD, SPECIAL_TOKENS
from lmforge.data import iter_documents
from lmforge.errors import ConfigError
from lmforge.recipe import TokenizerConfig
from lmforge.rundir import record_stage, write_report_section
from lmforge.tokenizer.fertility import fertility


def train_bpe(
    inputs: list[str | Path], vocab_size: int, min_frequency: int = 2, text_field: str = "text"
) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style pre-tokenisation): every byte sequence is encodable, no UNK."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((text for text, _ in iter_documents(inputs, text_field)), trainer)
    # add_special_tokens=True starts a text with EOS, the document boundary the model trained on;
    # this is what Llama-style tokenizers do with BOS, and what lm-evaluation-harness expects
    eos_id = tok.token_to_id(EOS)
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{EOS} $A", pair=f"{EOS} $A {EOS} $B", special_tokens=[(EOS, eos_id)]
            ),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        chat_template=CHATML_TEMPLATE,
        model_max_length=1 << 30,
    )


class TokenizerResult(TypedDict):
    vocab_size: int
    out: str
    fertility: dict[str, dict[str, float]]  # language -> words, tokens, tokens_per_word, bytes_per_token


def run_tokenizer_stage(cfg: TokenizerConfig, run_dir: str | Path) -> TokenizerResult:
    """Train, save to `<run>/tokenizer` (or cfg.out), measure fertility, report."""
    started = time.time()
    run_dir = Path(run_dir)
    if not cfg.inputs:
        raise ConfigError("tokenizer.inputs: give at least one training file")
    out = Path(cfg.out) if cfg.out else run_dir / "tokenizer"
    tokenizer = train_bpe(cfg.inputs, cfg.vocab_size, cfg.min_frequency, cfg.text_field)
    tokenizer.save_pretrained(out)
    fert = {lang: fertility(tokenizer, [path], cfg.text_field) for lang, path in cfg.fertility_texts.items()}
    summary = {"vocab_size": len(tokenizer), "out": str(out), "fertility": fert}
    record_stage(
        run_dir, "tokenizer", cfg.model_dump(), [*cfg.inputs, *cfg.fertility_texts.values()], None, started, summary
    )
    lines = ["## Tokenizer", "", f"Byte-level BPE, {len(tokenizer)} tokens, saved to `{out}`.", ""]
    if fert:
        lines += ["| language | words | tokens | tokens/word | bytes/token |", "|---|---:|---:|---:|---:|"]
        lines += [
            f"| {lang} | {f['words']} | {f['tokens']} | {f['tokens_per_word']:.3f} | {f['bytes_per_token']:.2f} |"
            for lang, f in fert.items()
        ]
    write_report_section(run_dir, "tokenizer", "\n".join(lines))
    return summary
