"""The reverse-instruction prompt (LongForm, Köksal et al., 2023), written for lmforge in English
and German: given a document, write the request that the document answers. Three styles, as
LongForm varies them, so that the set is not all imperatives: a plain instruction, a casual
chatbot message, a terse search query. With `length_hint`, lmforge appends how long the answer
should be (LongForm adds such hints after generation too), measured on the document itself."""

TEXT = {
    "en": {
        "task": "Here is a text someone wrote:\n\n<<<\n{document}\n>>>\n\nImagine this text is the perfect "
        "reply to a request. {style} The request must make sense without seeing the text, must not "
        "quote it, and must be in English. Write only the request.",
        "instruction": "Write that request as a clear instruction, the way one instructs a capable assistant.",
        "chatbot": "Write that request as a casual message someone would type to a chatbot.",
        "query": "Write that request as a short search-engine query (a few words, no full sentence needed).",
        "length": " Answer in about {words} words.",
    },
    "de": {
        "task": "Hier ist ein Text, den jemand geschrieben hat:\n\n<<<\n{document}\n>>>\n\nStell dir vor, "
        "dieser Text ist die perfekte Antwort auf eine Bitte. {style} Die Bitte muss ohne den Text "
        "verständlich sein, darf ihn nicht zitieren und muss auf Deutsch sein. Schreibe nur die Bitte.",
        "instruction": "Formuliere diese Bitte als klare Anweisung, so wie man einen fähigen Assistenten anleitet.",
        "chatbot": "Formuliere diese Bitte als lockere Nachricht, wie man sie einem Chatbot schreiben würde.",
        "query": "Formuliere diese Bitte als kurze Suchanfrage (ein paar Wörter, kein ganzer Satz nötig).",
        "length": " Antworte in etwa {words} Wörtern.",
    },
}
STYLES = ("instruction", "chatbot", "query")


def reverse_prompt(document: str, language: str, style: str) -> str:
    t = TEXT.get(language, TEXT["en"])
    return t["task"].format(document=document, style=t[style])


def length_hint(document: str, language: str) -> str:
    """ "Answer in about N words", N the document's word count rounded to a round number."""
    n = len(document.split())
    step = 10 if n < 100 else 50
    return TEXT.get(language, TEXT["en"])["length"].format(words=max(step, round(n / step) * step))


def clean_reply(text: str) -> str:
    """The request alone: one line of the reply, without quotes or a "Request:" label."""
    line = next((x.strip() for x in text.strip().splitlines() if x.strip()), "")
    for label in ("request:", "bitte:", "instruction:", "anweisung:", "query:", "suchanfrage:"):
        if line.lower().startswith(label):
            line = line[len(label) :].strip()
    return line.strip().strip('"“”„«»').strip()
