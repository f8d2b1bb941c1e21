"""PII redaction: e-mail addresses, IP addresses, phone numbers and IBANs become typed placeholders.

Counts per kind go to the step's stats and to `metadata["pii"]`, so the report can say what was
redacted. Patterns are deliberately conservative where ordinary text looks alike: a phone number
needs a leading + or 0 and at least 8 digits in phone-like groups (years, prices, counts and
dates do not match), an IBAN must pass its ISO 7064 mod-97 check, an IPv4 address needs four octets <= 255.
"""

import re

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b")
IPV6 = re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}\b")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ ./-]?|0)(?:\(?\d{2,5}\)?[ ./-]?)(?:\d{2,4}[ ./-]?){1,4}\d{2,4}(?!\w)")


def iban_valid(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(digits) % 97 == 1


DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def phone_like(candidate: str) -> bool:
    """At least 8 digits and not a date such as 01.02.2024 (which also starts with a 0)."""
    return sum(c.isdigit() for c in candidate) >= 8 and not DATE.fullmatch(candidate.strip())


def redact(text: str) -> tuple[str, dict[str, int]]:
    """The text with PII replaced by <EMAIL>, <IP>, <PHONE>, <IBAN>, and how many of each."""
    counts = {"email": 0, "ip": 0, "phone": 0, "iban": 0}

    def sub(kind: str, placeholder: str, check=None):
        def repl(m: re.Match) -> str:
            if check and not check(m.group(0)):
                return m.group(0)
            counts[kind] += 1
            return placeholder

        return repl

    text = EMAIL.sub(sub("email", "<EMAIL>"), text)  # first: addresses contain digits and dots
    text = IBAN.sub(sub("iban", "<IBAN>", iban_valid), text)
    text = IPV6.sub(sub("ip", "<IP>"), text)
    text = IPV4.sub(sub("ip", "<IP>"), text)
    text = PHONE.sub(sub("phone", "<PHONE>", phone_like), text)
    return text, counts


class RedactPII(PipelineStep):
    name = "🔒 PII redaction"
    type = "✂️ - FORMAT"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                doc.text, counts = redact(doc.text)
            doc.metadata["pii"] = {k: v for k, v in counts.items() if v}
            for kind, n in counts.items():
                if n:
                    self.stat_update(f"redacted_{kind}", value=n)
            yield doc
