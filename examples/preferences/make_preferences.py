"""Build the SAMPLE preference pairs from lmforge's own instruction samples (examples/instructions):
the chosen answer is the record's own answer, the rejected one the answer to a different
instruction of the same file (fluent but off-task), so a model can learn the preference from a few
hundred pairs. English pairs in the plain layout, German ones in the conversational layout.

    python examples/preferences/make_preferences.py
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
INSTR = HERE.parent / "instructions"


def pairs(path: Path, n: int, rng: random.Random) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][:n]
    out = []
    for i, r in enumerate(rows):
        other = rows[(i + rng.randrange(1, len(rows))) % len(rows)]
        if "messages" in r:
            prompt, chosen = r["messages"][:-1], r["messages"][-1]["content"]
            rejected = other["messages"][-1]["content"]
            if chosen != rejected:
                out.append(
                    {
                        "prompt": prompt,
                        "chosen": [{"role": "assistant", "content": chosen}],
                        "rejected": [{"role": "assistant", "content": rejected}],
                        "language": "de",
                    }
                )
        else:
            prompt = r["instruction"] + (f"\n\n{r['input']}" if r.get("input") else "")
            if r["output"] != other["output"]:
                out.append({"prompt": prompt, "chosen": r["output"], "rejected": other["output"], "language": "en"})
    return out


def main() -> None:
    rng = random.Random(7)
    for name, files, n in (
        ("pairs.jsonl", ("alpaca_en.jsonl", "chat_de.jsonl"), 150),
        ("pairs_heldout.jsonl", ("alpaca_en_heldout.jsonl", "chat_de_heldout.jsonl"), 30),
    ):
        rows = [p for f in files for p in pairs(INSTR / f, n, rng)]
        (HERE / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(name, len(rows))


if __name__ == "__main__":
    main()
