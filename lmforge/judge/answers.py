"""Multi-turn answers to the questions, from a local model through the shared decode engine (many
questions decode together) or from any endpoint, at MT-Bench's temperature per category."""

import time
from concurrent.futures import ThreadPoolExecutor

from lmforge.engine import SamplingParams
from lmforge.judge.questions import TEMPERATURE, answer_row


def _two_turns(ask, q: dict) -> list[str]:
    history, answers = [], []
    for turn in q["turns"]:
        history.append({"role": "user", "content": turn})
        answers.append(ask(history, TEMPERATURE[q["category"]]))
        history.append({"role": "assistant", "content": answers[-1]})
    return answers


def local_answers(model_ref: str, questions: list[dict], model_id: str, max_tokens: int, seed: int = 0) -> list[dict]:
    from lmforge.chat.session import reply
    from lmforge.engine import Engine
    from lmforge.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(model_ref)
    engine = Engine(model, tok, max_batch=8)

    def ask(history, temperature):
        # MT-Bench samples at its per-category temperature alone (no top-k, no nucleus)
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_k=0, top_p=1.0, seed=seed)
        return reply(engine, history, params)

    with ThreadPoolExecutor(max_workers=8) as pool:  # questions decode side by side in the engine's batch
        turns = list(pool.map(lambda q: _two_turns(ask, q), questions))
    return [answer_row(q["question_id"], model_id, t, time.time()) for q, t in zip(questions, turns)]


def endpoint_answers(client, questions: list[dict], model_id: str, max_tokens: int) -> list[dict]:
    def ask(history, temperature):
        return client.chat(history, temperature=temperature, max_tokens=max_tokens).text.strip()

    turns = client.map(lambda q: _two_turns(ask, q), questions, progress="judge: answers")
    for t in turns:
        if isinstance(t, Exception):
            raise t
    return [answer_row(q["question_id"], model_id, t, time.time()) for q, t in zip(questions, turns)]
