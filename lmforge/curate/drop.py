"""How a curation step drops a document, the way datatrove's BaseFilter does for filters: the
same stat names (`dropped`, `dropped_<reason>`) and `filter_reason` metadata, so the run's
accounting reads every dropping step alike, and the document goes to the step's side file."""

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter


def drop(step: PipelineStep, doc, reason: str, writer: DiskWriter | None, rank: int) -> None:
    step.stat_update("dropped")
    step.stat_update(f"dropped_{reason}")
    doc.metadata["filter_reason"] = reason
    if writer:
        writer.write(doc, rank)
