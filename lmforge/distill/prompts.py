"""What `distill` says, written for lmforge: the teacher's header above the task's own worked
examples (few-shot chain of thought, Wei et al., 2022), and the student's task prefixes (Hsieh et
al., 2023: one model, two tasks told apart by a prefix on the input)."""

HEADER = {
    "en": "Solve the last problem the way the examples are solved: reason briefly, step by step, "
    "and finish with the answer in the same form as the examples.\n\n",
    "de": "Löse die letzte Aufgabe so, wie die Beispiele gelöst sind: denke kurz Schritt für Schritt "
    "und schließe mit der Antwort in derselben Form wie in den Beispielen.\n\n",
}
LABEL, RATIONALE = "[label] ", "[rationale] "


def teacher_prompt(shots: str, language: str) -> str:
    """`shots`: the task's k-shot prompt with worked solutions, ending in the problem to solve."""
    return HEADER.get(language, HEADER["en"]) + shots
