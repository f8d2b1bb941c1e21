"""Write the shipped bilingual instruction sample (examples/instructions/*.jsonl).

SAMPLE DATA, written for lmforge from the phrase banks of the sample corpus
(`examples/make_corpus.py`), whose English and German lists are aligned entry by entry. Tasks:
translation EN<->DE, short reading questions about a one-sentence story, and one-sentence
descriptions; the German set is multi-turn (a follow-up question). Two public formats on
purpose, so the demo exercises the readers and the mixing: English in Alpaca format, German in
`messages` (Tulu/OpenAI) format. `tools.jsonl` holds tool use in both languages, in OpenAI's
shape (a `tools` list; assistant `tool_calls`, `tool` turns with the result, then the answer;
some questions need no tool and get none), so a small model can learn when and how to call.
Re-running this script reproduces the files byte for byte.

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


CITIES = ["Berlin", "Köln", "Hamburg", "München", "Leipzig", "Bremen", "Dresden", "Kiel"]
SKIES = {"sunny": "sonnig", "cloudy": "bewölkt", "rainy": "regnerisch", "windy": "windig"}
UNITS = {"metre": "Meter", "foot": "Fuß", "kilometre": "Kilometer", "mile": "Meilen"}
PER_METRE = {"metre": 1.0, "foot": 0.3048, "kilometre": 1000.0, "mile": 1609.344}


def function(name: str, description: str, properties: dict) -> dict:
    schema = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


TOOLS = [
    function(
        "get_weather",
        "The weather now in a city",
        {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    ),
    function(
        "convert_length",
        "Convert a length from one unit to another",
        {"value": {"type": "number"}, "from_unit": {"enum": list(UNITS)}, "to_unit": {"enum": list(UNITS)}},
    ),
]


def call(k: int, name: str, arguments: dict) -> dict:
    fn = {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": f"call_{k}", "type": "function", "function": fn}],
    }


def tool_use(rng: random.Random, k: int) -> dict:
    """A weather question, a length to convert, or a question no tool answers."""
    de = rng.random() < 0.5
    kind = rng.randrange(3)
    if kind == 0:
        city, sky, degrees = rng.choice(CITIES), rng.choice(list(SKIES)), rng.randrange(-5, 31)
        ask = f"Wie ist das Wetter in {city}?" if de else f"What is the weather like in {city}?"
        result = {"temperature": degrees, "unit": "celsius", "sky": sky}
        answer = f"In {city} sind es {degrees} °C, {SKIES[sky]}." if de else f"It is {degrees} °C and {sky} in {city}."
        turns = [call(k, "get_weather", {"city": city, "unit": "celsius"}), result, answer]
    elif kind == 1:
        value, a, b = rng.randrange(1, 200), *rng.sample(list(UNITS), 2)
        out = round(value * PER_METRE[a] / PER_METRE[b], 2)
        ask = f"Wie viel sind {value} {UNITS[a]} in {UNITS[b]}?" if de else f"How much is {value} {a}s in {b}s?"
        answer = f"{value} {UNITS[a]} sind {out} {UNITS[b]}." if de else f"{value} {a}s are {out} {b}s."
        turns = [call(k, "convert_length", {"value": value, "from_unit": a, "to_unit": b}), {"value": out}, answer]
    else:
        i = pick(rng)
        ask = f"Übersetze ins Englische: {scene(DE, i)}" if de else f"Translate into German: {scene(EN, i)}"
        turns = [scene(EN if de else DE, i)]
    messages = [{"role": "user", "content": ask}]
    if len(turns) == 3:
        messages += [
            turns[0],
            {"role": "tool", "tool_call_id": f"call_{k}", "content": json.dumps(turns[1], ensure_ascii=False)},
        ]
    messages.append({"role": "assistant", "content": turns[-1]})
    return {"messages": messages, "tools": TOOLS, "language": "de" if de else "en"}


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(2026)
    write(OUT / "alpaca_en.jsonl", [{**alpaca_en(rng), "language": "en"} for _ in range(600)])
    write(OUT / "alpaca_en_heldout.jsonl", [{**alpaca_en(rng), "language": "en"} for _ in range(60)])
    write(OUT / "chat_de.jsonl", [messages_de(rng) for _ in range(600)])
    write(OUT / "chat_de_heldout.jsonl", [messages_de(rng) for _ in range(60)])
    tools = random.Random(2027)
    write(OUT / "tools.jsonl", [tool_use(tools, k) for k in range(120)])
    write(OUT / "tools_heldout.jsonl", [tool_use(tools, k) for k in range(120, 140)])


if __name__ == "__main__":
    main()
