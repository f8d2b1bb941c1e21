"""Evaluation tasks as data: a JSONL file of items plus a small TOML/YAML spec, loaded and rendered
the way lm-evaluation-harness does. `eval` scores them; `translate` turns them into another
language; `adapt` measures them before and after."""

from lmforge.tasks.spec import Item, Task, TaskSpec, build_items, load_task

__all__ = ["Item", "Task", "TaskSpec", "build_items", "load_task"]
