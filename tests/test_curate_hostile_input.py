"""`lmforge curate` on input that breaks things: nothing survives phase 1, random bytes named
.jsonl, a truncated .jsonl.gz, and a kill -9 in the middle of a run with a worker pool. Every
case ends in a balanced accounting (or one line and exit 2), and no process outlives lmforge."""

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import ROOT, lmforge

pytestmark = pytest.mark.slow


def accounting(run) -> dict:
    return json.loads((run / "curate" / "accounting.json").read_text())


@pytest.mark.parametrize("multistage", [False, True])
def test_nothing_kept_by_phase_one_is_a_report_not_a_crash(tmp_path, multistage):
    src = tmp_path / "s.jsonl"
    src.write_text('{"text":"hi"}\n{"text":"ok"}\n')
    run = tmp_path / "run"
    out = lmforge(
        "curate",
        "--input",
        str(src),
        "-l",
        "de",
        "-l",
        "en",
        "--run-dir",
        str(run),
        "--set",
        f"curate.minhash.multistage={'true' if multistage else 'false'}",
        cwd=tmp_path,
    )
    assert "2 read = 0 kept + 2 dropped" in out.stdout and "Traceback" not in out.stderr
    a = accounting(run)
    assert a["read"] == 2 and a["kept"] == 0 and a["balanced"]


def test_random_bytes_named_jsonl_are_counted_as_undecodable(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_bytes(random.Random(0).randbytes(3000))
    run = tmp_path / "run"
    out = lmforge("curate", "--input", str(src), "-l", "de", "--run-dir", str(run), cwd=tmp_path)
    a = accounting(run)
    lines = src.read_bytes().count(b"\n") + 1
    assert a["read"] == a["dropped"]["undecodable"] + a["dropped"].get("malformed", 0) and a["balanced"]
    assert 0 < a["read"] <= lines and "undecodable" in out.stdout
    report = (run / "report.md").read_text()
    assert f"`{src.name}:1`" in report or f"{src}:1" in report  # each bad record named by file:line


def test_a_truncated_gzip_is_one_line_with_every_record_before_it_accounted(tmp_path):
    src = tmp_path / "t.jsonl.gz"
    rng = random.Random(2)
    words = "ein ganz normaler deutscher Satz über das Wetter die Stadt und den Fluss am Morgen".split()
    rows = "".join(
        json.dumps({"text": " ".join(rng.choice(words) for _ in range(60)) + "."}) + "\n" for _ in range(3000)
    ).encode()
    packed = gzip.compress(rows)
    src.write_bytes(packed[: len(packed) // 2])
    readable = 0
    with gzip.open(src, "rb") as f:
        try:
            for _ in f:
                readable += 1
        except EOFError:
            pass
    run = tmp_path / "run"
    out = lmforge("curate", "--input", str(src), "-l", "de", "--run-dir", str(run), cwd=tmp_path, check=False)
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "t.jsonl.gz" in err[0] and "truncated gzip" in err[0], out.stderr
    a = accounting(run)
    assert a["balanced"] and a["read"] == readable + 1 and a["dropped"]["truncated"] == 1


def test_kill_9_leaves_no_worker_behind(tmp_path):
    rng = random.Random(1)
    words = "der die das und ist nicht ein eine zu mit auf für von im den dem sich des auch als an nach wie".split()
    for k in range(4):
        with open(tmp_path / f"big{k}.jsonl", "w") as f:
            for _ in range(5000):
                text = ". ".join(" ".join(rng.choice(words) for _ in range(12)).capitalize() for _ in range(20))
                f.write(json.dumps({"text": text + "."}) + "\n")
    args = [
        sys.executable,
        "-m",
        "lmforge",
        "curate",
        "--input",
        str(tmp_path / "big*.jsonl"),
        "-l",
        "de",
        "--workers",
        "2",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    main = psutil.Process(proc.pid)
    end = time.time() + 120
    while len(main.children(recursive=True)) < 4 and time.time() < end:  # manager, forkserver, 2 workers
        time.sleep(0.2)
    helpers = main.children(recursive=True)
    assert len(helpers) >= 4, helpers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(helpers, timeout=10)
    assert not alive, [p.cmdline()[:4] for p in alive]
    rerun = lmforge(*args[3:], cwd=ROOT)
    assert "read =" in rerun.stdout and accounting(tmp_path / "run")["balanced"]
