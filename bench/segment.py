"""Benchmark: word segmentation speed, each segmenter alone and inside each engine, side by side.

Input: the sentences of the shared corpora (../shared/data/corpora, cleaned by
the clean stage's core), repeated to reach --mb of text.  The LTP legacy model
is trained here on the first 1,700 sentences of the shared SIGHAN PKU gold
(nothing is downloaded); its size and so its speed differ from the official
32 MB model.

- alone: one process, one thread (``RAYON_NUM_THREADS=1``), the segmenter's
  ``segment`` over batches of sentences;
- in an engine: ``wwm segment`` on a documents table holding the same text,
  Beam in-process (one core) and Spark ``local[2]``; segmented characters per
  second from the stage's counters and its time (engine start-up excluded).

Writes bench/results/segment.json.  Usage: python bench/segment.py [--mb 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest_clean import CORPORA, SHARED, run_measured, write_results  # noqa: E402

from pipeline.clean.stage import Cleaner  # noqa: E402
from pipeline.testing.dedup_evaluation import shared_documents  # noqa: E402
from pipeline.outputs import TableWriter  # noqa: E402
from pipeline.records import Document  # noqa: E402


def alone(kind: str, model: str, sentences: list[str], nbytes: int) -> dict:
    """Child process: one segmenter, one thread, over the sentences; prints JSON."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    from pipeline.segment.segmenters import JiebaSegmenter, LtpLegacySegmenter

    segmenter = LtpLegacySegmenter(model) if kind == "ltp" else JiebaSegmenter()
    segmenter.segment(sentences[:100])                      # load the model
    started = time.perf_counter()
    for start in range(0, len(sentences), 256):
        segmenter.segment(sentences[start:start + 256])
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "mb_per_s_per_core": round(nbytes / 1e6 / seconds, 3)}


PKU_MODEL = ("LTP legacy trained here on the first 1,700 PKU gold sentences (the official model is larger and "
             "slower: its published speed is 1.6 MB/s per thread)")


def train_pku_model(model: Path, env: dict) -> Path:
    """An LTP legacy model trained on the first 1,700 sentences of the shared PKU gold (nothing downloaded)."""
    gold = SHARED / "segmentation" / "pku_test_gold.utf8"
    subprocess.run([sys.executable, "-m", "pipeline.cli", "train-segmenter", str(gold), "--out", str(model),
                    "--sentences", ":1700"], check=True, env=env, capture_output=True)
    return model


def fresh_workdir(path: str) -> tuple[Path, dict, Path]:
    """An emptied work directory, the children's environment, and the PKU-trained LTP model inside it."""
    workdir = Path(path)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return workdir, env, train_pku_model(workdir / "ltp-pku", env)


def corpus(mb: int) -> tuple[list[Document], list[str]]:
    cleaner = Cleaner()
    docs = [r for r in (cleaner.process(d) for d in shared_documents(
        [SHARED / "corpora" / n for n in CORPORA if (SHARED / "corpora" / n).exists()])) if isinstance(r, Document)]
    if not docs:
        raise SystemExit(f"shared corpora not found under {SHARED}")
    one = sum(len(s.encode("utf-8")) for d in docs for s in d.sentences)
    copies = max(1, -(-mb * 1_000_000 // one))
    out = [dataclasses.replace(d, id=f"copy{k:03d}-{d.id}", source=f"copy{k:03d}") for k in range(copies) for d in docs]
    return out, [s for d in out for s in d.sentences]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=20, help="MB of sentence text")
    parser.add_argument("--engines", nargs="*", default=["beam", "spark"], choices=["beam", "spark"])
    parser.add_argument("--spark-cores", type=int, nargs="+", default=[1, 2], help="Spark local[N] runs")
    parser.add_argument("--segmenters", nargs="+", default=["ltp", "jieba"], choices=["ltp", "jieba"])
    parser.add_argument("--workdir", default=str(ROOT / "build" / "bench-segment"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "segment.json"))
    parser.add_argument("--alone", nargs=2, metavar=("KIND", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    docs, sentences = corpus(args.mb)
    nbytes = sum(len(s.encode("utf-8")) for s in sentences)
    if args.alone:
        print(json.dumps(alone(args.alone[0], args.alone[1], sentences, nbytes)))
        return

    workdir, env, model = fresh_workdir(args.workdir)
    table = workdir / "documents"
    writer = TableWriter(table, "documents", "part-00000", row_group_bytes=4 * 1024 * 1024)
    for d in docs:
        writer.add(d)
    writer.close()

    results = {"benchmark": "word segmentation", "machine": {"cores": os.cpu_count(),
                                                              "python": platform.python_version()},
               "input": f"sentences of the shared corpora ({', '.join(CORPORA)}), cleaned, repeated to "
                        f"{nbytes / 1e6:.1f} MB ({len(sentences):,} sentences)",
               "ltp_model": PKU_MODEL,
               "command": f"python bench/segment.py --mb {args.mb}", "runs": []}
    for kind in args.segmenters:
        _, _, out = run_measured([sys.executable, __file__, "--mb", str(args.mb), "--alone", kind, str(model)], env)
        solo = json.loads(out.strip().splitlines()[-1])
        entry = {"segmenter": kind, "alone": solo}
        runs = [("beam", 1)] if "beam" in args.engines else []
        runs += [("spark", n) for n in args.spark_cores] if "spark" in args.engines else []
        for engine, cores in runs:
            name = engine if engine == "beam" else f"spark local[{cores}]"
            output = workdir / f"out-{engine}-{cores}-{kind}"
            cmd = [sys.executable, "-m", "pipeline.cli", "segment", "--input", str(table), "--engine", engine,
                   "--output", str(output), "--no-progress", "--segment-segmenter", kind]
            if kind == "ltp":
                cmd += ["--segment-model", str(model)]
            if engine == "spark":
                cmd += ["--spark-master", f"local[{cores}]"]
            wall, peak, _ = run_measured(cmd, env)
            stats = json.loads((output / "segment" / "stats.json").read_text(encoding="utf-8"))
            seconds = stats["seconds"]
            per_core = nbytes / 1e6 / seconds / cores
            entry[name] = {"seconds": seconds, "engine_startup_seconds": stats["engine_startup_seconds"],
                             "cores": cores, "mb_per_s_per_core": round(per_core, 3),
                             "share_of_alone_speed": round(per_core / solo["mb_per_s_per_core"], 2),
                             "peak_rss_mb": round(peak / 2**20, 1), "accounting": stats["accounting"]}
            shutil.rmtree(output, ignore_errors=True)
        results["runs"].append(entry)
        print(json.dumps(entry), flush=True)
    results["target"] = {"inside_engine_share_of_alone": ">= 0.8",
                         "share": {f"{r['segmenter']} {k}": v["share_of_alone_speed"] for r in results["runs"]
                                   for k, v in r.items() if isinstance(v, dict) and "share_of_alone_speed" in v}}
    results["target"]["met"] = all(v >= 0.8 for v in results["target"]["share"].values())
    results["note"] = ("per core = MB / stage seconds / cores given to the engine; with local[2] on this 2-core "
                       "machine the Spark JVM and driver share the cores with the two Python workers")
    shutil.rmtree(workdir, ignore_errors=True)
    write_results(args.out, results)


if __name__ == "__main__":
    main()
