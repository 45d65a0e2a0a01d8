"""The segment stage for one document: its sentences through the segmenter.

``Segmentation.process`` returns a ``Segmented`` record or, if segmenting
raised, a ``Quarantined`` one.  Counters: ``segment.read``, ``segment.kept``,
``segment.quarantined``, ``segment.sentences``, ``segment.words``,
``segment.chars``, ``segment.repaired``, ``segment.long_chunks_cut``.
"""

from __future__ import annotations

from pipeline.counters import CountFn, no_count
from pipeline.records import Document, Quarantined, Segmented, excerpt
from pipeline.segment.segmenters import Segmenter, make_segmenter

STAGE = "segment"


class Segmentation:
    def __init__(self, options=None, segmenter: Segmenter | None = None) -> None:
        self.segmenter = segmenter or make_segmenter(options)

    def process(self, doc: Document, count: CountFn = no_count) -> Segmented | Quarantined:
        count("segment.read")
        sentences = list(doc.sentences) if doc.sentences is not None else [s for s in doc.text.split("\n") if s]
        try:
            words = self.segmenter.segment(sentences, count)
            if len(words) != len(sentences):
                raise RuntimeError(f"segmenter returned {len(words)} word lists for {len(sentences)} sentences")
        except Exception as exc:  # one bad document must not end the job
            count("segment.quarantined")
            return Quarantined(stage=STAGE, source=doc.source, file=doc.file, position=doc.position, id=doc.id,
                               error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(doc.text))
        count("segment.kept")
        count("segment.sentences", len(sentences))
        count("segment.words", sum(len(w) for w in words))
        count("segment.chars", sum(len(s) for s in sentences))
        return Segmented(id=doc.id, source=doc.source, title=doc.title, sentences=sentences, words=words,
                         file=doc.file, position=doc.position)
