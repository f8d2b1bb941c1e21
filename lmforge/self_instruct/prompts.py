"""The three prompts of Self-Instruct, written for lmforge in English and German: new instructions
from demonstrations, is-it-classification, and instances (input first; output first for
classification, so labels come out balanced instead of input-driven)."""

import re

TEXT = {
    "en": {
        "generate": "Below is a numbered list of tasks that someone might give to a helpful text assistant. "
        "The tasks are varied: writing, explaining, rewriting, classifying, planning, reasoning, "
        "everyday advice. Each is one self-contained instruction in English that can be answered in "
        "text alone. Continue the list with {n} new tasks that differ from all of those above, "
        "numbered from {start}. Write only the list.",
        "classify": "Can the following task be answered by choosing one label from a small fixed set "
        "(for example positive/negative, yes/no, a category name)? Answer with Yes or No only.\n\n"
        "Task: {instruction}",
        "instance": "Task: {instruction}\n\nWrite one example for this task. If the task needs an input "
        "(a text, a sentence, a list), give it first; if it needs none, write Input: none. "
        "Then give a good answer.\n\nAnswer in exactly this form:\nInput: ...\nOutput: ...",
        "instance_cls": "Task: {instruction}\n\nThis task has a fixed set of labels. Pick one label first, "
        "then write an input for which that label is correct.\n\nAnswer in exactly this form:\n"
        "Output: <label>\nInput: ...",
        "none": ("none", "n/a", "-", "no input"),
    },
    "de": {
        "generate": "Hier ist eine nummerierte Liste von Aufgaben, die man einem hilfsbereiten Textassistenten "
        "stellen könnte. Die Aufgaben sind vielfältig: schreiben, erklären, umformulieren, einordnen, "
        "planen, schlussfolgern, Rat im Alltag. Jede ist eine in sich geschlossene Anweisung auf "
        "Deutsch, die sich allein mit Text beantworten lässt. Setze die Liste mit {n} neuen Aufgaben "
        "fort, die sich von allen obigen unterscheiden, nummeriert ab {start}. Schreibe nur die Liste.",
        "classify": "Lässt sich die folgende Aufgabe beantworten, indem man eine Kategorie aus einer kleinen, "
        "festen Menge wählt (zum Beispiel positiv/negativ, ja/nein, ein Themenname)? Antworte nur mit "
        "Ja oder Nein.\n\nAufgabe: {instruction}",
        "instance": "Aufgabe: {instruction}\n\nSchreibe ein Beispiel für diese Aufgabe. Braucht die Aufgabe eine "
        "Eingabe (einen Text, einen Satz, eine Liste), gib sie zuerst an; braucht sie keine, schreibe "
        "Input: keine. Gib dann eine gute Antwort.\n\nAntworte genau in dieser Form:\nInput: ...\n"
        "Output: ...",
        "instance_cls": "Aufgabe: {instruction}\n\nDiese Aufgabe hat eine feste Menge von Kategorien. Wähle "
        "zuerst eine Kategorie und schreibe dann eine Eingabe, für die sie stimmt.\n\nAntworte "
        "genau in dieser Form:\nOutput: <Kategorie>\nInput: ...",
        "none": ("keine", "keiner", "none", "-", "entfällt"),
    },
}
NUMBERED = re.compile(r"^\s*(\d+)\s*[.):]\s*(.+?)\s*$")


def texts(language: str) -> dict:
    return TEXT.get(language, TEXT["en"])


def generation_prompt(demos: list[str], n_new: int, language: str) -> str:
    head = texts(language)["generate"].format(n=n_new, start=len(demos) + 1)
    listing = "\n".join(f"{i + 1}. {d}" for i, d in enumerate(demos))
    return f"{head}\n\n{listing}\n"


def parse_numbered(text: str, first: int) -> list[str]:
    """The items numbered `first` and up (the model sometimes repeats the demonstrations)."""
    out = []
    for line in text.splitlines():
        m = NUMBERED.match(line)
        if m and int(m.group(1)) >= first:
            out.append(m.group(2).strip())
    return out


def parse_instance(text: str, language: str) -> dict | None:
    m_in = re.search(r"(?im)^\s*input\s*:\s*(.*?)(?=^\s*output\s*:|\Z)", text, re.DOTALL)
    m_out = re.search(r"(?im)^\s*output\s*:\s*(.*?)(?=^\s*input\s*:|\Z)", text, re.DOTALL)
    if not m_out:
        return None
    inp = m_in.group(1).strip() if m_in else ""
    if inp.lower().strip(" .") in texts(language)["none"]:
        inp = ""
    return {"input": inp, "output": m_out.group(1).strip()}


def says_yes(text: str) -> bool:
    return text.strip().lower().startswith(("yes", "ja"))
