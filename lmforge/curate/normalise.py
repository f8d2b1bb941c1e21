"""Unicode repair before anything looks at the text: ftfy fixes mojibake ("GrÃ¼ÃŸe" -> "Grüße"),
broken HTML entities and odd line breaks, then NFC composes characters so that "ü" written as
u + combining diaeresis and the precomposed "ü" hash, count and tokenize the same. ASCII text is
left alone without calling ftfy (nothing to fix), which is most English web text."""

import unicodedata

import ftfy
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep


def normalise_text(text: str) -> str:
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", ftfy.fix_text(text, normalization="NFC"))


class NormaliseText(PipelineStep):
    name = "🔤 Unicode normalisation (ftfy + NFC)"
    type = "✂️ - FORMAT"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                fixed = normalise_text(doc.text)
            if fixed != doc.text:
                self.stat_update("changed")
                doc.text = fixed
            yield doc
