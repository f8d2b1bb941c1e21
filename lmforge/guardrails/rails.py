"""Topical rails (NeMo Guardrails' idea, without its runtime): embed the user's message, compare it
with each topic's example utterances, and block or allow before the model sees it.

A topic's score is the mean cosine similarity of the message to its `k` nearest examples (k=2:
one lucky example is not enough, as in kNN intent classifiers). The highest-scoring topic that
reaches its own threshold decides: `block` answers with its canned reply, `allow` lets the message
through. When no topic reaches its threshold, `mode = "block"` lets the message through and
`mode = "allow"` refuses it (the allow-list). Every decision is logged with topic and score.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError
from lmforge.guardrails.embedder import DEFAULT, load_embedder

log = logging.getLogger("lmforge.guardrails")
NEAREST = 2


@dataclass
class Topic:
    name: str
    action: str  # "block" or "allow"
    examples: list[str]
    threshold: float
    reply: str = ""
    vectors: np.ndarray | None = None


@dataclass
class Decision:
    allowed: bool
    topic: str | None  # the deciding topic; None when none was near enough
    score: float  # its score (the best score when no topic decided)
    reply: str | None  # the canned reply when refused


@dataclass
class Rails:
    topics: list[Topic]
    mode: str
    refusal: str
    embed: object = field(repr=False)
    embedder_name: str = DEFAULT
    log_file: Path | None = None

    def scores(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(topics)) topic scores."""
        v = self.embed(texts)
        out = np.empty((len(texts), len(self.topics)), dtype=np.float32)
        for j, t in enumerate(self.topics):
            sims = v @ t.vectors.T
            k = min(NEAREST, sims.shape[1])
            out[:, j] = np.sort(sims, axis=1)[:, -k:].mean(axis=1)
        return out

    def decide(self, row: np.ndarray) -> Decision:
        reached = [j for j, t in enumerate(self.topics) if row[j] >= t.threshold]
        if reached:
            j = max(reached, key=lambda j: row[j])
            t = self.topics[j]
            return Decision(t.action == "allow", t.name, float(row[j]), None if t.action == "allow" else t.reply)
        best = float(row.max()) if len(row) else 0.0
        return Decision(self.mode == "block", None, best, None if self.mode == "block" else self.refusal)

    def check(self, text: str) -> Decision:
        d = self.decide(self.scores([text])[0])
        record = {"allowed": d.allowed, "topic": d.topic, "score": round(d.score, 4), "chars": len(text)}
        log.info("guardrails %s", json.dumps(record))
        if self.log_file:
            with self.log_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        return d

    def decide_messages(self, messages: list[dict]) -> Decision | None:
        """The decision on the conversation's last user message (None without one)."""
        last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)
        return self.check(last) if last else None

    def check_messages(self, messages: list[dict]) -> str | None:
        """The canned reply when the conversation's last user message is refused, else None."""
        d = self.decide_messages(messages)
        return None if d is None or d.allowed else d.reply


def load_rails(path: str | Path, log_file: str | Path | None = None) -> Rails:
    from lmforge.recipe.load import read_config_file

    raw = read_config_file(path, "guardrails file")
    known = {"mode", "embedder", "threshold", "refusal", "topics"}
    if set(raw) - known:
        raise ConfigError(f"{path}: unknown key(s) {sorted(set(raw) - known)}; expected {sorted(known)}")
    mode = raw.get("mode", "block")
    if mode not in ("block", "allow"):
        raise ConfigError(f'{path}: mode must be "block" or "allow" (got {mode!r})')
    default = float(raw.get("threshold", 0.5))
    topics = []
    for i, t in enumerate(raw.get("topics") or []):
        where = f"{path}: topics[{i}]"
        if not isinstance(t, dict) or not t.get("name") or not t.get("examples"):
            raise ConfigError(f"{where}: needs a name and a non-empty list of examples")
        action = t.get("action", "block")
        if action not in ("block", "allow"):
            raise ConfigError(f'{where} ({t["name"]}): action must be "block" or "allow"')
        if action == "block" and not t.get("reply"):
            raise ConfigError(f"{where} ({t['name']}): a blocked topic needs a reply")
        topics.append(
            Topic(
                t["name"],
                action,
                [str(x) for x in t["examples"]],
                float(t.get("threshold", default)),
                t.get("reply", ""),
            )
        )
    if not topics:
        raise ConfigError(f"{path}: no topics")
    if mode == "allow" and not any(t.action == "allow" for t in topics):
        raise ConfigError(f'{path}: mode "allow" needs at least one topic with action = "allow"')
    embedder = raw.get("embedder", DEFAULT)
    embed = load_embedder(embedder)
    for t in topics:
        t.vectors = embed(t.examples)
    return Rails(
        topics,
        mode,
        raw.get("refusal", "I can't help with that."),
        embed,
        embedder,
        Path(log_file) if log_file else None,
    )
