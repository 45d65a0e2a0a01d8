"""Benchmark: the neural LTP segmenter on CPU, with a random-weight model of LTP's ``tiny`` shape.

No neural LTP model can be downloaded here, so the model is built by
``pipeline.testing.tiny_neural.build_random_model`` (ELECTRA-small shape: hidden
256, 12 layers, 4 heads, intermediate 1024; cws head only).  Its weights are
random: the words are meaningless, but the arithmetic per token, and so the
speed, is that of a real ``tiny`` model of this shape.

Input: the lines of ``Document.text`` of the shared corpora
(``../shared/data/corpora/*.json*``, read with ``pipeline.ingest``), whole
documents taken evenly across the corpora up to ``--mb`` MB (the neural model
is slow on CPU: the whole 3.8 MB would take minutes per setting).  Each
document's lines go to ``LtpNeuralSegmenter.segment`` in one call, as the
segment stage does.  Runs: torch intra-op threads x batch size, default
``1x32``, ``<cores>x32`` and ``<cores>x256`` (256 is what ``make_segmenter``
passes from the ``segment.batch_size`` default).

Needs torch and ltp (the ``neural`` extra, with transformers<5); never run it
in a process that imports TensorFlow.  Writes bench/results/segment_neural.json.
Usage: python bench/neural_ltp.py [--mb 0.25] [--runs 1x32,2x32]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.counters import Counters  # noqa: E402
from pipeline.ingest.files import expand  # noqa: E402
from pipeline.ingest.readers import read_file  # noqa: E402
from pipeline.records import Document  # noqa: E402

SHARED = Path(os.environ.get("WWM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def documents(pattern: str) -> list[tuple[str, list[str]]]:
    """(corpus file name, non-empty lines of the document's text) for every document of the corpora."""
    out = []
    for path in sorted(glob.glob(pattern)):
        for file in expand(path):
            for record in read_file(file):
                if isinstance(record, Document):
                    lines = [s for s in record.text.split("\n") if s]
                    if lines:
                        out.append((Path(path).name, lines))
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sample(docs: list[tuple[str, list[str]]], mb: float) -> list[tuple[str, list[str]]]:
    """Every k-th document, k chosen so that the sample is about ``mb`` MB, spread over all corpora."""
    total = sum(len(s.encode("utf-8")) for _, lines in docs for s in lines)
    step = max(1, int(total // (mb * 1e6)))
    taken, size = [], 0
    for name, lines in docs[::step]:
        if size >= mb * 1e6:
            break
        taken.append((name, lines))
        size += sum(len(s.encode("utf-8")) for s in lines)
    return taken


def run(model: str, docs: list[tuple[str, list[str]]], threads: int, batch_size: int) -> dict:
    import torch

    from pipeline.segment.segmenters import LtpNeuralSegmenter

    torch.set_num_threads(threads)
    segmenter = LtpNeuralSegmenter(model, "cpu", batch_size=batch_size)
    started = time.perf_counter()
    segmenter.segment(["预热一下模型。", "加载模型"])              # load the model outside the timing
    load_seconds = time.perf_counter() - started
    count = Counters()
    words = 0
    started = time.perf_counter()
    for _, lines in docs:
        result = segmenter.segment(lines, count)
        words += sum(len(w) for w in result)
    seconds = time.perf_counter() - started
    sentences = sum(len(lines) for _, lines in docs)
    nbytes = sum(len(s.encode("utf-8")) for _, lines in docs for s in lines)
    chars = sum(len(s) for _, lines in docs for s in lines)
    return {"torch_threads": threads, "batch_size": batch_size, "max_chars": segmenter.max_chars,
            "seconds": round(seconds, 2), "model_load_seconds": round(load_seconds, 2),
            "mb_per_s": round(nbytes / 1e6 / seconds, 4), "sentences_per_s": round(sentences / seconds, 1),
            "chars_per_s": round(chars / seconds), "words": words,
            "repaired_chunks": count.as_dict().get("segment.repaired", 0)}


def main() -> None:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=0.25, help="MB of sentence text to segment (whole documents)")
    parser.add_argument("--runs", default=f"1x32,{cores}x32,{cores}x256", help="THREADSxBATCH,... settings")
    parser.add_argument("--corpora", default=str(SHARED / "corpora" / "*.json*"))
    parser.add_argument("--model-dir", default=str(ROOT / "build" / "bench-neural" / "ltp-tiny-random"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "segment_neural.json"))
    args = parser.parse_args()

    all_docs = documents(args.corpora)
    if not all_docs:
        raise SystemExit(f"no corpora match {args.corpora}")
    docs = sample(all_docs, args.mb)
    all_bytes = sum(len(s.encode("utf-8")) for _, lines in all_docs for s in lines)
    nbytes = sum(len(s.encode("utf-8")) for _, lines in docs for s in lines)
    sentences = sum(len(lines) for _, lines in docs)

    from importlib.metadata import version

    import torch

    from pipeline.testing.tiny_neural import TINY_SHAPE, build_random_model

    model = str(build_random_model(args.model_dir, seed=0))
    results = {
        "benchmark": "word segmentation, neural LTP (LtpNeuralSegmenter) on CPU",
        "machine": {"cores": cores, "cpu": cpu_model(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "transformers": version("transformers"), "ltp": version("ltp"),
                    "ltp_core": version("ltp-core")},
        "model": {"shape": "LTP tiny (ELECTRA-small discriminator shape), cws head only", **TINY_SHAPE,
                  "weights": "RANDOM (seed 0), built by pipeline.testing.tiny_neural: the words are meaningless; "
                             "the speed is that of a model of this shape"},
        "input": {"corpora": sorted({name for name, _ in all_docs}),
                  "available": f"{all_bytes / 1e6:.2f} MB in {len(all_docs):,} documents",
                  "used": f"{nbytes / 1e6:.3f} MB, {sentences:,} lines (Document.text split on newlines) "
                          f"in {len(docs):,} documents: every k-th document across the corpora, limited to "
                          f"--mb {args.mb} to keep the run short",
                  "calls": "one segment() call per document, as the segment stage makes"},
        "command": f"python bench/neural_ltp.py --mb {args.mb} --runs {args.runs}",
        "runs": [],
    }
    for setting in args.runs.split(","):
        threads, batch = (int(x) for x in setting.lower().split("x"))
        entry = run(model, docs, threads, batch)
        print(json.dumps(entry), file=sys.stderr)
        results["runs"].append(entry)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
