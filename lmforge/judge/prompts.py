"""Judge prompts written for lmforge, English and German: single 1-10 grading (with and without a
reference, first and second turn) and pairwise A/B/tie, each answered in a fixed bracket format."""

SINGLE = {
    "en": {
        "system": "You are a strict, fair judge of AI assistants. Judge the assistant's answer to the user's "
        "question for helpfulness, correctness, depth, clarity and, where it matters, creativity. "
        "First explain your judgment in a few sentences, then give a rating from 1 to 10 in exactly "
        "this form: Rating: [[7]]",
        "reference": "Compare the answer with the reference answer below: a wrong result or a broken program "
        "is a serious fault, whatever the style.",
        "turn2": "Judge only the assistant's SECOND answer, taking the whole conversation into account.",
    },
    "de": {
        "system": "Du bist ein strenger, fairer Gutachter für KI-Assistenten. Bewerte die Antwort des Assistenten "
        "auf die Frage nach Hilfsbereitschaft, Richtigkeit, Tiefe, Klarheit und, wo es darauf ankommt, "
        "Kreativität. Begründe dein Urteil zuerst in wenigen Sätzen und gib dann eine Note von 1 bis 10 "
        "genau in dieser Form: Rating: [[7]]",
        "reference": "Vergleiche die Antwort mit der Referenzantwort unten: Ein falsches Ergebnis oder ein "
        "fehlerhaftes Programm ist ein schwerer Mangel, unabhängig vom Stil.",
        "turn2": "Bewerte nur die ZWEITE Antwort des Assistenten und berücksichtige dabei das ganze Gespräch.",
    },
}
PAIR = {
    "en": "You are a strict, fair judge. Two AI assistants answered the same conversation. Decide which "
    "answer is better for helpfulness, correctness, depth and clarity. The order in which they are "
    "shown must not influence you, nor must their length. Explain briefly, then end with exactly one "
    "verdict: [[A]] if assistant A is better, [[B]] if assistant B is better, [[C]] for a tie.",
    "de": "Du bist ein strenger, fairer Gutachter. Zwei KI-Assistenten haben dasselbe Gespräch beantwortet. "
    "Entscheide, welche Antwort hilfreicher, richtiger, gründlicher und klarer ist. Die Reihenfolge der "
    "Antworten und ihre Länge dürfen dich nicht beeinflussen. Begründe kurz und ende mit genau einem "
    "Urteil: [[A]], wenn Assistent A besser ist, [[B]], wenn Assistent B besser ist, [[C]] bei Gleichstand.",
}
LABELS = {
    "en": ("User", "Assistant", "Reference answer", "Assistant A", "Assistant B"),
    "de": ("Nutzer", "Assistent", "Referenzantwort", "Assistent A", "Assistent B"),
}
RETRY = {
    "en": "Your judgment had no rating in the required form. Reply again and end with: Rating: [[N]]",
    "de": "Deinem Urteil fehlte die Note in der verlangten Form. Antworte erneut und ende mit: Rating: [[N]]",
}
RETRY_PAIR = {
    "en": "Your judgment had no verdict in the required form. End with exactly one of [[A]], [[B]], [[C]].",
    "de": "Deinem Urteil fehlte das Urteil in der verlangten Form. Ende mit genau einem von [[A]], [[B]], [[C]].",
}


def _dialogue(questions: list[str], answers: list[str], labels: tuple[str, str]) -> str:
    lines = []
    for q, a in zip(questions, answers):
        lines += [f"### {labels[0]}:\n{q}", f"### {labels[1]}:\n{a}"]
    return "\n\n".join(lines)


def single_prompt(
    lang: str, turns: list[str], answers: list[str], turn: int, reference: list[str] | None
) -> list[dict]:
    """Messages grading the answer to `turn` (1 or 2); turn 2 shows the whole conversation."""
    t, lab = SINGLE.get(lang, SINGLE["en"]), LABELS.get(lang, LABELS["en"])
    system = t["system"] + (" " + t["reference"] if reference else "") + (" " + t["turn2"] if turn == 2 else "")
    body = _dialogue(turns[:turn], answers[:turn], lab[:2])
    if reference:
        body = f"[{lab[2]}]\n{reference[turn - 1]}\n\n[{lab[0]} / {lab[1]}]\n{body}"
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


def pair_prompt(
    lang: str, turns: list[str], a: list[str], b: list[str], turn: int, reference: list[str] | None
) -> list[dict]:
    lab = LABELS.get(lang, LABELS["en"])
    parts = []
    if reference:
        parts.append(f"[{lab[2]}]\n{reference[turn - 1]}")
    for name, answers in ((lab[3], a), (lab[4], b)):
        parts.append(f"[{name}]\n" + _dialogue(turns[:turn], answers[:turn], (lab[0], name)))
    return [{"role": "system", "content": PAIR.get(lang, PAIR["en"])}, {"role": "user", "content": "\n\n".join(parts)}]
