"""Multiple-choice tasks: a JSONL file of items plus a small TOML/YAML spec.

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
"""

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateError
from pydantic import BaseModel, ConfigDict, Field

from lmforge.data import iter_records
from lmforge.errors import ConfigError, DataError
from lmforge.recipe import read_config_file, validate

# the harness's Jinja settings, so that both tools render the same prompt text
_JINJA = Environment(loader=BaseLoader(), undefined=StrictUndefined, keep_trailing_newline=True)

Metric = Literal["acc", "acc_norm", "acc_bytes"]


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
    metrics: list[Metric] = Field(default_factory=lambda: ["acc", "acc_norm"])


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


def _read_items(path: Path, spec: TaskSpec) -> list[dict]:
    """Read and check every item so that a bad one fails with file:line, before any model runs."""
    if not path.is_file():
        raise DataError(f"{path}: task data file not found")
    docs = []
    for doc, where in iter_records([path]):
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


def render(template: str, doc: dict) -> str:
    return _JINJA.from_string(template).render(**doc)


def load_task(spec_path: str | Path) -> Task:
    """Load a spec (.toml/.yaml) and its items; all problems are reported with the file they are in."""
    path = Path(spec_path)
    spec = validate(TaskSpec, read_config_file(path, "task spec"), str(path))
    docs = _read_items(path.parent / spec.data, spec)
    fewshot = _read_items(path.parent / spec.fewshot_data, spec) if spec.fewshot_data else docs
    return Task(spec, path, docs, fewshot)


def build_items(task: Task, num_fewshot: int | None = None, seed: int = 1234, limit: int | None = None) -> list[Item]:
    """Prompts as the harness builds them: one `random.Random(seed)` drawn from in item order.

    With few-shot examples from the evaluated file itself, k+1 are drawn and the item is
    removed (again the harness's rule), so an item never answers itself.
    """
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
        shots = []
        if k:
            drawn = rng.sample(task.fewshot_docs, k + 1 if same_pool else k)
            shots = [d for d in drawn if d != doc][:k] if same_pool else drawn
        prefix = "".join(
            render(spec.prompt, d) + spec.target_delimiter + d[spec.choices][d[spec.answer]] + spec.fewshot_delimiter
            for d in shots
        )
        items.append(
            Item(prefix + render(spec.prompt, doc), list(doc[spec.choices]), doc[spec.answer], spec.target_delimiter)
        )
    return items
