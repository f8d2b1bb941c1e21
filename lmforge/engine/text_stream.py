"""Token ids -> text pieces safe to send: whole characters only, never part of a stop string.

The whole reply is decoded again at each step (replies are short; this is exact where
incremental decoders of byte-level BPE are not). A reply ending in U+FFFD is an unfinished
multi-byte character and is held back; so is any tail that could still grow into a stop string.
When a stop string appears, the text is cut right before it.
"""

from dataclasses import dataclass, field


@dataclass
class TextStream:
    tokenizer: object
    stop: list[str]
    ids: list[int] = field(default_factory=list)
    sent: int = 0  # characters already handed out
    text: str = ""

    def push(self, token_id: int) -> tuple[str, bool]:
        """(new text safe to send, whether a stop string ended the reply)."""
        self.ids.append(token_id)
        self.text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if self.stop:
            start = max(0, self.sent - max(map(len, self.stop)) + 1)
            hits = [i for i in (self.text.find(s, start) for s in self.stop) if i != -1]
            if hits:
                return self._take(min(hits)), True
        safe = len(self.text)
        if self.text.endswith("\ufffd"):
            safe = len(self.text.rstrip("\ufffd"))
        for s in self.stop:  # hold back a tail that may be the start of a stop string
            for k in range(min(len(s) - 1, safe - self.sent), 0, -1):
                if self.text[safe - k : safe] == s[:k]:
                    safe -= k
                    break
        return self._take(safe), False

    def finish(self) -> str:
        """What is left at the end of the reply (a held-back tail that never became a stop string)."""
        return self._take(len(self.text.rstrip("\ufffd")))

    def _take(self, end: int) -> str:
        piece = self.text[self.sent : end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return piece
