"""The curate stage end to end: every input format, bad input, routing, accounting, report."""

import gzip
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from lmforge.curate.presets import LMFORGE_ONLY, thresholds
from lmforge.curate.quality_filters import HeuristicFilters
from lmforge.recipe import CurateConfig
from tests.conftest import CORPUS, ROOT, lmforge

BOILERPLATE = "Home\nAbout us\nProducts\nContact\nImprint\nPrivacy\nLogin\nRegister\nCart (0)\nSearch"


def pages(lang: str, n: int, seed: int = 0, start: int = 0) -> list[str]:
    """Web-page-sized documents: 2-3 shipped corpus documents per page."""
    docs = [
        json.loads(line)["text"] for line in (CORPUS / lang / "train.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    rng = random.Random(seed)
    return ["\n".join(rng.sample(docs[start:], 3)) for _ in range(n)]


def judged_by_stock_datatrove(text: str, lang: str) -> bool:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    p = thresholds(lang)
    for name, options in LMFORGE_ONLY.items():  # datatrove's filters do not take lmforge's own options
        p[name] = {k: v for k, v in p[name].items() if k not in options}
    doc = Document(text=text, id="x")
    stock = {
        "gopher_repetition": GopherRepetitionFilter,
        "gopher_quality": GopherQualityFilter,
        "c4": C4QualityFilter,
        "fineweb": FineWebQualityFilter,
    }
    for name, cls in stock.items():
        if p[name] is not None and cls(language=lang, **p[name]).filter(doc) is not True:
            return False
    return True


def test_heuristic_filters_decide_like_stock_datatrove_on_english_and_german_pages():
    pytest.importorskip("spacy", reason="datatrove's stock word tokenizer (installed with the test extras)")
    rng = random.Random(1)
    mine = HeuristicFilters(overrides={lang: LMFORGE_ONLY for lang in ("en", "de")})  # as datatrove behaves
    for lang in ("en", "de"):
        texts = pages(lang, 60, seed=2) + [BOILERPLATE, "lorem ipsum " * 60, " ".join(["günstig kaufen"] * 40)]
        texts += ["\n".join(rng.choice(texts[:60]).splitlines()[:1]) for _ in range(10)]  # short pages
        decisions = [
            (
                mine.filter(Document(text=t, id="x", metadata={"language": lang})) is True,
                judged_by_stock_datatrove(t, lang),
            )
            for t in texts
        ]
        assert [a for a, _ in decisions] == [b for _, b in decisions], lang
        assert 0 < sum(a for a, _ in decisions) < len(decisions)  # both outcomes occur


def test_german_pages_need_the_german_preset():
    """English stop words make Gopher drop every German page; FineWeb-2's German ones keep them."""
    texts = pages("de", 20)
    by_en = [HeuristicFilters(default_language="en").filter(Document(text=t, id="x")) for t in texts]
    by_de = [HeuristicFilters().filter(Document(text=t, id="x", metadata={"language": "de"})) for t in texts]
    assert all(r == (False, "gopher_quality/gopher_enough_stop_words") for r in by_en)
    assert sum(r is True for r in by_de) >= 15


def write_warc(path, pages_html: list[str]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for i, html in enumerate(pages_html):
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(
                    f"https://example.org/{i}", "response", payload=io.BytesIO(html.encode()), http_headers=headers
                )
            )
        writer.write_record(
            writer.create_warc_record("https://example.org/r", "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"))
        )


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """One run over every input format with planted bad input, other languages, junk and duplicates."""
    from datasets import Dataset

    raw = tmp_path_factory.mktemp("raw")
    en, de = pages("en", 30, seed=3), pages("de", 30, seed=4)
    lines = [json.dumps({"text": t, "id": f"en{i}"}) for i, t in enumerate(en[:20])]
    lines.insert(4, '{"text": "unterminated')
    lines.insert(7, json.dumps({"text": "   "}))
    lines.insert(9, json.dumps({"text": 42}))
    (raw / "web.jsonl").write_text("\n".join(lines) + "\n")
    passing = [
        t for t in de if HeuristicFilters().filter(Document(text=t, id="x", metadata={"language": "de"})) is True
    ]
    with gzip.open(raw / "web_de.jsonl.gz", "wb") as f:
        f.write(b"".join(json.dumps({"text": t}, ensure_ascii=False).encode() + b"\n" for t in de[:20]))
        f.write(b'{"text": "Gr\xfc\xdfe"}\n')  # Latin-1, not UTF-8
        f.write(json.dumps({"text": passing[0]}, ensure_ascii=False).encode() + b"\n")  # exact duplicate
        near = passing[1].rsplit(". ", 1)[0] + ". Ende."  # near duplicate: last sentence replaced
        f.write(json.dumps({"text": near}, ensure_ascii=False).encode() + b"\n")
    pq.write_table(
        pa.table(
            {
                "text": en[20:25]
                + [BOILERPLATE, "Bonjour, ceci est une page en français sur la cuisine et le pain du village."]
            }
        ),
        raw / "part.parquet",
    )
    (raw / "txt").mkdir()
    clean = next(t for t in de[26:] if t in passing)
    (raw / "txt" / "a.txt").write_text(clean + "\nKontakt: max.mustermann@example.de oder 030 12345678.\n")
    (raw / "txt" / "b.txt").write_bytes(b"\xff\xfe broken")
    (raw / "txt" / "notes.docx").write_bytes(b"PK not text")  # not a format curate reads: listed, not read
    write_warc(
        raw / "crawl.warc.gz",
        [f"<html><body><article><p>{p.replace(chr(10), '</p><p>')}</p></article></body></html>" for p in en[25:28]]
        + ["<html><body></body></html>"],
    )
    Dataset.from_dict({"text": de[21:26]}).save_to_disk(str(raw / "saved_dataset"))
    run_dir = tmp_path_factory.mktemp("run")
    recipe = run_dir / "curate.toml"
    recipe.write_text(
        f'[curate]\ninputs = ["{raw / "*.jsonl"}", "{raw / "web_de.jsonl.gz"}", "{raw / "part.parquet"}",'
        f' "{raw / "txt"}", "{raw / "crawl.warc.gz"}", "{raw / "saved_dataset"}"]\n'
        "workers = 2\n[curate.minhash]\nbands = 32\nrows = 2\nverify_threshold = 0.5\n"
    )
    proc = lmforge("curate", str(recipe), "--run-dir", str(run_dir))
    return run_dir, proc


def read_gz_jsonl(paths) -> list[dict]:
    return [json.loads(line) for p in sorted(paths) for line in gzip.open(p, "rt", encoding="utf-8")]


def test_every_record_is_accounted_for_with_bad_input_named_by_file_and_line(curated):
    run_dir, proc = curated
    acc = json.loads((run_dir / "curate" / "accounting.json").read_text())
    # 23 JSONL lines + 23 gz lines + 7 parquet rows + 2 txt files + 4 WARC pages + 5 dataset rows
    assert acc["read"] == 64 and acc["balanced"]
    assert acc["read"] == acc["kept"] + sum(acc["dropped"].values())
    assert acc["dropped"]["malformed"] == 2 and acc["dropped"]["undecodable"] == 2 and acc["dropped"]["empty"] == 2
    report = (run_dir / "report.md").read_text()
    for where in ("web.jsonl:5", "web.jsonl:8", "web.jsonl:10", "web_de.jsonl.gz:21", "b.txt:1", "crawl.warc.gz:"):
        assert where in report, where
    assert f"{acc['read']} read = {acc['kept']} kept" in proc.stdout
    assert "1 file(s) of unknown format" in report
    assert "notes.docx" in (run_dir / "curate" / "ignored_files.txt").read_text()
    for png in ("curate_reasons", "curate_languages", "curate_lengths"):
        assert (run_dir / "plots" / f"{png}.png").stat().st_size > 5000


def test_output_is_routed_by_language_deduplicated_and_redacted(curated):
    run_dir, _ = curated
    data = run_dir / "curate" / "data"
    kept = {lang: read_gz_jsonl((data / lang).glob("*.jsonl.gz")) for lang in ("en", "de")}
    assert sorted(p.name for p in data.iterdir()) == ["de", "en"]
    assert all(d["metadata"]["language"] == lang for lang, docs in kept.items() for d in docs)
    assert len(kept["en"]) >= 20 and len(kept["de"]) >= 20
    acc = json.loads((run_dir / "curate" / "accounting.json").read_text())
    assert acc["dropped"]["exact_duplicate"] == 1 and acc["dropped"]["near_duplicate"] == 1
    assert acc["languages_detected"]["fr"] == 1 and acc["dropped"]["language"] >= 1  # + the menu page, if unsure
    assert acc["pii_redacted"] == {"email": 1, "phone": 1}
    assert any("<EMAIL>" in d["text"] and "<PHONE>" in d["text"] for d in kept["de"])
    assert not any("@example.de" in d["text"] for d in kept["de"])
    # every dropped document is in a side file under its reason
    dropped = read_gz_jsonl((run_dir / "curate" / "dropped").rglob("*.jsonl.gz"))
    reasons = {}
    for d in dropped:
        reasons[d["metadata"]["filter_reason"]] = reasons.get(d["metadata"]["filter_reason"], 0) + 1
    assert reasons == acc["dropped"]


def test_quality_classifier_learns_from_example_files(tmp_path):
    from lmforge.curate.quality_classifier import load_quality_classifier, quality_scores, train_quality_classifier

    good = [{"text": t} for t in pages("en", 40, seed=5) + pages("de", 40, seed=6)]
    junk = [
        {
            "text": " ".join(
                random.Random(i).choices(
                    ["buy", "cheap", "click", "now", "free", "deal", "kaufen", "gratis", "jetzt", "Angebot"], k=60
                )
            )
        }
        for i in range(80)
    ]
    for name, rows in (("good", good[:60]), ("junk", junk[:60])):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    model = train_quality_classifier(
        [str(tmp_path / "good.jsonl")], [str(tmp_path / "junk.jsonl")], tmp_path / "qc.npz"
    )
    weights = load_quality_classifier(model)
    assert (quality_scores(weights, [r["text"] for r in good[60:]]) > 0.5).all()
    assert (quality_scores(weights, [r["text"] for r in junk[60:]]) < 0.5).all()


def test_bad_curate_config_fails_in_one_line(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "hello"}) + "\n")
    cases = [
        (["-i", str(tmp_path / "missing.jsonl")], "missing.jsonl: no such file or folder"),
        (
            ["-i", str(tmp_path / "a.jsonl"), "--set", "curate.thresholds.de.gopher_quality.min_words=3"],
            "curate.thresholds.de.gopher_quality.min_words: unknown threshold",
        ),
        (["-i", str(tmp_path / "a.jsonl"), "-l", "fr"], "no filter thresholds for language 'fr'"),
        (["-i", str(tmp_path / "a.jsonl"), "--set", 'curate.executor="slurm"'], "curate.executor_options.partition"),
        (["--report-only"], "no stats yet (has the curate job finished?)"),
    ]
    for args, message in cases:
        proc = lmforge("curate", *args, "--run-dir", str(tmp_path / "run"), check=False)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (
            args,
            proc.stderr,
        )


def test_the_demo_crawl_is_what_its_generator_writes(tmp_path):
    """The shipped raw sample is reproducible from examples/make_raw.py."""
    import importlib.util
    import shutil

    shutil.copytree(ROOT / "examples" / "corpus", tmp_path / "corpus")
    spec = importlib.util.spec_from_file_location("make_raw", ROOT / "examples" / "make_raw.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.HERE, module.OUT = tmp_path, tmp_path / "raw"
    module.main()
    for name in ("crawl_0.jsonl", "crawl_1.jsonl"):
        assert (tmp_path / "raw" / name).read_bytes() == (ROOT / "examples" / "raw" / name).read_bytes()


def test_curate_config_defaults_are_the_published_ones():
    cfg = CurateConfig(inputs=["x"])
    assert (cfg.minhash.bands, cfg.minhash.rows, cfg.minhash.ngram) == (14, 8, 5)
    assert cfg.filters == ["gopher_repetition", "gopher_quality", "c4", "fineweb"]


def test_the_same_recipe_submits_to_slurm_through_datatrove(tmp_path):
    """With a stand-in `sbatch` on PATH: both phases are submitted, dedup after the filter job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch.log"
    (bin_dir / "sbatch").write_text(
        f'#!/bin/bash\necho "$@" >> {log}\nn=$(wc -l < {log})\necho "Submitted batch job $((100 + n))"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": pages("en", 1)[0]}) + "\n")
    proc = lmforge(
        "curate",
        "-i",
        str(tmp_path / "a.jsonl"),
        "--run-dir",
        str(tmp_path / "run"),
        "--set",
        'curate.executor="slurm"',
        "--set",
        'curate.executor_options={partition = "cpu"}',
        env={"PATH": f"{bin_dir}:{__import__('os').environ['PATH']}"},
    )
    assert "submitted to slurm" in proc.stdout and "--report-only" in proc.stdout
    logs = tmp_path / "run" / "curate" / "logs"
    for phase in ("filter", "dedup"):
        script = (logs / phase / "launch_script.slurm").read_text()
        assert "#SBATCH --partition=cpu" in script and "launch_pickled_pipeline" in script
    calls = log.read_text().splitlines()
    assert any("--dependency=afterok:101" in c for c in calls[1:])  # dedup waits for the filter job (101)
