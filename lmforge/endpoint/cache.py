"""Answers already received, on disk, keyed by the request: a rerun after a crash or Ctrl-C sends
nothing that was answered. One JSON line per answer, appended and flushed as it arrives; a line
cut short by a crash is ignored on reload."""

import hashlib
import json
import threading
from pathlib import Path


def request_key(body: dict) -> str:
    """The same request body (model, messages, sampling parameters) -> the same key."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class AnswerCache:
    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.answers: dict[str, dict] = {}
        self.lock = threading.Lock()
        if self.path and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.answers[row["key"]] = row["answer"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # the last line of a killed run
        self._file = None

    def get(self, key: str) -> dict | None:
        return self.answers.get(key)

    def put(self, key: str, answer: dict) -> None:
        with self.lock:
            self.answers[key] = answer
            if self.path is None:
                return
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")
            self._file.write(json.dumps({"key": key, "answer": answer}, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
