"""Every option of every stage, in one place.

A run is configured by one YAML file (read with ``yaml.safe_load``) whose
sections mirror the dataclasses below; command-line flags override it.  The
CLI builds its flags from these dataclasses, so each option's ``help`` here is
also its ``--help`` text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def option(default, help: str, **kw):
    """A config field with its help text."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class InputSpec:
    """One input: a file, a directory (read recursively) or a glob."""

    path: str
    format: str = "auto"
    source: str | None = None
    weight: float | None = None      # mixing weight of the source (see ShardOptions.weights)


@dataclass
class BeamOptions:
    runner: str = option("FnApiRunner", "Beam runner: FnApiRunner (in-process, the local default; never "
                         "Prism), DirectRunner, DataflowRunner, ...")
    direct_num_workers: int = option(1, "local workers for the in-process runner (0 = one per core)")
    direct_running_mode: str = option("in_memory", "in_memory, multi_threading or multi_processing "
                                      "(use multi_processing with more than one worker)",
                                      choices=["in_memory", "multi_threading", "multi_processing"])
    pipeline_args: list = option([], "extra Beam pipeline arguments, e.g. ['--project=p', '--region=r']")


@dataclass
class SparkOptions:
    master: str = option("local[*,4]", "Spark master URL: local[*,4] (all cores, a failed task tried up to 4 times, as "
                         "spark.task.maxFailures does on a cluster; plain local[N] never retries), spark://host:7077, "
                         "yarn")
    driver_memory: str = option("4g", "spark.driver.memory (local mode: the whole job's memory)")
    partitions: int = option(0, "tasks per stage for clean and dedup (0 = two per core Spark has)")
    partition_mb: float = option(32.0, "dedup: at least one task per this many MB of its input table (Parquet files), "
                                 "so each task's share of the exact-key and band shuffles stays the same as the "
                                 "input grows (0: off; a set partitions count is taken as given)")
    conf: dict = option({}, "extra Spark settings, e.g. {spark.executor.memory: 8g}")


@dataclass
class IngestOptions:
    format: str = option("auto", "input format when not given per input: auto, mediawiki, wikiextractor, "
                         "wikiextractor_json, wiki2019zh, news2016zh, baike2018qa, webtext2019zh, ccnet, "
                         "squad, jsonl, text")
    source: str = option("", "source name for a single input (default: the input path's stem)")
    max_record_bytes: int = option(64 * 1024 * 1024, "a record (JSON line, <doc> block, XML page) longer "
                                   "than this is quarantined instead of parsed (a line over it is read in 1 MB "
                                   "chunks, never held); a worker needs about 8x this much memory for the "
                                   "largest record it parses")


@dataclass
class CleanOptions:
    convert: str = option("t2s", "OpenCC conversion applied to every document: t2s, tw2s, hk2s, tw2sp, "
                          "or none")
    fullwidth: bool = option(True, "fold full-width ASCII letters and digits (and U+3000) to half-width; "
                             "Chinese punctuation is never changed")
    min_chars: int = option(20, "rule too_short: fewest non-space characters a document may have")
    max_chars: int = option(2_000_000, "rule too_long: most characters a document may have (checked on the "
                            "raw text first, so a huge document is rejected without being normalised)")
    min_han_ratio: float = option(0.3, "rule low_han_ratio: least share of Han characters among "
                                  "non-space characters")
    max_boilerplate_line_ratio: float = option(0.5, "rule boilerplate_lines: most share of lines that "
                                               "are navigation or boilerplate (such lines are always "
                                               "removed from kept documents)")
    max_duplicate_line_ratio: float = option(0.3, "rule repeated_lines: most share of lines that repeat "
                                             "an earlier line of the document")
    repeated_ngram_size: int = option(13, "rule repeated_ngrams: character n-gram size")
    max_repeated_ngram_ratio: float = option(0.5, "rule repeated_ngrams: most share of character n-grams "
                                             "that occur more than once in the document")


@dataclass
class DedupOptions:
    exact: bool = option(True, "drop documents whose normalised content (NFKC, simplified, lowercase, "
                         "whitespace and punctuation removed) equals another's; the smallest id is kept")
    key_convert: str = option("t2s", "OpenCC conversion applied inside the dedup keys and shingles (not to the "
                              "text), so traditional and simplified copies collide; none to turn it off")
    near: bool = option(True, "after exact dedup, drop near duplicates found with MinHash LSH")
    threshold: float = option(0.6, "near dedup: Jaccard similarity of character shingles at or above which two "
                              "documents are duplicates (0.6 finds copies keeping >= 80% of their text, "
                              "inserted text included; 0.8 only lightly edited ones)")
    containment: float = option(0.8, "near dedup (exact verify): also a duplicate when the shared shingles over "
                                "the smaller document's shingles reach this (an article and a truncated or "
                                "abridged copy of it); 0 turns it off")
    containment_min_jaccard: float = option(0.4, "near dedup: least Jaccard of a containment duplicate (a short "
                                            "text inside a long one is not one); with containment on, the LSH "
                                            "bands are derived for the lower of this and threshold")
    num_perm: int = option(128, "near dedup: MinHash permutations per signature")
    bands: int = option(0, "near dedup: LSH bands (0 = derived with rows from threshold and num_perm)")
    rows: int = option(0, "near dedup: rows per band (0 = derived)")
    ngram: int = option(5, "near dedup: shingle size in characters")
    short_ngram: int = option(3, "near dedup: shingle size for texts shorter than short_length")
    short_length: int = option(100, "near dedup: normalised length under which short_ngram is used")
    seed: int = option(42, "near dedup: seed of the permutations (same seed, same clusters on every engine)")
    verify: str = option("exact", "near dedup: check candidate pairs by exact Jaccard of their shingle sets "
                         "('exact', one more pass over the candidate documents), by the signature estimate alone "
                         "('signature') or not at all ('none')", choices=["exact", "signature", "none"])
    false_positive_weight: float = option(0.05, "near dedup: weight of false positives when deriving bands and "
                                          "rows (text-dedup's optimal_param); low because candidates are verified")
    false_negative_weight: float = option(0.95, "near dedup: weight of false negatives when deriving bands and rows")
    memory_mb: float = option(256.0, "Beam: memory for dedup's groupings (exact keys, LSH buckets, candidate edges); "
                            "when the input's groups would not fit, they spill to disk in partitions of about this "
                            "size, sorted and resolved one partition at a time (0: always group in memory)")


@dataclass
class SegmentOptions:
    segmenter: str = option("ltp", "word segmenter: ltp (LTP legacy perceptron, or neural when the model directory "
                            "says so) or jieba", choices=["ltp", "jieba"])
    model: str = option("", "LTP model: a cws_model.bin file or an LTP model directory (config.json); nothing is "
                        "ever downloaded: train one with 'wwm train-segmenter' or point at the official files")
    threads: int = option(1, "LTP: threads per worker process (legacy: RAYON_NUM_THREADS; neural: torch threads); "
                          "keep 1 when the engine already runs one worker per core")
    batch_size: int = option(256, "LTP legacy: sentences per batch_predict call")
    neural_batch_size: int = option(32, "neural LTP: sentences per padded batch (sorted by length)")
    device: str = option("cpu", "neural LTP: cpu or cuda")
    hmm: bool = option(True, "jieba: HMM discovery of unknown words")
    user_dict: str = option("", "jieba: user dictionary file")


@dataclass
class VocabOptions:
    size: int = option(21128, "entries of the WordPiece vocab (Google's Chinese BERT vocab has 21,128)")
    reserved_unused: int = option(99, "[unusedN] slots after [PAD], as in Google's vocab ([unused1]..[unused99])")
    min_char_count: int = option(0, "every Han (CJK) character counted at least this many times gets an entry and "
                                 "its ## form; 0 = automatic: the smallest count at which the characters and their "
                                 "## forms fill at most 75% of the entries after the reserved ones")
    min_frequency: int = option(2, "WordPiece trainer: fewest occurrences of a pair for it to be merged")
    ascii: bool = option(True, "reserve an entry for every printable ASCII character (upper case only when not "
                         "lowercasing) right after the reserved layout, as Google's vocab does, and the ## form of "
                         "each digit and letter: '{' or '~' that the corpus never shows is not [UNK]")
    lowercase: bool = option(True, "lowercase and strip accents before counting, as BERT's uncased Chinese vocab")
    held_out_fraction: float = option(0.01, "share of documents (chosen by a hash of their id, the same on every "
                                      "engine) left out of counting; the stats tokenize them with the new vocab")
    held_out_max_chars: int = option(20_000_000, "most characters of held-out text the stats tokenize")
    vocab: str = option("", "an existing vocab file (e.g. Google's): no training, it is checked and copied to "
                        "OUTPUT/vocab/vocab.txt")
    reference: str = option("", "a reference vocab (e.g. Google's) the stats compare with: overlap, and its [UNK] "
                            "rate and tokens per character on the same held-out text")
    pre_tokenizer: str = option("regex", "how pre-tokens are computed: regex (BERT's BasicTokenizer as regular "
                                "expressions, faster) or tokenizers (BertNormalizer + BertPreTokenizer)",
                                choices=["regex", "tokenizers"])


@dataclass
class ShardOptions:
    vocab: str = option("", "vocab file (default: OUTPUT/vocab/vocab.txt, written by the vocab stage)")
    lowercase: bool = option(True, "lowercase and strip accents before WordPiece (true for Google's Chinese vocab)")
    mode: str = option("bert", "bert: A/B segments with next-sentence labels; roberta: full sentences packed "
                       "across documents, no NSP", choices=["bert", "roberta"])
    max_seq_length: int = option(128, "tokens per instance, [CLS] and [SEP] included (128 and 512 are the usual "
                                 "two phases)")
    max_predictions_per_seq: int = option(20, "most masked positions per instance (20 for 128, 80 for 512); "
                                          "the runner must be given the same value")
    masked_lm_prob: float = option(0.15, "share of an instance's tokens to mask")
    short_seq_prob: float = option(0.1, "bert mode: share of document copies that aim at a random shorter length")
    chunk_overflow: str = option("stop", "bert mode: a chunk stops before the sentence that would take it over "
                                 "max_seq_length (stop: nothing truncated from an actual next) or takes it and is "
                                 "truncated, as google-research/bert (truncate: with long_sentence_tokens -1, "
                                 "google's chunks)", choices=["stop", "truncate"])
    dupe_factor: int = option(10, "copies of each document, each masked (and paired) with its own seed")
    seed: int = option(12345, "global seed: every choice is seeded from (seed, document id, copy)")
    wwm: bool = option(True, "whole-word masking from the segmenter's words (false: plain per-token masking)")
    masking: str = option("wwm", "masking units: wwm (whole words, google-research/bert's loop), ngram (runs of "
                          "1..N whole words, MacBERT; lengths from ngram_probs) or span (SpanBERT: span lengths in "
                          "whole words from a geometric distribution, span_p, clipped at span_max)",
                          choices=["wwm", "ngram", "span"])
    ngram_probs: str = option("0.4,0.3,0.2,0.1", "ngram masking: probabilities of a unit of 1, 2, ... N words "
                              "(comma-separated; normalised)")
    span_p: float = option(0.2, "span masking: p of the geometric distribution of span lengths (words)")
    span_max: int = option(10, "span masking: longest span (words); the distribution is clipped there and "
                           "renormalised (mean 3.8 words with p = 0.2)")
    mask_decision: str = option("word", "80/10/10 drawn once per masked word (word) or per token (token, as "
                                "google-research/bert and Chinese-BERT-wwm)", choices=["word", "token"])
    unmasked: bool = option(False, "write unmasked instances with word_ids for masking on the fly in the runner "
                            "(true dynamic masking)")
    format: str = option("tfrecord", "shard files: tfrecord (google-research/bert's Examples), parquet (the same "
                         "features as columns, schemas/parquet_instances.v1.json) or both",
                         choices=["tfrecord", "parquet", "both"])
    weights: dict = option({}, "mixing weight per source name, e.g. {wiki: 2.0, web: 0.5} (also given per input "
                           "as inputs: [{path, source, weight}] or SOURCE=PATH@WEIGHT): each document gets "
                           "floor(w) copies and one more with probability w - floor(w), before dupe_factor; "
                           "unnamed sources weigh 1")
    shards: int = option(0, "output shard count (0 = one per instances_per_shard estimated instances)")
    instances_per_shard: int = option(50_000, "aim when shards is 0 (a shard is held in memory while sorted)")
    pool_documents: int = option(128, "documents per pool: a random next sentence comes from another document "
                                 "of the pool; roberta packs a pool's documents")
    long_sentence_tokens: int = option(0, "split sentences longer than this many tokens into near-equal pieces "
                                       "at word starts before building instances (0 = half the sequence in bert "
                                       "mode, never in roberta mode, which splits what does not fit; -1 = never)")


@dataclass
class Config:
    engine: str = option("beam", "engine that runs the stages: beam or spark", choices=["beam", "spark"])
    output: str = option("output", "run directory; each stage writes OUTPUT/<stage>/")
    inputs: list = option([], "inputs: paths, or 'SOURCE=PATH' ('SOURCE=PATH@WEIGHT' with a mixing weight), "
                          "or in YAML a list of {path, format, source, weight}")
    progress: bool = option(True, "print a progress line (documents/s, MB/s) while reading")
    up_to_date: str = option("stat", "how wwm run tells that a stage's inputs are unchanged: stat (path, size and "
                             "modification time of each file) or content (path, size and SHA-256 of each file's "
                             "bytes: reads every input once more; sees an edit that kept size and time, and takes "
                             "a file touched or copied anew with the same bytes as unchanged)",
                             choices=["stat", "content"])
    beam: BeamOptions = field(default_factory=BeamOptions)
    spark: SparkOptions = field(default_factory=SparkOptions)
    ingest: IngestOptions = field(default_factory=IngestOptions)
    clean: CleanOptions = field(default_factory=CleanOptions)
    dedup: DedupOptions = field(default_factory=DedupOptions)
    segment: SegmentOptions = field(default_factory=SegmentOptions)
    vocab: VocabOptions = field(default_factory=VocabOptions)
    shards: ShardOptions = field(default_factory=ShardOptions)

    SECTIONS = ("beam", "spark", "ingest", "clean", "dedup", "segment", "vocab", "shards")

    def input_specs(self) -> list[InputSpec]:
        return [parse_input(item, self.ingest.format, self.ingest.source) for item in self.inputs]


    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A config file or flag that cannot be used."""


def parse_input(item: Any, default_format: str = "auto", default_source: str = "") -> InputSpec:
    """An input from a YAML item or a command-line string (``PATH`` or ``SOURCE=PATH``)."""
    if isinstance(item, InputSpec):
        return item
    if isinstance(item, dict):
        unknown = set(item) - {"path", "format", "source", "weight"}
        if unknown or "path" not in item:
            raise ConfigError(f"input {item!r}: expected keys path, format, source, weight")
        weight = item.get("weight")
        return _weighted(InputSpec(str(item["path"]), str(item.get("format") or default_format),
                                   str(item.get("source") or default_source) or None),
                         None if weight is None else weight, item)
    if not isinstance(item, str) or not item:
        raise ConfigError(f"input {item!r}: expected a path string")
    source, sep, path = item.partition("=")
    if sep and source and "/" not in source and not Path(item).exists():
        path, weight = _split_weight(path)
        return _weighted(InputSpec(path, default_format, source), weight, item)
    return InputSpec(item, default_format, default_source or None)


def _split_weight(path: str) -> tuple[str, str | None]:
    """``PATH@2.5`` -> (PATH, "2.5") when PATH@2.5 is not itself a file and the tail is a number."""
    head, at, tail = path.rpartition("@")
    if at and head and not Path(path).exists():
        try:
            float(tail)
        except ValueError:
            return path, None
        return head, tail
    return path, None


def _weighted(spec: InputSpec, weight, item) -> InputSpec:
    if weight is None:
        return spec
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise ConfigError(f"input {item!r}: weight {weight!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"input {item!r}: weight {weight!r} must be a finite number >= 0")
    if not spec.source:
        raise ConfigError(f"input {item!r}: a weight is per source, so it needs a source name "
                          f"(SOURCE=PATH@WEIGHT, or source: in the YAML)")
    spec.weight = value
    return spec


def source_weights(config: Config) -> dict[str, float]:
    """The mixing weight of each named source: ``shards.weights``, then the inputs' own weights (which win);
    ConfigError when two inputs of one source disagree or a weight is not a number >= 0."""
    from pipeline.shards.mixing import check_weights

    try:
        weights = check_weights(config.shards.weights)
    except ValueError as exc:
        raise ConfigError(f"shards.weights: {exc}") from None
    given: dict[str, float] = {}
    for spec in config.input_specs():
        if spec.weight is None:
            continue
        if spec.source in given and given[spec.source] != spec.weight:
            raise ConfigError(f"source {spec.source!r}: two inputs give it different weights "
                              f"({given[spec.source]} and {spec.weight})")
        given[spec.source] = spec.weight
    return {**weights, **given}


def _input_item(item: Any) -> dict:
    """An input as a dict holding only what was given (format and source defaults apply later)."""
    spec = parse_input(item, default_format="", default_source="")
    given = {"path": spec.path}
    if spec.format:
        given["format"] = spec.format
    if spec.source:
        given["source"] = spec.source
    if spec.weight is not None:
        given["weight"] = spec.weight
    return given


def _section_fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _coerce(value: Any, f: dataclasses.Field, where: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
                return value.lower() in ("true", "yes", "1", "on")
            raise ValueError(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
        if kind == "list":
            if not isinstance(value, list):
                raise ValueError(value)
            return value
        if kind == "dict":
            if not isinstance(value, dict):
                raise ValueError(value)
            return value
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a valid {kind}") from None
    return value


def _check_choice(value: Any, f: dataclasses.Field, where: str) -> None:
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")


def apply(config: Config, values: dict, where: str = "config") -> Config:
    """Set options from a nested dict (YAML layout); unknown keys are errors."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    top = _section_fields(Config)
    for key, value in values.items():
        if key in Config.SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: section {key!r} must be a mapping")
            section = getattr(config, key)
            fields = _section_fields(type(section))
            for name, sub in value.items():
                if name not in fields:
                    raise ConfigError(f"{where}: unknown option {key}.{name}")
                coerced = _coerce(sub, fields[name], f"{where}: {key}.{name}")
                _check_choice(coerced, fields[name], f"{where}: {key}.{name}")
                setattr(section, name, coerced)
        elif key in top:
            coerced = _coerce(value, top[key], f"{where}: {key}")
            _check_choice(coerced, top[key], f"{where}: {key}")
            if key == "inputs":
                coerced = [_input_item(item) for item in coerced]
            setattr(config, key, coerced)
        else:
            raise ConfigError(f"{where}: unknown option {key}")
    return config


def load(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Defaults, then the YAML file (if any), then overrides (a nested dict)."""
    config = Config()
    if path:
        text = Path(path).read_text(encoding="utf-8")
        try:
            values = yaml.safe_load(text)
        except yaml.constructor.ConstructorError as exc:   # e.g. a !!python/object tag: never constructed
            mark = exc.problem_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError(f"{path}{where}: only plain YAML (mappings, lists, strings, numbers, booleans) is "
                              f"read, no language-specific tags: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if values is not None:
            apply(config, values, where=str(path))
    if overrides:
        apply(config, overrides, where="command line")
    return config


def dump(config: Config) -> str:
    """The config as YAML (what ``--config`` reads back)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
