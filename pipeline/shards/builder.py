"""A pool of documents -> keyed, masked, serialized instances; the shard balancing plan; the shard writer.

The engines run three steps around this module:

1. every segmented row is tokenized (``ShardBuilder.tokenize``) and sent to its pool
   (``seeds.pool_of``: a hash of the document id);
2. each pool yields its instances (``ShardBuilder.pool_instances``): for every copy
   (``dupe_factor``), every document with its own random stream seeded from
   (seed, document id, copy); each instance comes out framed as a TFRecord, with its
   shuffle key (``seeds.order_key``) and its figures;
3. the global shuffle: instances sorted by key; shard ``key % shards`` first, then the
   instances over a shard's even share (``shard_targets``) move, by key order, to the
   shards under it (``rebalance`` / ``destinations``), so shard sizes differ by at most
   one and every byte depends only on the input, the vocab and the settings.  The part
   a shard keeps is spilled to a file (``split_shard``) and only the surplus takes a
   second trip through the engine; ``write_shard`` merges both.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import uuid
from pathlib import Path

from pipeline.counters import CountFn, no_count
from pipeline.records import Quarantined, Rejected, excerpt
from pipeline.shards.batch import BatchEncoder
from pipeline.shards.instances import bert_instances, pool_tokens, roberta_instances
from pipeline.shards.masking import replacement_ids
from pipeline.shards.seeds import derive, derive_pair, rng_for
from pipeline.shards.tokens import DocumentTokenizer, TokenizedDocument
from pipeline.vocab.wordpiece import read_vocab

STAGE = "shards"

# Figures carried by each instance, summed per shard for the manifest.
STAT_FIELDS = ("tokens", "masked", "masked_words", "random_next", "own_tokens", "truncated",
               "truncated_borrowed", "single_segment")


class ShardBuilder:
    """Everything a worker needs to turn documents into shard records; built once per worker."""

    def __init__(self, options, vocab_path: str) -> None:
        self.options = options
        entries = read_vocab(vocab_path)
        self.max_tokens = options.max_seq_length - 3
        split = options.long_sentence_tokens if options.long_sentence_tokens >= 0 else 0
        if options.long_sentence_tokens == 0:
            split = max(1, self.max_tokens // 2) if options.mode == "bert" else 0
        self.tokenizer = DocumentTokenizer(entries, lowercase=options.lowercase, whole_word=options.wwm,
                                           long_sentence_tokens=split)
        index = {entry: i for i, entry in enumerate(entries)}
        self.replacements = replacement_ids(entries, lowercase=options.lowercase)
        self.encoder = BatchEncoder(options, len(entries), cls=index["[CLS]"], sep=index["[SEP]"],
                                    mask=index["[MASK]"], replacements=self.replacements)

    def tokenize_table(self, table, count: CountFn = no_count):
        """Every row of a segmented Arrow table (a row group), as ``tokenize`` does, with the word lengths taken
        column-wise (no Python string per word)."""
        import pyarrow.compute as pc

        words = table.column("words").combine_chunks() if "words" in table.column_names else None
        if words is not None and len(words):
            doc_offsets = words.offsets.to_numpy()
            sentence_lists = words.values
            sentence_offsets = sentence_lists.offsets.to_numpy()
            lengths = pc.utf8_length(sentence_lists.values).to_numpy(zero_copy_only=False)
            valid_docs = words.is_valid().to_numpy(zero_copy_only=False)
            valid_sentences = sentence_lists.is_valid().to_numpy(zero_copy_only=False)
        others = table.drop_columns(["words"]) if words is not None else table
        for index, row in enumerate(others.to_pylist()):
            word_lengths = None
            if words is not None and len(words) and valid_docs[index]:
                word_lengths = [lengths[sentence_offsets[k]:sentence_offsets[k + 1]] if valid_sentences[k] else None
                                for k in range(doc_offsets[index], doc_offsets[index + 1])]
            yield self.tokenize(row, count, word_lengths=word_lengths)

    def tokenize(self, row: dict, count: CountFn = no_count, word_lengths: list | None = None):
        """A segmented row -> ``TokenizedDocument``; ``Rejected`` (rule ``no_tokens``) when nothing of it is
        a token; ``Quarantined`` when it cannot be read."""
        count("shards.read")
        try:
            sentences = row["sentences"] or []
            if word_lengths is not None:
                doc = self.tokenizer.tokenize(row["id"], sentences, count=count, word_lengths=word_lengths)
            else:
                doc = self.tokenizer.tokenize(row["id"], sentences, row.get("words"), count)
        except Exception as exc:  # one bad document must not end the job
            count("shards.quarantined")
            return Quarantined(stage=STAGE, source=row.get("source") or "", file=row.get("file") or "",
                               position=row.get("position") or 0, id=row.get("id"),
                               error=f"{type(exc).__name__}: {exc}",
                               excerpt=excerpt("\n".join(str(x) for x in row.get("sentences") or [])))
        if not doc.sentences:
            count("shards.rejected.no_tokens")
            return Rejected(id=row["id"], source=row.get("source") or "", stage=STAGE, rule="no_tokens",
                            text="\n".join(sentences), file=row.get("file") or "", position=row.get("position") or 0,
                            detail="no sentence has a WordPiece token", title=row.get("title"))
        count("shards.kept")
        count("shards.document_tokens", doc.tokens)
        return doc

    def pool_instances(self, docs: list[TokenizedDocument], count: CountFn = no_count):
        """(key, framed TFRecord, figures) of every instance of every copy of the pool's documents."""
        options = self.options
        docs = sorted(docs, key=lambda d: d.id)
        pool = pool_tokens(docs)
        everyone = list(range(len(docs)))
        for copy in range(options.dupe_factor):
            instances = []
            if options.mode == "bert":
                for position, doc in enumerate(docs):
                    rng = rng_for(options.seed, "doc", doc.id, copy)
                    partners = everyone[:position] + everyone[position + 1:]
                    instances += bert_instances(pool, position, partners, copy, rng, options.max_seq_length,
                                                options.short_seq_prob)
            else:
                order = sorted(everyone, key=lambda d: derive(options.seed, "pack", copy, docs[d].id))
                instances = roberta_instances(pool, order, copy, options.max_seq_length)
            pairs = [derive_pair(options.seed, "instance", inst.doc_id, inst.copy, inst.index) for inst in instances]
            records, figures = self.encoder.encode(pool, instances, [mask_seed for _, mask_seed in pairs])
            count("shards.instances", len(instances))
            for instance, (key, _), record, (tokens, masked, words) in zip(instances, pairs, records, figures):
                yield key, record, (tokens, masked, words, int(instance.is_random_next), instance.own_tokens,
                                    instance.truncated, instance.truncated_borrowed, int(instance.single_segment))


def by_shard(items, shards: int) -> dict[int, list]:
    """Keyed records grouped by first shard (``key % shards``): the engines move lists, not single records."""
    groups: dict[int, list] = {}
    for item in items:
        groups.setdefault(item[0] % shards, []).append(item)
    return groups


def pool_sections(pool: int, items, shards: int, spill_dir: str | Path) -> list[tuple[int, tuple]]:
    """Write a pool's keyed records to one file, grouped by first shard (``key % shards``); returns
    ``(shard, (path, offset, size, count))`` per group, so the engines move these small references instead
    of the records.  Written under a temporary name and renamed: a retried task writes the same file."""
    groups = by_shard(items, shards)
    spill = Path(spill_dir)
    spill.mkdir(parents=True, exist_ok=True)
    final = spill / f"pool-{pool:06d}.bin"
    tmp = spill / f".{final.name}.{uuid.uuid4().hex[:12]}.tmp"
    sections, offset = [], 0
    with open(tmp, "wb") as f:
        for shard in sorted(groups):
            data = pickle.dumps(groups[shard], protocol=pickle.HIGHEST_PROTOCOL)
            f.write(data)
            sections.append((shard, (str(final), offset, len(data), len(groups[shard]))))
            offset += len(data)
    os.replace(tmp, final)
    return sections


def load_section(section: tuple) -> list:
    """The records of one ``pool_sections`` reference."""
    path, offset, size, _ = section
    with open(path, "rb") as f:
        f.seek(offset)
        return pickle.loads(f.read(size))


def split_shard(shard: int, batches, targets: list[int], plan: dict, spill_dir: str | Path) -> dict[int, list]:
    """All records of one first shard (in batches, any order): the ones it keeps (the first ``targets[shard]``
    in key order) are spilled to ``spill_dir`` for ``write_shard``; returns its surplus as
    {destination shard: records}, and ``{shard: []}`` so the shard is written even if nothing moves to it.

    Only the surplus (a few records per shard) goes through the engine's second shuffle.
    """
    items = sorted((item for batch in batches for item in batch), key=by_key)
    keep = min(len(items), targets[shard])
    spill = Path(spill_dir)
    spill.mkdir(parents=True, exist_ok=True)
    tmp = spill / f".{shard:05d}.{uuid.uuid4().hex[:12]}.tmp"
    with open(tmp, "wb") as f:
        pickle.dump(items[:keep], f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, spill / f"{shard:05d}.pickle")
    out: dict[int, list] = {shard: []}
    for dest, item in zip(destinations(shard, len(items) - keep, 0, plan.get(shard)), items[keep:]):
        out.setdefault(dest, []).append(item)
    return out


def spilled(spill_dir: str | Path, shard: int) -> list:
    """The records ``split_shard`` kept for ``shard``.

    The file stays until the stage removes the spill directory: a retried write task (its first attempt
    failed, or its executor was lost, after reading it) must find it again.
    """
    path = Path(spill_dir) / f"{shard:05d}.pickle"
    if not path.exists():
        return []
    with open(path, "rb") as f:
        return pickle.load(f)


def shard_targets(total: int, shards: int) -> list[int]:
    """How many instances each shard gets: an even share, the first ``total % shards`` one more."""
    base, extra = divmod(total, shards)
    return [base + (1 if s < extra else 0) for s in range(shards)]


def rebalance(counts: dict[int, int], shards: int) -> dict[int, list[tuple[int, int]]]:
    """For each shard over its target: where its surplus goes, as [(destination, how many), ...] in key order.

    ``counts`` are instances per shard after ``key % shards``.  Surplus shards are visited in shard order
    and fill the shards under target in shard order, so the plan is the same wherever it is computed.
    """
    targets = shard_targets(sum(counts.values()), shards)
    needs = [(s, targets[s] - counts.get(s, 0)) for s in range(shards) if counts.get(s, 0) < targets[s]]
    plan: dict[int, list[tuple[int, int]]] = {}
    cursor = 0
    for s in range(shards):
        surplus = counts.get(s, 0) - targets[s]
        moves = []
        while surplus > 0:
            dest, need = needs[cursor]
            n = min(need, surplus)
            moves.append((dest, n))
            surplus -= n
            need -= n
            if need:
                needs[cursor] = (dest, need)
            else:
                cursor += 1
        if moves:
            plan[s] = moves
    return plan


def destinations(shard: int, count: int, target: int, moves: list[tuple[int, int]] | None):
    """Destination shard of each of ``count`` instances of ``shard``, in key order."""
    for _ in range(min(count, target)):
        yield shard
    for dest, n in moves or ():
        for _ in range(n):
            yield dest


def by_key(item) -> tuple[int, bytes]:
    """Sort key of a keyed record: the shuffle key, then the bytes (two instances sharing a 64-bit key
    still land in one order, whatever order they arrived in)."""
    return item[0], item[1]


def shard_name(shard: int, shards: int) -> str:
    return f"part-{shard:05d}-of-{shards:05d}.tfrecord"


def write_shard(directory: str | Path, shard: int, shards: int, records) -> dict:
    """Write (key, framed record, figures) items, in key order, as one shard; returns its summary.

    Written under a temporary name and renamed, so a retried task replaces the shard whole.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / shard_name(shard, shards)
    tmp = directory / f".{final.name}.{uuid.uuid4().hex[:12]}.tmp"
    digest = hashlib.sha256()
    totals = [0] * len(STAT_FIELDS)
    instances = size = 0
    with open(tmp, "wb") as f:
        for _, record, figures in sorted(records, key=by_key):
            f.write(record)
            digest.update(record)
            size += len(record)
            instances += 1
            for i, value in enumerate(figures):
                totals[i] += value
    os.replace(tmp, final)
    return {"file": final.name, "shard": shard, "instances": instances, "bytes": size,
            "sha256": digest.hexdigest(), **dict(zip(STAT_FIELDS, totals))}
