"""Curation blocks: offline language ID, PII redaction, exact and MinHash dedup."""

import json
import random

from datatrove.data import Document

from lmforge.curate import OfflineLanguageFilter, RedactPII, redact
from lmforge.text import identify
from tests.conftest import CORPUS

EMAILS = ["max.mustermann@example.de", "a_b+tag@mail.co.uk", "info@firma-gmbh.com"]
IPS = ["192.168.1.20", "8.8.8.8", "10.0.0.255", "fe80:0:0:0:202:b3ff:fe1e:8329", "2001:db8::1"]
PHONES = ["+49 30 1234567", "030 12345678", "+1 (415) 555-2671", "0171/1234567", "+44 20 7946 0958"]
IBANS = ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "NL91ABNA0417164300", "FR1420041010050500013M02606"]
ORDINARY = [
    "1999",
    "3.50 EUR",
    "1,250,000",
    "version 1.2.3",
    "01.02.2024",
    "24/7",
    "Seite 42",
    "DE00 1234 5678 9012 3456 78",
    "ISBN 978-3-16-148410-0",
    "12345",
]


def test_every_planted_pii_is_replaced_and_ordinary_numbers_are_not():
    rng = random.Random(0)
    planted = (
        [("<EMAIL>", e) for e in EMAILS]
        + [("<IP>", i) for i in IPS]
        + [("<PHONE>", p) for p in PHONES]
        + [("<IBAN>", i) for i in IBANS]
    )
    for placeholder, value in planted:
        filler = rng.choice(ORDINARY)
        text = f"Am {filler} schrieb sie: bitte an {value} wenden. Danke, {filler}."
        out, counts = redact(text)
        assert value not in out and placeholder in out, (value, out)
        assert out.count(filler) == 2, (filler, out)
        assert sum(counts.values()) == 1, (value, counts)
    for text in ORDINARY:
        assert redact(f"Es kostet {text} und mehr.") == (
            f"Es kostet {text} und mehr.",
            {"email": 0, "ip": 0, "phone": 0, "iban": 0},
        )


def test_language_id_on_the_shipped_samples_is_offline_and_right():
    for lang in ("en", "de"):
        lines = (CORPUS / lang / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
        got = [identify(json.loads(line)["text"])[0] for line in lines]
        assert got.count(lang) == len(got), (lang, [g for g in got if g != lang][:5])


def test_blocks_route_mixed_input_by_language_with_every_document_accounted_for():
    docs = []
    for lang in ("en", "de"):
        for i, line in enumerate((CORPUS / lang / "heldout.jsonl").read_text(encoding="utf-8").splitlines()[:20]):
            text = json.loads(line)["text"] + (" Kontakt: info@firma-gmbh.com" if i % 5 == 0 else "")
            docs.append(Document(text=text, id=f"{lang}-{i}"))
    language, pii = OfflineLanguageFilter(languages=["de"], threshold=0.5), RedactPII()
    kept = list(pii.run(language.run(iter(docs))))
    assert {d.id.split("-")[0] for d in kept} == {"de"} and len(kept) == 20
    assert all(d.metadata["language"] == "de" and d.metadata["language_score"] >= 0.5 for d in kept)
    assert sum(d.metadata["pii"].get("email", 0) for d in kept) == 4 and not any("@" in d.text for d in kept)
    # read = kept + dropped, with the reason, per the step's own counters
    s = language.stats
    assert s["total"].total == len(docs) == s["forwarded"].total + s["dropped"].total
    assert s["dropped_language"].total == s["dropped"].total == 20


def planted_corpus(seed: int = 0, originals: int = 400, copies: int = 200):
    """Random 150-word documents, plus near copies with 5-10% of their words replaced."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    docs = [" ".join(rng.choice(vocab) for _ in range(150)) for _ in range(originals)]
    truth = {}
    for k in range(copies):
        src = rng.randrange(originals)
        words = docs[src].split()
        for pos in rng.sample(range(len(words)), round(len(words) * rng.uniform(0.05, 0.10))):
            words[pos] = rng.choice(vocab)
        truth[len(docs)] = src
        docs.append(" ".join(words))
    order = list(range(len(docs)))
    rng.shuffle(order)
    return [Document(text=docs[i], id=str(i)) for i in order], truth


def test_minhash_finds_planted_near_duplicates_with_high_recall_and_precision(tmp_path):
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from lmforge.curate import MinHashDedup

    docs, truth = planted_corpus()
    step = MinHashDedup(
        bands=32,
        rows=2,
        verify_threshold=0.3,
        exclusion_writer=JsonlWriter(str(tmp_path), output_filename="dropped.jsonl"),
    )
    kept = list(step.run(iter(docs)))
    dropped = list(JsonlReader(str(tmp_path)).run())  # the side file holds every dropped document
    group = lambda doc_id: truth.get(int(doc_id), int(doc_id))  # noqa: E731  copies belong to their original
    # precision: a dropped document really duplicates the one it was matched to
    right = sum(group(d.id) == group(d.metadata["duplicate_of"]) for d in dropped)
    precision = right / max(len(dropped), 1)
    # recall: every planted group keeps exactly one member; each extra survivor is a missed copy
    survivors = {}
    for d in kept:
        survivors[group(d.id)] = survivors.get(group(d.id), 0) + 1
    missed = sum(n - 1 for g, n in survivors.items())
    recall = 1 - missed / len(truth)
    assert recall >= 0.99 and precision >= 0.99, (recall, precision)
    assert len(kept) + len(dropped) == len(docs) == step.stats["total"].total
    assert all(d.metadata["filter_reason"] == "near_duplicate" for d in dropped)


def test_exact_dedup_ignores_case_punctuation_and_spacing():
    from lmforge.curate import ExactDedup

    docs = [
        Document(text=t, id=str(i))
        for i, t in enumerate(
            ["Der Bäcker backt Brot.", "der bäcker  backt brot", "Der Bäcker backt Brötchen.", "DER BÄCKER BACKT BROT!"]
        )
    ]
    kept = list(ExactDedup().run(iter(docs)))
    assert [d.id for d in kept] == ["0", "2"]
