"""The segment stage: documents' sentences through the segmenter.

``Segmentation.process`` takes one ``Document`` and returns a ``Segmented``
record or, if segmenting raised, a ``Quarantined`` one.  The engines use
``Segmentation.process_table``, the same thing for a slice of a documents
table in Arrow form: one segmenter call for the sentences of all its
documents, the words turned into Arrow list arrays as they come back, and the
columns a segmented row copies (id, source, title, sentences, file, position)
passed through without becoming Python objects.  If that call raises, the
slice's documents are segmented one by one, so only the bad ones are
quarantined.  Counters: ``segment.read``, ``segment.kept``,
``segment.quarantined``, ``segment.sentences``, ``segment.words``,
``segment.chars``, ``segment.repaired``, ``segment.long_chunks_cut``.
"""

from __future__ import annotations

from itertools import accumulate, chain

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schema
from pipeline.counters import CountFn, Counters, no_count
from pipeline.records import Document, Quarantined, Segmented, excerpt
from pipeline.segment.segmenters import Segmenter, make_segmenter

STAGE = "segment"
COLUMNS = ["id", "source", "title", "text", "sentences", "file", "position"]   # what it reads of a document
SLICE_BYTES = 4 * 1024 * 1024    # document text per segmenter call (bounds the Python words held at once)


def _sentences(sentences, text: str) -> list[str]:
    """A document's sentences: its sentence list, or (before clean) its non-empty text lines."""
    return list(sentences) if sentences is not None else [s for s in text.split("\n") if s]


def slices(table: pa.Table, limit: int = SLICE_BYTES):
    """``table`` in consecutive row slices of about ``limit`` bytes of ``text`` each (at least one row)."""
    sizes = pc.binary_length(table.column("text")).to_pylist()
    start, size = 0, 0
    for row, n in enumerate(sizes):
        size += n or 0
        if size >= limit:
            yield table.slice(start, row + 1 - start)
            start, size = row + 1, 0
    if start < table.num_rows:
        yield table.slice(start)


def text_bytes(table: pa.Table) -> int:
    """UTF-8 bytes of the ``text`` column (progress)."""
    return pc.sum(pc.binary_length(table.column("text"))).as_py() or 0


class Segmentation:
    def __init__(self, options=None, segmenter: Segmenter | None = None) -> None:
        self.segmenter = segmenter or make_segmenter(options)
        self.schema = schema.load("segmented")

    def _words(self, sentences: list[str], count: CountFn) -> list[list[str]]:
        words = self.segmenter.segment(sentences, count)
        if len(words) != len(sentences):
            raise RuntimeError(f"segmenter returned {len(words)} word lists for {len(sentences)} sentences")
        return words

    @staticmethod
    def _count_kept(count: CountFn, docs: int, sentences: list[str], words: list[list[str]]) -> None:
        count("segment.kept", docs)
        count("segment.sentences", len(sentences))
        count("segment.words", sum(map(len, words)))
        count("segment.chars", sum(map(len, sentences)))

    def process(self, doc: Document, count: CountFn = no_count) -> Segmented | Quarantined:
        count("segment.read")
        sentences = _sentences(doc.sentences, doc.text)
        try:
            words = self._words(sentences, count)
        except Exception as exc:  # one bad document must not end the job
            count("segment.quarantined")
            return Quarantined(stage=STAGE, source=doc.source, file=doc.file, position=doc.position, id=doc.id,
                               error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(doc.text))
        self._count_kept(count, 1, sentences, words)
        return Segmented(id=doc.id, source=doc.source, title=doc.title, sentences=sentences, words=words,
                         file=doc.file, position=doc.position)

    def process_table(self, table: pa.Table, count: CountFn = no_count) -> tuple[pa.Table, list[Quarantined]]:
        """Rows of a documents table (at least ``COLUMNS``) -> (their ``segmented`` rows, quarantined records).

        The same rows and counts as :meth:`process` on each document, in order.
        """
        count("segment.read", table.num_rows)
        column = table.column("sentences")
        per_doc = column.to_pylist()
        rebuilt = column.null_count > 0
        if rebuilt:
            texts = table.column("text")
            per_doc = [s if s is not None else _sentences(None, texts[i].as_py()) for i, s in enumerate(per_doc)]
        flat = list(chain.from_iterable(per_doc))
        attempt = Counters()
        try:
            words = self._words(flat, attempt)
        except Exception:     # segment one document at a time: only the bad ones are quarantined
            return self._one_by_one(table, per_doc, count)
        for name, n in attempt.values.items():
            count(name, n)
        self._count_kept(count, table.num_rows, flat, words)
        sentences = pa.array(per_doc, self.schema.field("sentences").type) if rebuilt else column
        return self._table(table, sentences, per_doc, words), []

    def _one_by_one(self, table: pa.Table, per_doc: list[list[str]], count: CountFn):
        kept, quarantined, words = [], [], []
        for i, sentences in enumerate(per_doc):
            try:
                doc_words = self._words(sentences, count)
            except Exception as exc:
                count("segment.quarantined")
                row = table.slice(i, 1).select(["id", "source", "file", "position", "text"]).to_pylist()[0]
                quarantined.append(Quarantined(stage=STAGE, source=row["source"], file=row["file"],
                                               position=row["position"], id=row["id"],
                                               error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(row["text"])))
                continue
            self._count_kept(count, 1, sentences, doc_words)
            kept.append(i)
            words.extend(doc_words)
        per_doc = [per_doc[i] for i in kept]
        table = table.take(pa.array(kept, pa.int64()))
        sentences = pa.array(per_doc, self.schema.field("sentences").type)
        return self._table(table, sentences, per_doc, words), quarantined

    def _table(self, table: pa.Table, sentences, per_doc: list[list[str]], words: list[list[str]]) -> pa.Table:
        """The segmented rows: ``table``'s columns, the sentences, and the words as nested list arrays."""
        values = pa.array(list(chain.from_iterable(words)), pa.string())
        inner = pa.ListArray.from_arrays(pa.array(list(accumulate(map(len, words), initial=0)), pa.int32()), values)
        outer = pa.ListArray.from_arrays(pa.array(list(accumulate(map(len, per_doc), initial=0)), pa.int32()),
                                         inner)
        columns = {"sentences": sentences, "words": outer}
        arrays = [columns[f.name] if f.name in columns else table.column(f.name) for f in self.schema]
        return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, self.schema)], schema=self.schema)
