"""Segmenters: a batch of sentences in, the words of each out.

Every segmenter keeps one promise: ``"".join(words) == sentence``.  The base
class holds it for all of them: whitespace runs are cut out before the engine
sees the text (LTP would glue them to a neighbouring word) and come back as
words of their own; a chunk the engine cannot take (lone surrogates) or whose
words do not join back is split into characters and counted
(``segment.repaired``); a whitespace-free run longer than ``MAX_CHUNK_CHARS``
(10,000) is cut into pieces first (``segment.long_chunks_cut``), so that a
long unpunctuated document cannot make the engine hold it whole.  Engines are loaded lazily, once per process (a cache keyed by
the settings that pick the model), and never pickled: a segmenter holds
only its settings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from pathlib import Path

from pipeline.counters import CountFn, no_count
from pipeline.config import SegmentOptions

_SPACE = re.compile(r"(\s+)")
_ENGINES: dict[tuple, object] = {}     # loaded engines, per process: a worker reused by many tasks loads once


def _cached(key: tuple, load):
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = load()
    return engine
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPECIAL = re.compile("[\\s\ud800-\udfff]")
_SOFT_BREAK = re.compile("[，,、；;：:]")
MAX_CHUNK_CHARS = 10_000    # longer whitespace-free runs are cut before the engine sees them (memory)


def cut_long(chunk: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """``chunk`` in pieces of at most ``limit`` characters, each cut after the last comma-like mark in the last
    tenth of its window when there is one (a word can only be split where there is none)."""
    pieces, start = [], 0
    while len(chunk) - start > limit:
        end = start + limit
        tail = end - max(1, limit // 10)
        marks = [m.end() for m in _SOFT_BREAK.finditer(chunk, tail, end)]
        end = marks[-1] if marks else end
        pieces.append(chunk[start:end])
        start = end
    pieces.append(chunk[start:])
    return pieces


class SegmenterError(ValueError):
    """A segmenter that cannot be built from its settings (missing model, bad directory)."""


class Segmenter:
    """Base class: subclasses implement :meth:`_segment_chunks` over whitespace-free chunks."""

    name = "segmenter"

    def describe(self) -> dict:
        return {"segmenter": self.name}

    def _engine_key(self) -> tuple:
        """What identifies the loaded engine in this process (segmenters with equal keys share it)."""
        raise NotImplementedError

    def _load(self):
        """Load the engine (called once per process and key)."""
        raise NotImplementedError

    def _engine(self):
        """The loaded engine, from the per-process cache; the segmenter itself holds only settings."""
        return _cached(self._engine_key(), self._load)

    def _segment_chunks(self, chunks: list[str]) -> list[list[str]]:
        raise NotImplementedError

    def segment(self, sentences: list[str], count: CountFn = no_count) -> list[list[str]]:
        """Words of each sentence; joining them gives the sentence back exactly."""
        pieces: list[list[str] | None] = []   # per sentence: its chunks and whitespace runs (None: one chunk)
        todo: list[str] = []
        for sentence in sentences:
            if len(sentence) <= MAX_CHUNK_CHARS and not _SPECIAL.search(sentence):   # the common case
                pieces.append(None)
                if sentence:
                    todo.append(sentence)
                continue
            parts = []
            for part in _SPACE.split(sentence):
                if len(part) > MAX_CHUNK_CHARS and not part.isspace():
                    count("segment.long_chunks_cut")
                    parts.extend(cut_long(part))
                elif part:
                    parts.append(part)
            pieces.append(parts)
            todo.extend(p for p in parts if not p.isspace() and not _SURROGATE.search(p))
        segmented = iter(self._segment_chunks(todo) if todo else [])
        result = []
        for sentence, parts in zip(sentences, pieces):
            if parts is None:
                result.append(self._checked(sentence, next(segmented), count) if sentence else [])
                continue
            words: list[str] = []
            for part in parts:
                if part.isspace():
                    words.append(part)
                elif _SURROGATE.search(part):
                    count("segment.repaired")
                    words.extend(part)
                else:
                    words.extend(self._checked(part, next(segmented), count))
            result.append(words)
        return result

    @staticmethod
    def _checked(chunk: str, words: list[str], count: CountFn) -> list[str]:
        """The engine's words for a chunk, or its characters if they do not join back to it."""
        if "".join(words) == chunk and all(words):
            return words
        count("segment.repaired")
        return list(chunk)


def _model_file(path: str) -> tuple[Path, bool]:
    """(cws model file, neural?) for a model file or an LTP model directory (config.json)."""
    p = Path(path)
    if p.is_dir():
        config_path = p / "config.json"
        if not config_path.exists():
            raise SegmenterError(f"{p} has no config.json (an LTP model directory holds config.json and its model)")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if "nerual" not in config and "neural" not in config:
            raise SegmenterError(f"{config_path} says neither \"nerual\" (LTP's spelling) nor \"neural\"")
        neural = bool(config.get("nerual", config.get("neural")))
        if neural:
            return p, True
        cws = (config.get("tasks") or {}).get("cws", "cws_model.bin")
        return p / cws, False
    if not p.exists():
        raise SegmenterError(f"LTP model {p} does not exist (train one with 'wwm train-segmenter', "
                             f"or use --segment-segmenter jieba)")
    return p, False


class LtpLegacySegmenter(Segmenter):
    """LTP's perceptron CWS model (``ltp_extension``, Rust, no torch), ``batch_predict`` in batches."""

    name = "ltp-legacy"

    def __init__(self, model: str, threads: int = 1, batch_size: int = 256) -> None:
        self.model, neural = _model_file(model)
        if neural:
            raise SegmenterError(f"{model} is a neural LTP model; use LtpNeuralSegmenter")
        self.threads = threads
        self.batch_size = batch_size

    def describe(self) -> dict:
        return {"segmenter": self.name, "model": str(self.model), "threads": self.threads}

    def _engine_key(self) -> tuple:
        return ("ltp-legacy", str(self.model))

    def _load(self):
        # rayon reads this once, when its pool starts: set it before the first batch
        os.environ["RAYON_NUM_THREADS"] = str(max(1, self.threads))
        from ltp_extension.perceptron import CWSModel

        return CWSModel.load(str(self.model))

    def _segment_chunks(self, chunks: list[str]) -> list[list[str]]:
        engine, out = self._engine(), []
        for start in range(0, len(chunks), self.batch_size):
            out.extend(engine.batch_predict(chunks[start:start + self.batch_size], parallelism=self.threads > 1))
        return out


class LtpNeuralSegmenter(Segmenter):
    """The ``ltp`` package's neural model from a local directory (optional extra ``neural``, needs torch).

    Never import it in a process that imports TensorFlow.  Chunks are cut to
    ``max_chars`` characters (the model's 512-token limit) and batched by length.
    """

    name = "ltp-neural"

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 32, max_chars: int = 500,
                 threads: int = 1) -> None:
        path, neural = _model_file(model)
        if not neural:
            raise SegmenterError(f"{model} is a legacy LTP model; use LtpLegacySegmenter")
        self.model, self.device, self.batch_size, self.max_chars = str(path), device, batch_size, max_chars
        self.threads = threads

    def describe(self) -> dict:
        return {"segmenter": self.name, "model": self.model, "device": self.device}

    def _engine_key(self) -> tuple:
        return ("ltp-neural", self.model, self.device)

    def _load(self):
        # this process imports torch: transformers (imported by ltp) must not import TensorFlow beside it,
        # which it does when both are installed (the two in one process can abort)
        os.environ["USE_TF"] = "0"
        os.environ["TRANSFORMERS_NO_TF"] = "1"
        try:
            import torch
            from ltp import LTP
        except ImportError as exc:
            raise SegmenterError("the neural LTP segmenter needs the 'neural' extra: "
                                 "pip install '.[neural]' (torch==2.13.0, ltp)") from exc
        torch.set_num_threads(max(1, self.threads))
        with contextlib.redirect_stdout(sys.stderr):      # ltp prints as it loads
            model = LTP(self.model)
        model.to(self.device)
        return model

    def _segment_chunks(self, chunks: list[str]) -> list[list[str]]:
        engine = self._engine()
        pieces = []                                  # (chunk index, piece)
        for i, chunk in enumerate(chunks):
            for start in range(0, len(chunk), self.max_chars):
                pieces.append((i, chunk[start:start + self.max_chars]))
        order = sorted(range(len(pieces)), key=lambda k: len(pieces[k][1]))
        words_of = [None] * len(pieces)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            result = engine.pipeline([pieces[k][1] for k in batch], tasks=["cws"]).cws
            for k, words in zip(batch, result):
                words_of[k] = list(words)
        out: list[list[str]] = [[] for _ in chunks]
        for (i, _), words in zip(pieces, words_of):
            out[i].extend(words)
        return out


def _private_cache_dir() -> str:
    """A directory only this user can write, for jieba's dictionary cache.

    jieba reads its cache with ``marshal.load`` from the shared temporary
    directory by default (``/tmp/jieba.cache``), where any local user could
    plant one; ours lives in ``$XDG_CACHE_HOME/wwm/jieba`` (``~/.cache``), or
    in a fresh private temporary directory when that one is not ours alone.
    """
    import tempfile

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wwm" / "jieba"
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = base.stat()
        if st.st_uid == os.getuid() and not st.st_mode & 0o022:
            return str(base)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="wwm-jieba-")


class JiebaSegmenter(Segmenter):
    """jieba in precise mode (HMM for unknown words on by default), with an optional user dictionary."""

    name = "jieba"

    def __init__(self, hmm: bool = True, user_dict: str | None = None) -> None:
        if user_dict and not Path(user_dict).exists():
            raise SegmenterError(f"jieba user dictionary {user_dict} does not exist")
        self.hmm, self.user_dict = hmm, user_dict or None

    def describe(self) -> dict:
        return {"segmenter": self.name, "hmm": self.hmm, "user_dict": self.user_dict}

    def _engine_key(self) -> tuple:
        return ("jieba", self.user_dict)

    def _load(self):
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.tmp_dir = _private_cache_dir()
        tokenizer.initialize()
        if self.user_dict:
            tokenizer.load_userdict(self.user_dict)
        return tokenizer

    def _segment_chunks(self, chunks: list[str]) -> list[list[str]]:
        engine = self._engine()
        return [engine.lcut(chunk, HMM=self.hmm) for chunk in chunks]


def make_segmenter(options: SegmentOptions) -> Segmenter:
    """The segmenter the ``segment`` options ask for."""
    if options.segmenter == "jieba":
        return JiebaSegmenter(options.hmm, options.user_dict)
    if options.segmenter != "ltp":
        raise SegmenterError(f"unknown segmenter {options.segmenter!r} (ltp or jieba)")
    if not options.model:
        raise SegmenterError("the LTP segmenter needs a model: --segment-model DIR_OR_FILE (train one with "
                             "'wwm train-segmenter GOLD --out DIR'), or use --segment-segmenter jieba")
    _, neural = _model_file(options.model)
    if neural:
        return LtpNeuralSegmenter(options.model, options.device, options.neural_batch_size,
                                  threads=options.threads)
    return LtpLegacySegmenter(options.model, options.threads, options.batch_size)
