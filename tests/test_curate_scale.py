"""Curation past one machine: datatrove's multi-stage MinHash decides like the in-memory path, and
the Ray executor runs a real curate (a local Ray instance)."""

import gzip
import json

import pytest

from lmforge.curate import run_curate_stage
from lmforge.recipe import CurateConfig
from tests.conftest import ROOT
from tests.test_curate_blocks import planted_corpus


def dropped_ids(out) -> dict[str, str]:
    """id -> reason of every document in the run's side files."""
    found = {}
    for path in (out / "dropped").rglob("*.jsonl.gz"):
        for line in gzip.open(path, "rt", encoding="utf-8"):
            doc = json.loads(line)
            found[doc["id"]] = (
                doc["metadata"]["filter_reason"] if "filter_reason" in doc["metadata"] else "near_duplicate"
            )
    return found


def test_multistage_minhash_decides_like_the_in_memory_path(tmp_path):
    docs, truth = planted_corpus()
    for k in range(4):  # four input files -> four tasks in the signature and filter stages
        with open(tmp_path / f"part{k}.jsonl", "w") as f:
            for d in docs[k::4]:
                f.write(json.dumps({"id": d.id, "text": d.text}) + "\n")
    common = dict(
        inputs=[str(tmp_path / f"part{k}.jsonl") for k in range(4)],
        languages=[],
        language_threshold=0,
        filters=[],
        pii=False,
        normalise=False,
        exact_dedup=False,
        workers=2,
        tasks=4,
    )
    runs = {}
    for name, multistage in (("memory", False), ("stages", True)):
        cfg = CurateConfig(**common, minhash={"bands": 32, "rows": 2, "multistage": multistage})
        s = run_curate_stage(cfg, tmp_path / name)
        assert s["read"] == len(docs) == s["kept"] + sum(s["dropped"].values())
        runs[name] = (s, dropped_ids(tmp_path / name / "curate"))
    (memory, memory_dropped), (stages, stages_dropped) = runs["memory"], runs["stages"]
    assert stages["dropped"] == memory["dropped"] and stages["kept"] == memory["kept"]
    assert set(stages_dropped.values()) == {"near_duplicate"}
    group = lambda doc_id: truth.get(int(doc_id), int(doc_id))  # noqa: E731  copies belong to their original
    # the same planted groups found and the same number removed from each (which member of a group
    # survives follows each path's own rule: the earliest in memory, union-by-size in datatrove)
    assert sorted(map(group, stages_dropped)) == sorted(map(group, memory_dropped))
    assert len(memory_dropped) >= 0.99 * len(truth)
    assert (tmp_path / "stages" / "curate" / "logs" / "minhash_buckets" / "stats.json").exists()


def test_multistage_refuses_verification(tmp_path):
    from lmforge.errors import ConfigError

    cfg = CurateConfig(inputs=[str(tmp_path)], minhash={"multistage": True, "verify_threshold": 0.5})
    with pytest.raises(ConfigError, match="verification exists only in the in-memory path"):
        run_curate_stage(cfg, tmp_path / "run")


@pytest.mark.slow
def test_ray_executor_runs_a_real_curate(tmp_path):
    pytest.importorskip("ray", reason="in the test extras")
    import ray

    inputs = [str(ROOT / "examples" / "raw" / "crawl_0.jsonl"), str(ROOT / "examples" / "raw" / "crawl_1.jsonl")]
    local = run_curate_stage(CurateConfig(inputs=inputs, workers=2), tmp_path / "local")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_curate_stage(
            CurateConfig(inputs=inputs, workers=2, executor="ray", executor_options={"mem_per_cpu_gb": 0.5}),
            tmp_path / "ray",
        )
    finally:
        ray.shutdown()
    assert on_ray == {**local, "data": on_ray["data"]}  # the same accounting, document for document

    def read(run):
        return sorted(line for p in (run / "curate" / "data").rglob("*.jsonl.gz") for line in gzip.open(p, "rt"))

    assert read(tmp_path / "ray") == read(tmp_path / "local")
