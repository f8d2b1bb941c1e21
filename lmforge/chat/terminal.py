"""The terminal side of `lmforge chat`: a read-eval-print loop with streaming, and one-shot mode."""

import sys

from lmforge.chat.session import GenerationError, reply
from lmforge.engine import Engine, SamplingParams

HELP = "commands: /reset (forget the conversation), /exit (or Ctrl-D)"


def _start(system: str | None) -> list[dict]:
    return [{"role": "system", "content": system}] if system else []


def _stream(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def _refusal(rails, history: list[dict]) -> str | None:
    return rails.check_messages(history) if rails is not None else None


def answer_once(engine: Engine, prompt: str, system: str | None, sampling: SamplingParams, rails=None) -> str:
    """Print the reply to one prompt (streamed) and return it: for scripts and pipes."""
    history = _start(system) + [{"role": "user", "content": prompt}]
    refusal = _refusal(rails, history)
    text = refusal if refusal is not None else reply(engine, history, sampling, _stream)
    if refusal is not None:
        sys.stdout.write(refusal)
    sys.stdout.write("\n")
    return text


def interactive(engine: Engine, system: str | None, sampling: SamplingParams, rails=None) -> None:
    history = _start(system)
    print(HELP, flush=True)
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(flush=True)
            return
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return
        if line == "/reset":
            history = _start(system)
            print("(conversation reset)", flush=True)
            continue
        history.append({"role": "user", "content": line})
        sys.stdout.write("assistant> ")
        refusal = _refusal(rails, history)
        if refusal is not None:  # the model never sees the message; the canned reply is not history
            print(refusal, flush=True)
            history.pop()
            continue
        try:
            answer = reply(engine, history, sampling, _stream)
        except GenerationError as e:  # the conversation goes on without the failed turn
            print(f"\nerror: {e}", file=sys.stderr, flush=True)
            history.pop()
            continue
        sys.stdout.write("\n")
        sys.stdout.flush()
        history.append({"role": "assistant", "content": answer})
        sampling.seed = (sampling.seed or 0) + 1  # a new draw each turn, still reproducible from the start seed
