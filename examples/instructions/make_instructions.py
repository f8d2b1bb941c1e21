"""Write the shipped bilingual instruction sample (examples/instructions/*.jsonl).

SAMPLE DATA, written for lmforge from the phrase banks of the sample corpus
(`examples/make_corpus.py`), whose English and German lists are aligned entry by entry. Tasks:
translation EN<->DE, short reading questions about a one-sentence story, and one-sentence
descriptions; the German set is multi-turn (a follow-up question). Two public formats on
purpose, so the demo exercises the readers and the mixing: English in Alpaca format, German in
`messages` (Tulu/OpenAI) format. Re-running this script reproduces the files byte for byte.

    python examples/instructions/make_instructions.py
"""

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_corpus import DE, EN, de_acc  # noqa: E402

OUT = Path(__file__).parent


def cap(s: str) -> str:
    return s[0].upper() + s[1:]


def pick(rng: random.Random) -> dict:
    """One aligned scene: the same indices into the English and the German banks."""
    return {k: rng.randrange(len(EN[k])) for k in ("subj", "verb_obj", "place", "time", "thing", "adj")}


def scene(bank: dict, i: dict) -> str:
    return f"{cap(bank['subj'][i['subj']])} {bank['verb_obj'][i['verb_obj']]} {bank['place'][i['place']]}."


def alpaca_en(rng: random.Random) -> dict:
    i = pick(rng)
    kind = rng.randrange(4)
    if kind == 0:
        return {"instruction": "Translate into German.", "input": scene(EN, i), "output": scene(DE, i)}
    story = (
        f"{EN['time'][i['time']]}, {EN['subj'][i['subj']]} {EN['verb_obj'][i['verb_obj']]} {EN['place'][i['place']]}."
    )
    if kind == 1:
        return {
            "instruction": "Where does this happen? Answer briefly.",
            "input": story,
            "output": f"{cap(EN['place'][i['place']])}.",
        }
    if kind == 2:
        return {
            "instruction": "Who is this story about? Answer briefly.",
            "input": story,
            "output": f"{cap(EN['subj'][i['subj']])}.",
        }
    return {
        "instruction": f"Describe {EN['thing'][i['thing']]} in one sentence.",
        "input": "",
        "output": f"{cap(EN['thing'][i['thing']])} is {EN['adj'][i['adj']]}.",
    }


def messages_de(rng: random.Random) -> dict:
    i = pick(rng)
    kind = rng.randrange(3)
    if kind == 0:
        turns = [("user", f"Übersetze ins Englische: {scene(DE, i)}"), ("assistant", scene(EN, i))]
    elif kind == 1:
        story = scene(DE, i)
        turns = [
            ("user", f"{story}\nWo passiert das? Antworte kurz."),
            ("assistant", f"{cap(DE['place'][i['place']])}."),
            ("user", "Und wer?"),
            ("assistant", f"{cap(DE['subj'][i['subj']])}."),
        ]
    else:
        turns = [
            ("user", f"Beschreibe {de_acc(DE['thing'][i['thing']])} in einem Satz."),
            ("assistant", f"{cap(DE['thing'][i['thing']])} ist {DE['adj'][i['adj']]}."),
        ]
    messages = [{"role": r, "content": c} for r, c in turns]
    if rng.random() < 0.3:
        messages.insert(0, {"role": "system", "content": "Du bist ein hilfsbereiter Assistent."})
    return {"messages": messages, "language": "de"}


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(2026)
    write(OUT / "alpaca_en.jsonl", [{**alpaca_en(rng), "language": "en"} for _ in range(600)])
    write(OUT / "alpaca_en_heldout.jsonl", [{**alpaca_en(rng), "language": "en"} for _ in range(60)])
    write(OUT / "chat_de.jsonl", [messages_de(rng) for _ in range(600)])
    write(OUT / "chat_de_heldout.jsonl", [messages_de(rng) for _ in range(60)])


if __name__ == "__main__":
    main()
