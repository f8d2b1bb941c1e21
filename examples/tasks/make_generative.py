"""Write the shipped bilingual generative sample tasks (examples/tasks/{arith,qa,ifeval}_sample_*).

SAMPLES ONLY, written for lmforge: arithmetic word problems with numeric answers (GSM8K-style:
few-shot examples show a worked solution ending in "The answer is N."; the last number of a reply
is its answer, and German replies write numbers the German way, "1.200" and "2,50"), and short
factual questions with one- or two-word answers (several spellings accepted). Parallel English and
German items; and prompts with instructions a program can check (IFEval-style: word and sentence
counts, keywords, JSON only, all lowercase, an ending phrase, the reply's language, bullet
points), answered as a chat turn. A few dozen items cannot rank real models; they exist so `eval` and its tests have
local generative data with known answers. Re-running this script reproduces the files.

A 400-problem training split of the arithmetic sample (`arith_sample_*_train.jsonl`, no question of
the dev or test items) is the input `lmforge distill` annotates (recipes/distill.toml).

    python examples/tasks/make_generative.py
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).parent
NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas"]


def de_number(value: float) -> str:
    """German spelling: thousands with '.', decimals with ','."""
    whole, _, frac = f"{value:,.2f}".partition(".")
    whole = whole.replace(",", ".")
    return whole if frac == "00" else f"{whole},{frac}"


def en_number(value: float) -> str:
    whole, _, frac = f"{value:,.2f}".partition(".")
    return whole if frac == "00" else f"{whole}.{frac}"


def problem(rng: random.Random) -> tuple[dict, dict, float]:
    """One word problem in English and German: (question, solution) each, and the answer."""
    name, kind = rng.choice(NAMES), rng.randrange(5)
    if kind == 0:
        a, b = rng.randrange(3, 40), rng.randrange(2, 30)
        q = (
            f"{name} has {a} apples and buys {b} more. How many apples does {name} have now?",
            f"{name} hat {a} Äpfel und kauft {b} dazu. Wie viele Äpfel hat {name} jetzt?",
        )
        s = (
            f"{name} starts with {a} apples and adds {b}: {a} + {b} = {a + b}.",
            f"{name} hat zuerst {a} Äpfel und bekommt {b} dazu: {a} + {b} = {a + b}.",
        )
        answer = a + b
    elif kind == 1:
        a, b = rng.randrange(20, 90), rng.randrange(2, 19)
        q = (
            f"A bus carries {a} people. At the next stop {b} get off. How many people are still on the bus?",
            f"Ein Bus fährt {a} Personen. An der nächsten Haltestelle steigen {b} aus. Wie viele sind noch im Bus?",
        )
        s = (
            f"{a} people minus the {b} who get off: {a} - {b} = {a - b}.",
            f"{a} Personen minus die {b}, die aussteigen: {a} - {b} = {a - b}.",
        )
        answer = a - b
    elif kind == 2:
        a, b = rng.randrange(3, 13), rng.randrange(3, 13)
        q = (
            f"A box holds {a} rows of {b} eggs. How many eggs are in the box?",
            f"Eine Schachtel hat {a} Reihen mit je {b} Eiern. Wie viele Eier sind in der Schachtel?",
        )
        s = (f"{a} rows of {b} eggs: {a} * {b} = {a * b}.", f"{a} Reihen mit je {b} Eiern: {a} * {b} = {a * b}.")
        answer = a * b
    elif kind == 3:
        a, b = rng.randrange(11, 40) * 100, rng.randrange(2, 9) * 100
        q = (
            f"A farm has {en_number(a)} hens and buys {en_number(b)} more. How many hens does it have now?",
            f"Ein Hof hat {de_number(a)} Hühner und kauft {de_number(b)} dazu. Wie viele Hühner hat er jetzt?",
        )
        s = (
            f"{en_number(a)} + {en_number(b)} = {en_number(a + b)}.",
            f"{de_number(a)} + {de_number(b)} = {de_number(a + b)}.",
        )
        answer = a + b
    else:
        price, count = rng.choice([1.25, 2.5, 0.75, 3.5, 1.5]), rng.randrange(2, 7)
        q = (
            f"One pen costs {en_number(price)} euros. How many euros do {count} pens cost?",
            f"Ein Stift kostet {de_number(price)} Euro. Wie viel Euro kosten {count} Stifte?",
        )
        s = (
            f"{count} pens at {en_number(price)} euros: {count} * {en_number(price)} = {en_number(count * price)}.",
            f"{count} Stifte zu {de_number(price)} Euro: {count} * {de_number(price)} = {de_number(count * price)}.",
        )
        answer = count * price
    answer = int(answer) if answer == int(answer) else round(answer, 2)
    en = {"question": q[0], "solution": f"{s[0]} The answer is {en_number(answer)}.", "answer": answer}
    de = {"question": q[1], "solution": f"{s[1]} Die Antwort ist {de_number(answer)}.", "answer": answer}
    return en, de, answer


# (question EN, answers EN, question DE, answers DE): the first answer is the canonical one
QA = [
    ("What is the capital of France?", ["Paris"], "Was ist die Hauptstadt von Frankreich?", ["Paris"]),
    ("What is the capital of Germany?", ["Berlin"], "Was ist die Hauptstadt von Deutschland?", ["Berlin"]),
    ("What is the capital of Italy?", ["Rome"], "Was ist die Hauptstadt von Italien?", ["Rom"]),
    ("What is the capital of Spain?", ["Madrid"], "Was ist die Hauptstadt von Spanien?", ["Madrid"]),
    ("What is the capital of Austria?", ["Vienna"], "Was ist die Hauptstadt von Österreich?", ["Wien"]),
    ("What colour is the sky on a clear day?", ["blue"], "Welche Farbe hat der Himmel an einem klaren Tag?", ["blau"]),
    ("What colour is fresh grass?", ["green"], "Welche Farbe hat frisches Gras?", ["grün", "gruen"]),
    ("How many days does a week have?", ["seven", "7"], "Wie viele Tage hat eine Woche?", ["sieben", "7"]),
    ("How many legs does a spider have?", ["eight", "8"], "Wie viele Beine hat eine Spinne?", ["acht", "8"]),
    ("How many months does a year have?", ["twelve", "12"], "Wie viele Monate hat ein Jahr?", ["zwölf", "12"]),
    ("What do bees make?", ["honey"], "Was stellen Bienen her?", ["Honig"]),
    ("Which planet do we live on?", ["Earth", "the Earth"], "Auf welchem Planeten leben wir?", ["Erde", "die Erde"]),
    ("What is frozen water called?", ["ice"], "Wie nennt man gefrorenes Wasser?", ["Eis"]),
    ("Which animal says moo?", ["a cow", "cow"], "Welches Tier macht muh?", ["die Kuh", "Kuh", "eine Kuh"]),
    ("What is the opposite of hot?", ["cold"], "Was ist das Gegenteil von heiß?", ["kalt"]),
    ("What is the opposite of day?", ["night"], "Was ist das Gegenteil von Tag?", ["Nacht", "die Nacht"]),
    (
        "Which river flows through Cologne?",
        ["the Rhine", "Rhine"],
        "Welcher Fluss fließt durch Köln?",
        ["der Rhein", "Rhein"],
    ),
    (
        "What do you call a baby cat?",
        ["a kitten", "kitten"],
        "Wie nennt man eine junge Katze?",
        ["Kätzchen", "ein Kätzchen"],
    ),
    ("What gas do people breathe in to live?", ["oxygen"], "Welches Gas atmen Menschen zum Leben ein?", ["Sauerstoff"]),
    (
        "What is the largest ocean on Earth?",
        ["the Pacific", "Pacific", "the Pacific Ocean"],
        "Was ist der größte Ozean der Erde?",
        ["der Pazifik", "Pazifik"],
    ),
    (
        "In which season does snow usually fall?",
        ["winter", "in winter"],
        "In welcher Jahreszeit fällt meist Schnee?",
        ["Winter", "im Winter"],
    ),
    ("What is the first letter of the alphabet?", ["A"], "Was ist der erste Buchstabe des Alphabets?", ["A"]),
    (
        "How many hours does a day have?",
        ["24", "twenty-four"],
        "Wie viele Stunden hat ein Tag?",
        ["24", "vierundzwanzig"],
    ),
    ("What colour is a ripe banana?", ["yellow"], "Welche Farbe hat eine reife Banane?", ["gelb"]),
]
QA_SHOTS = [
    ("What is the capital of Portugal?", "Lisbon", "Was ist die Hauptstadt von Portugal?", "Lissabon"),
    ("What colour is snow?", "white", "Welche Farbe hat Schnee?", "weiß"),
    ("How many wheels does a bicycle have?", "two", "Wie viele Räder hat ein Fahrrad?", "zwei"),
]

# (prompt EN, prompt DE, instructions): the prompt states every instruction in words
IFEVAL = [
    (
        "Describe a harbour in at most 30 words.",
        "Beschreibe einen Hafen in höchstens 30 Wörtern.",
        [{"id": "length:max_words", "n": 30}],
    ),
    (
        "Write at least 60 words about autumn in the park.",
        "Schreibe mindestens 60 Wörter über den Herbst im Park.",
        [{"id": "length:min_words", "n": 60}],
    ),
    (
        "Explain what a bakery sells in exactly three sentences.",
        "Erkläre in genau drei Sätzen, was eine Bäckerei verkauft.",
        [{"id": "length:sentences", "n": 3}],
    ),
    (
        "Write two paragraphs about a train journey, separated by a blank line.",
        "Schreibe zwei Absätze über eine Zugfahrt, getrennt durch eine Leerzeile.",
        [{"id": "length:paragraphs", "n": 2}],
    ),
    (
        "Tell a short story about a cat. Use the words 'lantern' and 'river'.",
        "Erzähle eine kurze Geschichte über eine Katze. Verwende die Wörter 'Laterne' und 'Fluss'.",
        [{"id": "keywords:include", "words": ["lantern", "river"]}],
        [{"id": "keywords:include", "words": ["Laterne", "Fluss"]}],
    ),
    (
        "Describe the sea without using the words 'blue' or 'water'.",
        "Beschreibe das Meer, ohne die Wörter 'blau' oder 'Wasser' zu verwenden.",
        [{"id": "keywords:exclude", "words": ["blue", "water"]}],
        [{"id": "keywords:exclude", "words": ["blau", "Wasser"]}],
    ),
    (
        "Give a city and its country as JSON only, with the keys city and country.",
        "Gib eine Stadt und ihr Land nur als JSON an, mit den Schlüsseln city und country.",
        [{"id": "format:json"}],
    ),
    (
        "Write a sentence about the weather, all in lowercase letters.",
        "Schreibe einen Satz über das Wetter, nur in Kleinbuchstaben.",
        [{"id": "case:lowercase"}],
    ),
    (
        "Write a short warning sign for a construction site in capital letters only.",
        "Schreibe ein kurzes Warnschild für eine Baustelle, nur in Großbuchstaben.",
        [{"id": "case:uppercase"}],
    ),
    (
        "Write a short thank-you note and end it with the exact phrase 'See you soon.'",
        "Schreibe eine kurze Dankesnotiz und beende sie genau mit 'Bis bald.'",
        [{"id": "ends_with", "phrase": "See you soon."}],
        [{"id": "ends_with", "phrase": "Bis bald."}],
    ),
    (
        "List exactly three fruits as bullet points starting with '* '.",
        "Nenne genau drei Früchte als Aufzählungspunkte, die mit '* ' beginnen.",
        [{"id": "format:bullets", "n": 3}],
    ),
    (
        "Answer in English: what do you need to bake bread?",
        "Antworte auf Deutsch: Was braucht man, um Brot zu backen?",
        [{"id": "language", "language": "en"}],
        [{"id": "language", "language": "de"}],
    ),
    (
        "In at most 40 words and in lowercase only, describe a garden.",
        "Beschreibe einen Garten in höchstens 40 Wörtern und nur in Kleinbuchstaben.",
        [{"id": "length:max_words", "n": 40}, {"id": "case:lowercase"}],
    ),
    (
        "List exactly two tools as bullet points starting with '* ' and do not use the word 'hammer'.",
        "Nenne genau zwei Werkzeuge als Aufzählungspunkte mit '* ' und verwende nicht das Wort 'Hammer'.",
        [{"id": "format:bullets", "n": 2}, {"id": "keywords:exclude", "words": ["hammer"]}],
        [{"id": "format:bullets", "n": 2}, {"id": "keywords:exclude", "words": ["Hammer"]}],
    ),
    (
        "Write one paragraph in English about the moon that includes the word 'silver' and ends with 'Good night.'",
        "Schreibe einen Absatz auf Deutsch über den Mond, der das Wort 'Silber' enthält und mit 'Gute Nacht.' endet.",
        [
            {"id": "length:paragraphs", "n": 1},
            {"id": "keywords:include", "words": ["silver"]},
            {"id": "ends_with", "phrase": "Good night."},
            {"id": "language", "language": "en"},
        ],
        [
            {"id": "length:paragraphs", "n": 1},
            {"id": "keywords:include", "words": ["Silber"]},
            {"id": "ends_with", "phrase": "Gute Nacht."},
            {"id": "language", "language": "de"},
        ],
    ),
    (
        "Describe a market in at least three sentences and at most 80 words.",
        "Beschreibe einen Markt in mindestens drei Sätzen und höchstens 80 Wörtern.",
        [{"id": "length:sentences", "n": 3, "relation": "at least"}, {"id": "length:max_words", "n": 80}],
    ),
]

SPECS = {
    "arith_sample": {
        "en": {"prompt": "Question: {{question}}\nAnswer:", "until": ["\n\n", "Question:"]},
        "de": {"prompt": "Frage: {{question}}\nAntwort:", "until": ["\n\n", "Frage:"]},
        "extra": (
            'output = "generate"\nanswer = "answer"\nfewshot_data = "{dev}"\nfewshot_target = "solution"\n'
            'num_fewshot = 3\nfewshot_sampler = "first_n"\nmax_new_tokens = 96\nextract = "last_number"\nnormalize = ["whitespace", "numbers"]\n'
            'metrics = ["exact_match"]\n'
        ),
    },
    "qa_sample": {
        "en": {"prompt": "Question: {{question}}\nAnswer:", "until": ["\n"]},
        "de": {"prompt": "Frage: {{question}}\nAntwort:", "until": ["\n"]},
        "extra": (
            'output = "generate"\nanswer = "answers"\nfewshot_data = "{dev}"\nnum_fewshot = 3\n'
            'max_new_tokens = 16\nextract = "exact"\nnormalize = ["case", "punctuation", "whitespace"]\n'
            'metrics = ["exact_match", "f1"]\n'
        ),
    },
}


IFEVAL_SPEC = (
    "# SAMPLE instruction-following task written for lmforge, {lang}; not a benchmark (make_generative.py).\n"
    'name = "ifeval_sample_{lang}"\nbenchmark = "ifeval_sample"\nlanguage = "{lang}"\n'
    'data = "ifeval_sample_{lang}.jsonl"\nprompt = "{{{{prompt}}}}"\noutput = "instructions"\nchat = true\n'
    "until = []\nmax_new_tokens = 160\n"
)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_spec(benchmark: str, lang: str) -> None:
    spec = SPECS[benchmark]
    name = f"{benchmark}_{lang}"
    text = (
        f"# SAMPLE generative task written for lmforge, {lang}; not a benchmark (make_generative.py).\n"
        f'name = "{name}"\nbenchmark = "{benchmark}"\nlanguage = "{lang}"\ndata = "{name}.jsonl"\n'
        f"prompt = {json.dumps(spec[lang]['prompt'], ensure_ascii=False)}\n"
        f"until = {json.dumps(spec[lang]['until'], ensure_ascii=False)}\n"
        + spec["extra"].replace("{dev}", f"{name}_dev.jsonl")
    )
    (OUT / f"{name}.toml").write_text(text, encoding="utf-8")


def main() -> None:
    rng = random.Random("arith-sample")
    problems = [problem(rng) for _ in range(48)]
    # a training split for `lmforge distill` (its own seed; no question of the dev or test items)
    seen, train, train_rng = {p[0]["question"] for p in problems}, [], random.Random("arith-sample-train")
    while len(train) < 400:
        p = problem(train_rng)
        if p[0]["question"] not in seen:
            seen.add(p[0]["question"])
            train.append(p)
    for k, lang in enumerate(("en", "de")):
        rows = [p[k] for p in problems]
        write_jsonl(OUT / f"arith_sample_{lang}_dev.jsonl", rows[:8])
        write_jsonl(OUT / f"arith_sample_{lang}.jsonl", rows[8:])
        write_jsonl(OUT / f"arith_sample_{lang}_train.jsonl", [p[k] for p in train])
        write_spec("arith_sample", lang)
        qa = [{"question": item[2 * k], "answers": item[2 * k + 1]} for item in QA]
        shots = [{"question": s[2 * k], "answers": [s[2 * k + 1]]} for s in QA_SHOTS]
        write_jsonl(OUT / f"qa_sample_{lang}.jsonl", qa)
        write_jsonl(OUT / f"qa_sample_{lang}_dev.jsonl", shots)
        write_spec("qa_sample", lang)
        rows = []
        for item in IFEVAL:
            instructions = item[2] if k == 0 or len(item) == 3 else item[3]
            rows.append({"prompt": item[k], "instructions": instructions})
        write_jsonl(OUT / f"ifeval_sample_{lang}.jsonl", rows)
        (OUT / f"ifeval_sample_{lang}.toml").write_text(IFEVAL_SPEC.format(lang=lang), encoding="utf-8")


if __name__ == "__main__":
    main()
