import json

from transformers import AutoTokenizer


def test_tokenizer_roundtrips_and_has_chat_template(tiny_data):
    tok = AutoTokenizer.from_pretrained(tiny_data / "tokenizer")
    for text in ["Der alte Fischer trägt einen schweren Korb.", "naïve café — 東京 🙂", "  spaces\n\nand\ttabs"]:
        ids = tok(text, add_special_tokens=False).input_ids
        assert tok.decode(ids) == text  # byte-level: any text survives, no unknown token
    chat = tok.apply_chat_template([{"role": "user", "content": "Hallo"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\nHallo<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>"


def test_fertility_is_reported_per_language(tiny_data):
    manifest = json.loads((tiny_data / "manifest.json").read_text())
    fert = manifest["stages"]["tokenizer"]["fertility"]
    assert set(fert) == {"en", "de"}
    for f in fert.values():
        assert f["tokens_per_word"] >= 1.0 and f["words"] > 100
    assert "tokens/word" in (tiny_data / "report.md").read_text()


def test_tokenize_writes_packed_splits(tiny_data):
    meta = json.loads((tiny_data / "tokens" / "train" / "meta.json").read_text())
    tok = AutoTokenizer.from_pretrained(tiny_data / "tokenizer")
    assert meta["docs"] == 300 and meta["dtype"] == "uint16" and meta["eos_id"] == tok.eos_token_id
    assert (tiny_data / "tokens" / "val" / "meta.json").exists()
