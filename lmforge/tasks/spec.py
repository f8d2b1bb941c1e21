"""Evaluation tasks: a JSONL file of items plus a small TOML/YAML spec; multiple choice (scored by
log-likelihood) or generative (the model writes, an answer is extracted: eval/answers.py).

The spec uses lm-evaluation-harness's vocabulary and rendering (Jinja templates with
StrictUndefined, `target_delimiter`, `fewshot_delimiter`, the harness's few-shot sampler) so
that a shipped task exports to a harness YAML and both tools build byte-identical prompts:

    name = "arc_sample_de"          # unique task name
    benchmark = "arc_sample"        # tasks sharing a benchmark are shown side by side by language
    language = "de"
    data = "arc_de.jsonl"           # relative to the spec file
    fewshot_data = "arc_de_dev.jsonl"
    prompt = "Frage: {{question}}\\nAntwort:"
    choices = "choices"             # field holding the list of answer strings
    answer = "answer"               # field holding the index of the right one
    fewshot_sampler = "random"      # drawn per item (the harness's default), or "first_n": the
                                    # first examples in file order for every item (GSM8K-CoT's
                                    # fixed exemplars), so all prompts share one beginning

A generative task (`output = "generate"`) names the gold answer's field in `answer` (a string, a
number, or a list of accepted answers), and says how to read a reply:

    output = "generate"
    prompt = "Question: {{question}}\nAnswer:"
    answer = "answer"
    fewshot_target = "solution"     # what follows a few-shot example's prompt (a worked solution)
    until = ["\n\n"]                # stop sequences
    max_new_tokens = 128
    extract = "last_number"         # exact, regex (with `regex`), first_number, last_number, choice_letter
    normalize = ["whitespace", "numbers"]   # also "case", "punctuation"
    metrics = ["exact_match", "f1"]
    samples = 1                     # with temperature > 0 and samples = n: pass@n and maj@n too
"""

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lmforge.data import iter_records
from lmforge.errors import ConfigError, DataError
from lmforge.recipe import read_config_file, validate

# the harness's Jinja settings, so that both tools render the same prompt text
_JINJA = Environment(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)

Metric = Literal[
    "acc",
    "acc_norm",
    "acc_bytes",
    "exact_match",
    "f1",
    "prompt_strict",
    "prompt_loose",
    "instruction_strict",
    "instruction_loose",
]
ALLOWED = {
    "multiple_choice": ("acc", "acc_norm", "acc_bytes"),
    "generate": ("exact_match", "f1"),
    "instructions": ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose"),
}
DEFAULT_METRICS = {"multiple_choice": 2, "generate": 2, "instructions": 4}


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    benchmark: str | None = None  # default: name
    language: str
    data: str
    fewshot_data: str | None = None  # default: few-shot examples come from `data`, never the item itself
    prompt: str
    choices: str = "choices"
    answer: str = "answer"
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    num_fewshot: int = Field(0, ge=0)
    fewshot_sampler: Literal["random", "first_n"] = "random"
    metrics: list[Metric] | None = None  # default: acc, acc_norm; generative: exact_match, f1
    output: Literal["multiple_choice", "generate", "instructions"] = "multiple_choice"
    chat: bool = False  # generative: the prompt is a user turn through the model's chat template
    instructions: str = "instructions"  # instructions: the field listing each item's checks
    # generative tasks
    fewshot_target: str | None = None  # default: `answer`
    until: list[str] = Field(default_factory=lambda: ["\n\n"])
    max_new_tokens: int = Field(128, ge=1)
    extract: Literal["exact", "regex", "first_number", "last_number", "choice_letter"] = "exact"
    regex: str | None = None
    normalize: list[Literal["case", "whitespace", "punctuation", "numbers"]] = Field(
        default_factory=lambda: ["whitespace"]
    )
    temperature: float = Field(0.0, ge=0)
    samples: int = Field(1, ge=1, le=64)

    @model_validator(mode="after")
    def _fits_output(self):
        allowed = ALLOWED[self.output]
        if self.metrics is None:
            self.metrics = list(allowed[: DEFAULT_METRICS[self.output]])
        wrong = [m for m in self.metrics if m not in allowed]
        if wrong:
            raise ValueError(f"metrics {wrong} do not apply to {self.output} tasks (use {', '.join(allowed)})")
        if self.extract == "regex":
            if not self.regex:
                raise ValueError("extract = 'regex' needs `regex`")
            try:
                re.compile(self.regex)
            except re.error as e:
                raise ValueError(f"regex {self.regex!r}: {e}") from None
        if self.output == "instructions" and self.num_fewshot:
            raise ValueError("instruction-following tasks are zero-shot")
        if self.chat and self.num_fewshot:
            raise ValueError("chat tasks are zero-shot (few-shot examples would need turns of their own)")
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("samples > 1 needs temperature > 0 (greedy answers are all the same)")
        return self


@dataclass
class Task:
    spec: TaskSpec
    path: Path  # the spec file
    docs: list[dict]
    fewshot_docs: list[dict]

    @property
    def benchmark(self) -> str:
        return self.spec.benchmark or self.spec.name


@dataclass
class Item:
    """One scored question: the prompt (with few-shot examples) and each choice's continuation."""

    context: str
    choices: list[str]  # without the target delimiter: lengths for acc_norm/acc_bytes are of these
    gold: int
    delimiter: str


@dataclass
class GenItem:
    """One generative question: the prompt (with few-shot examples) and the accepted answers."""

    context: str
    golds: list[str]


def golds_of(value) -> list[str]:
    """A gold answer field as the accepted answers: a string, a number or a list of them."""
    values = value if isinstance(value, list) else [value]
    return [v if isinstance(v, str) else _number(v) for v in values]


def _number(v) -> str:
    return str(int(v)) if isinstance(v, float) and v == int(v) else str(v)


def _read_items(path: Path, spec: TaskSpec) -> list[dict]:
    """Read and check every item so that a bad one fails with file:line, before any model runs."""
    if not path.is_file():
        raise DataError(f"{path}: task data file not found")
    docs = []
    for doc, where in iter_records([path]):
        if spec.output != "multiple_choice":
            _check_generative(doc, where, spec)
            docs.append(doc)
            continue
        for field in (spec.choices, spec.answer):
            if field not in doc:
                raise DataError(f"{where}: missing field '{field}'")
        choices, answer = doc[spec.choices], doc[spec.answer]
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
            raise DataError(f"{where}: '{spec.choices}' must be a list of at least two non-empty strings")
        if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
            raise DataError(f"{where}: answer index {answer!r} out of range for {len(choices)} choices")
        try:
            render(spec.prompt, doc)
        except TemplateError as e:
            raise DataError(f"{where}: prompt template fails on this item ({e})") from None
        docs.append(doc)
    if not docs:
        raise DataError(f"{path}: no items")
    return docs


def _check_generative(doc: dict, where: str, spec: TaskSpec) -> None:
    if spec.output == "instructions":
        from lmforge.eval.instructions import check_instructions

        problem = check_instructions(doc.get(spec.instructions), where)
        if problem:
            raise DataError(problem)
        _check_prompt(doc, where, spec)
        return
    for field in (spec.answer, spec.fewshot_target):
        if field is not None and field not in doc:
            raise DataError(f"{where}: missing field '{field}'")
    golds = doc[spec.answer] if isinstance(doc[spec.answer], list) else [doc[spec.answer]]
    ok = golds and all(isinstance(g, (str, int, float)) and not isinstance(g, bool) and str(g) for g in golds)
    if not ok:
        raise DataError(f"{where}: '{spec.answer}' must be a non-empty string or number, or a list of them")
    _check_prompt(doc, where, spec)


def _check_prompt(doc: dict, where: str, spec: TaskSpec) -> None:
    try:
        render(spec.prompt, doc)
    except TemplateError as e:
        raise DataError(f"{where}: prompt template fails on this item ({e})") from None


def render(template: str, doc: dict) -> str:
    return _JINJA.from_string(template).render(**doc)


def load_task(spec_path: str | Path, data: str | Path | None = None) -> Task:
    """Load a spec (.toml/.yaml) and its items; all problems are reported with the file they are in.
    `data`: read these items instead of the spec's (another split in the same layout, such as the
    training inputs `distill` annotates)."""
    path = Path(spec_path)
    spec = validate(TaskSpec, read_config_file(path, "task spec"), str(path))
    docs = _read_items(Path(data) if data else path.parent / spec.data, spec)
    fewshot = _read_items(path.parent / spec.fewshot_data, spec) if spec.fewshot_data else docs
    return Task(spec, path, docs, fewshot)


def _shots(task: Task, doc: dict, k: int, rng: random.Random) -> list[dict]:
    """The harness's few-shot draw: with examples from the evaluated file itself, k+1 are drawn and
    the item is removed, so an item never answers itself. `first_n` takes the first k in file order
    (the item left out likewise) and draws nothing from `rng`, as the harness's FirstNSampler."""
    if not k:
        return []
    same_pool = task.fewshot_docs is task.docs
    if task.spec.fewshot_sampler == "first_n":
        return [d for d in task.fewshot_docs if not (same_pool and d == doc)][:k]
    drawn = rng.sample(task.fewshot_docs, k + 1 if same_pool else k)
    return [d for d in drawn if d != doc][:k] if same_pool else drawn


def _target(spec: TaskSpec, doc: dict) -> str:
    """What follows a few-shot example's prompt: the right choice, or the (worked) answer."""
    if spec.output == "generate":
        value = doc[spec.fewshot_target or spec.answer]
        return golds_of(value)[0]
    return doc[spec.choices][doc[spec.answer]]


def build_items(
    task: Task, num_fewshot: int | None = None, seed: int = 1234, limit: int | None = None
) -> list[Item] | list[GenItem]:
    """Prompts as the harness builds them: one `random.Random(seed)` drawn from in item order."""
    spec = task.spec
    k = spec.num_fewshot if num_fewshot is None else num_fewshot
    same_pool = task.fewshot_docs is task.docs
    if k > len(task.fewshot_docs) - same_pool:
        raise ConfigError(
            f"{task.path}: {k}-shot needs {k + same_pool} few-shot examples, have {len(task.fewshot_docs)}"
        )
    rng = random.Random(seed)
    items = []
    for doc in task.docs[:limit]:
        prefix = "".join(
            render(spec.prompt, d) + spec.target_delimiter + _target(spec, d) + spec.fewshot_delimiter
            for d in _shots(task, doc, k, rng)
        )
        context = prefix + render(spec.prompt, doc)
        if spec.output == "instructions":
            items.append(GenItem(context, []))
        elif spec.output == "generate":
            items.append(GenItem(context, golds_of(doc[spec.answer])))
        else:
            items.append(Item(context, list(doc[spec.choices]), doc[spec.answer], spec.target_delimiter))
    return items
