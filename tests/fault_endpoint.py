"""An OpenAI-compatible chat endpoint for tests that misbehaves on purpose.

It "translates" into German by writing German filler of the source's length and keeping every
⟦n⟧ marker; a trigger word in a record selects a fault: RATELIMIT (429 + Retry-After once),
SERVERERROR (500 once), SLOWPOKE (slower than the client's timeout once), NOTJSON, TRUNCATE,
BREAKCODE (drops a protected span), WRONGLANG (answers in English), BADKEYS (changes the JSON keys).
Every request is counted by a hash of its body, with the status it got, so tests can prove that a
resumed run sends nothing twice. `latency_s` adds a fixed delay (the benchmark's artificial latency).
"""

import asyncio
import hashlib
import json
import re
import threading
import time
from collections import Counter

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

GERMAN = (
    "Die kleine Stadt liegt ruhig am Fluss und die Menschen gehen am Morgen über die alte Brücke "
    "zur Arbeit, während die Bäckerei schon frisches Brot verkauft und die Kinder zur Schule laufen. "
)
ENGLISH = (
    "The small town lies quietly by the river and people walk over the old bridge to work in the "
    "morning, while the bakery already sells fresh bread and the children run to school. "
)
MARKER = re.compile(r"⟦\d+⟧")
SELF_INSTRUCT_ITEMS = [  # per round: new tasks, and one candidate for each filter
    [
        "Describe three ways to save water in a small garden during a dry summer.",
        "Explain to a ten-year-old why the moon changes its shape during the month.",  # a seed: too similar
        "Draw a picture of a cat sitting on a windowsill.",  # blacklisted
        "Summarise.",  # too short
        "- List the planets of the solar system in order.",  # starts with punctuation
        "Erkläre, wie man einen Sauerteig ansetzt und pflegt.",
    ],  # wrong language
    [
        "Write a polite note to a neighbour asking them to keep their dog quiet at night.",
        "Suggest a weekly meal plan for a student with a small budget and little time.",
    ],
]
SELF_INSTRUCT_ITEMS_DE = [  # the same in German (a German run's language check wants German)
    [
        "Beschreibe drei Wege, in einem trockenen Sommer im kleinen Garten Wasser zu sparen.",
        "Erkläre einem zehnjährigen Kind, warum der Mond im Lauf eines Monats seine Form ändert.",
        "Zeichne ein Bild von einer Katze auf der Fensterbank.",
        "Fasse zusammen.",
        "- Zähle die Planeten des Sonnensystems der Reihe nach auf.",
        "Explain how to start a sourdough and keep it alive.",
    ],  # wrong language
    [
        "Schreibe einer Nachbarin eine höfliche Notiz mit der Bitte, ihren Hund nachts ruhig zu halten.",
        "Schlage einen Wochenplan für Mahlzeiten vor, für eine Studentin mit wenig Geld und wenig Zeit.",
    ],
]


def filler(text: str, base: str) -> str:
    """Text in `base`'s language as long as `text` without its markers, then the markers."""
    plain = len(MARKER.sub("", text))
    words, body = (base * (plain // len(base) + 2)).split(), []
    while len(" ".join(body)) < plain:  # whole words: German that language ID recognises
        body.append(words[len(body)])
    return " ".join([*body, *MARKER.findall(text)]).strip()


def chat_reply(body: dict, text: str) -> dict:
    """The chat.completion a scripted endpoint sends for `text` (token counts: 0, not measured)."""
    return {
        "id": "x",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class FaultEndpoint:
    def __init__(self, latency_s: float = 0.0, slow_s: float = 3.0):
        self.latency_s, self.slow_s = latency_s, slow_s
        self.requests: Counter = Counter()  # body hash -> requests
        self.answered: Counter = Counter()  # body hash -> 200 responses
        self.seen_once: set = set()  # (trigger, body hash) faults already served once
        self.hang_after: int | None = None  # answer this many requests, then hang every later one
        self.rounds = 0
        self.garbage_judge = False
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            self.requests[key] += 1
            if self.hang_after is not None and sum(self.answered.values()) >= self.hang_after:
                await asyncio.sleep(3600)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            messages = body["messages"]
            source = next((m["content"] for m in messages if m["role"] == "user"), "")
            once = lambda trigger: trigger in source and (trigger, key) not in self.seen_once  # noqa: E731
            if once("RATELIMIT"):
                self.seen_once.add(("RATELIMIT", key))
                return JSONResponse(
                    {"error": {"message": "slow down", "type": "rate_limit"}}, 429, headers={"Retry-After": "0.2"}
                )
            if once("SERVERERROR"):
                self.seen_once.add(("SERVERERROR", key))
                return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
            if once("SLOWPOKE"):
                self.seen_once.add(("SLOWPOKE", key))
                await asyncio.sleep(self.slow_s)
            system = next((m["content"] for m in messages if m["role"] == "system"), "")
            text, finish = (
                (self.judge(system, messages) if "judge" in system or "Gutachter" in system else self.answer(source)),
                "stop",
            )
            if "NOTJSON" in source:
                text = "Sure! Here is the translation you asked for."
            elif "TRUNCATE" in source:
                text, finish = text[: len(text) // 2], "length"
            self.answered[key] += 1
            return {
                "id": "x",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": len(source) // 4,
                    "completion_tokens": len(text) // 4,
                    "total_tokens": (len(source) + len(text)) // 4,
                },
            }

        return app

    def answer(self, source: str) -> str:
        try:
            data = json.loads(source)
        except json.JSONDecodeError:
            return self.self_instruct(source)
        base = ENGLISH if "WRONGLANG" in source else GERMAN
        out = {k: filler(v, base) for k, v in data.items()}
        if "BREAKCODE" in source:
            out = {k: MARKER.sub("", v) for k, v in out.items()}
        if "BADKEYS" in source:
            out = {f"x{k}": v for k, v in out.items()}
        return json.dumps(out, ensure_ascii=False)

    def judge(self, system: str, messages: list[dict]) -> str:
        """A scripted judge: ratings from a hash of what it grades (reproducible, spread over 1-10);
        pairwise, always the first answer shown (a judge with total position bias); `garbage_judge`
        answers without any rating."""
        if self.garbage_judge:
            return "The answer is fine, I suppose."
        if "[[A]]" in system:
            return "Assistant A explains more. [[A]]"
        digest = int(hashlib.sha256(messages[1]["content"].encode()).hexdigest(), 16)
        return f"The answer is partly helpful. Rating: [[{digest % 10 + 1}]]"

    def self_instruct(self, prompt: str) -> str:
        """Scripted Self-Instruct answers: a numbered list with one candidate per filter, a No to
        'is it classification', an instance in the asked-for form."""
        if "Yes or No" in prompt or "Ja oder Nein" in prompt:
            return "No" if "Yes or No" in prompt else "Nein"
        if prompt.startswith("Task:"):
            task = prompt.split("\n", 1)[0].removeprefix("Task: ")
            return f"Input: none\nOutput: A short, careful answer to the task '{task}' in plain words."
        if prompt.startswith("Aufgabe:"):
            task = prompt.split("\n", 1)[0].removeprefix("Aufgabe: ")
            return (
                f"Input: keine\nOutput: Eine kurze, sorgfältige Antwort auf die Aufgabe '{task}' in einfachen Worten."
            )
        german = "nummeriert ab" in prompt
        start = int(re.findall(r"(?:numbered from|nummeriert ab) (\d+)", prompt)[0])
        rounds = SELF_INSTRUCT_ITEMS_DE if german else SELF_INSTRUCT_ITEMS
        items = rounds[self.rounds % len(rounds)]
        self.rounds += 1
        return "\n".join(f"{start + i}. {item}" for i, item in enumerate(items))

    def twice_answered(self) -> int:
        return sum(1 for n in self.answered.values() if n > 1)


class Running:
    """A uvicorn server in a thread on 127.0.0.1."""

    def __init__(self, app, port: int):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        end = time.time() + 20
        while not self.server.started and time.time() < end:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def in_own_process(target, *args) -> tuple:
    """`target(port, *args)` (a function that runs an endpoint) in a spawned process, as a real
    endpoint would be (not sharing the client's GIL): the process and its base URL, once it answers."""
    import multiprocessing

    import httpx

    from tests.conftest import free_port

    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(port, *args), daemon=True)
    process.start()
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(200):
        try:
            httpx.get(url + "/models", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return process, url
