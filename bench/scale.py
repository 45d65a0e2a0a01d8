"""Benchmark: every stage at corpus scale (100 MB and 1 GB of raw input), time, memory and disk per stage.

Input (built once per size under the work directory and reused while its
parameters match): the shared corpora (../shared/data/corpora) replicated into
copies, copy k with every CJK ideograph moved k*97 places along U+4E00-U+9FFF
(as bench/end_to_end.py does, so copies are distinct documents), plus a
realistic duplicate share spread through the whole input: in every copy after
the first, a ``dupes.jsonl`` file holds exact copies of about 5% of the copy's
documents and near copies of another 5% (each taken from a random earlier copy;
a near copy drops one sentence in ten, at least one, and changes two
characters), so dedup meets duplicates across the whole input, not only at one
end.

Each stage runs as its own ``wwm <stage>`` child process (the same stages and
order ``wwm run`` runs), so every figure is per stage: wall time, MB of raw
input per second per core, peak RSS of the whole process tree (Spark's JVM and
Python workers included), the driver's own peak RSS (the ``wwm`` process
alone), and the disk the output directory holds after the stage (sampled during
the stage too, to catch spill and temporary files).  The ratios 1 GB / 100 MB
of every stage's peak are the memory-growth figures.

Writes bench/results/scale.json.  Usage:
    python bench/scale.py [--sizes 100 1000] [--engines beam spark]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from end_to_end import shifted  # noqa: E402
from ingest_clean import CORPORA, SHARED, proc_stats, tree_rss, write_results  # noqa: E402
from segment import train_pku_model  # noqa: E402

STAGES = ["ingest", "clean", "dedup", "segment", "vocab", "shards"]
EXACT_SHARE, NEAR_SHARE = 0.05, 0.05
CORPUS_VERSION = 1          # bump when the way the input is built changes, so an old one is rebuilt
TARGETS = {"beam_stage_peak_mb": 2.5 * 1024, "spark_stage_peak_mb": 3.5 * 1024, "peak_growth": 1.3,
           "beam_mb_per_s_per_core": 1.0, "driver_peak_mb": 1024}


def shared_texts() -> list[str]:
    """The texts of the documents of the shared corpora, as the pipeline's own readers give them."""
    from pipeline.ingest.files import expand
    from pipeline.ingest.readers import read_file
    from pipeline.records import Document

    paths = [SHARED / "corpora" / name for name in CORPORA if (SHARED / "corpora" / name).exists()]
    if not paths:
        raise SystemExit(f"shared corpora not found under {SHARED}; nothing to benchmark")
    return [r.text for p in paths for f in expand(str(p)) for r in read_file(f) if isinstance(r, Document)]


def near_copy(text: str, rng: random.Random) -> str:
    """One sentence in ten dropped (at least one where there are two or more) and two characters changed."""
    sentences = [s for s in text.replace("。", "。\n").split("\n") if s]
    if len(sentences) >= 2:
        drop = set(rng.sample(range(len(sentences)), max(1, len(sentences) // 10)))
        sentences = [s for i, s in enumerate(sentences) if i not in drop]
    chars = list("".join(sentences))
    for _ in range(2):
        if chars:
            i = rng.randrange(len(chars))
            if "\u4e00" <= chars[i] <= "\u9fff":
                chars[i] = chr(0x4E00 + (ord(chars[i]) - 0x4E00 + 1) % (0x9FFF - 0x4E00 + 1))
    return "".join(chars)


def build_corpus(workdir: Path, size_mb: int) -> dict:
    """Distinct shifted copies with ~5% exact and ~5% near duplicates, until size_mb; reused when present."""
    corpus = workdir / f"corpus-{size_mb}mb"
    marker = corpus / "corpus.json"
    params = {"version": CORPUS_VERSION, "size_mb": size_mb, "exact_share": EXACT_SHARE, "near_share": NEAR_SHARE}
    if marker.exists():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("params") == params:
            return info
    shutil.rmtree(corpus, ignore_errors=True)
    files = [SHARED / "corpora" / name for name in CORPORA if (SHARED / "corpora" / name).exists()]
    raw = {f.name: f.read_text(encoding="utf-8") for f in files}
    texts = shared_texts()
    per_copy = sum(len(t.encode("utf-8")) for t in raw.values())
    inputs, total, exact, near, copies = [], 0, 0, 0, 0
    while total < size_mb * 1_000_000:
        k = copies
        copy_dir = corpus / f"copy{k:04d}"
        copy_dir.mkdir(parents=True)
        for name, text in raw.items():
            data = shifted(text, k).encode("utf-8")
            (copy_dir / name).write_bytes(data)
            total += len(data)
        if k:
            rng = random.Random(k)
            picked = rng.sample(range(len(texts)), int(len(texts) * (EXACT_SHARE + NEAR_SHARE)))
            n_exact = int(len(texts) * EXACT_SHARE)
            with open(copy_dir / "dupes.jsonl", "w", encoding="utf-8") as out:
                for j, index in enumerate(picked):
                    text = shifted(texts[index], rng.randrange(k))
                    if j >= n_exact:
                        text = near_copy(text, rng)
                    line = json.dumps({"id": f"dupe{k:04d}-{j}", "text": text}, ensure_ascii=False) + "\n"
                    out.write(line)
                    total += len(line.encode("utf-8"))
            exact += n_exact
            near += len(picked) - n_exact
        inputs.append({"path": str(copy_dir), "source": f"copy{k:04d}"})
        copies += 1
    config = corpus / "inputs.json"
    config.write_text(json.dumps({"inputs": inputs}), encoding="utf-8")  # JSON is YAML
    info = {"params": params, "config": str(config), "bytes": total, "copies": copies,
            "documents_per_copy": len(texts), "exact_copies": exact, "near_copies": near,
            "per_copy_bytes": per_copy}
    marker.write_text(json.dumps(info), encoding="utf-8")
    return info


def disk_bytes(path: Path) -> int:
    """Bytes of the files under path (0 when absent); files vanishing during the walk are skipped."""
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def run_stage(cmd: list[str], env: dict, output: Path) -> dict:
    """Run one stage's command: wall seconds, tree and driver peak RSS, peak disk under the output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peaks = {"tree": 0, "driver": 0, "disk": 0}
    done = threading.Event()

    def sample():
        ticks = 0
        while not done.is_set():
            peaks["tree"] = max(peaks["tree"], tree_rss(proc.pid))
            stat = proc_stats().get(proc.pid)
            if stat:
                peaks["driver"] = max(peaks["driver"], int(stat[21]) * os.sysconf("SC_PAGE_SIZE"))
            if ticks % 20 == 0:      # the disk every 2 s: a walk of a large tree costs more than /proc
                peaks["disk"] = max(peaks["disk"], disk_bytes(output))
            ticks += 1
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    after = disk_bytes(output)
    return {"wall_seconds": round(wall, 1), "peak_rss_mb": round(peaks["tree"] / 2**20, 1),
            "driver_peak_rss_mb": round(peaks["driver"] / 2**20, 1),
            "disk_mb_after": round(after / 1e6, 1), "disk_mb_peak": round(max(peaks["disk"], after) / 1e6, 1)}


def run_engine(engine: str, cores: int, info: dict, model: Path, env: dict, workdir: Path) -> dict:
    output = workdir / f"out-{engine}-{info['params']['size_mb']}mb"
    shutil.rmtree(output, ignore_errors=True)
    mb = info["bytes"] / 1e6
    common = ["--engine", engine, "--output", str(output), "--no-progress"]
    if engine == "spark":
        common += ["--spark-master", f"local[{cores}]", "--spark-driver-memory", "2g"]
    stages = {}
    for stage in STAGES:
        cmd = [sys.executable, "-m", "pipeline.cli", stage, *common]
        if stage == "ingest":
            cmd += ["--config", info["config"]]
        if stage == "segment":
            cmd += ["--segment-model", str(model)]
        figures = run_stage(cmd, env, output)
        figures["mb_per_s_per_core"] = round(mb / figures["wall_seconds"] / cores, 3)
        stages[stage] = figures
        print(json.dumps({"engine": engine, "mb": round(mb), "stage": stage, **figures}), flush=True)
    wall = sum(s["wall_seconds"] for s in stages.values())
    run = {"engine": "beam (FnApiRunner, in-process, one worker)" if engine == "beam" else f"spark local[{cores}]",
           "cores": cores, "input_mb": round(mb, 1), "stages": stages, "wall_seconds": round(wall, 1),
           "mb_per_s_per_core": round(mb / wall / cores, 3),
           "peak_rss_mb": max(s["peak_rss_mb"] for s in stages.values()),
           "driver_peak_rss_mb": max(s["driver_peak_rss_mb"] for s in stages.values()),
           "disk_mb_peak": max(s["disk_mb_peak"] for s in stages.values())}
    stats = output / "dedup" / "stats.json"
    if stats.exists():
        run["dedup_stats"] = json.loads(stats.read_text(encoding="utf-8")).get("accounting")
    shutil.rmtree(output, ignore_errors=True)
    return run


def ratios(runs: list[dict]) -> list[dict]:
    """Per engine, largest size over smallest: each stage's peak RSS, driver peak and seconds."""
    out = []
    for engine in sorted({r["engine"] for r in runs}):
        mine = sorted((r for r in runs if r["engine"] == engine), key=lambda r: r["input_mb"])
        if len(mine) < 2:
            continue
        small, big = mine[0], mine[-1]
        out.append({"engine": engine, "sizes_mb": [small["input_mb"], big["input_mb"]],
                    "input_ratio": round(big["input_mb"] / small["input_mb"], 2),
                    "peak_rss_ratio": {s: round(big["stages"][s]["peak_rss_mb"] / small["stages"][s]["peak_rss_mb"], 2)
                                       for s in STAGES},
                    "driver_peak_ratio": {s: round(big["stages"][s]["driver_peak_rss_mb"]
                                                   / max(small["stages"][s]["driver_peak_rss_mb"], 1), 2)
                                          for s in STAGES},
                    "seconds_ratio": {s: round(big["stages"][s]["wall_seconds"] / small["stages"][s]["wall_seconds"], 2)
                                      for s in STAGES}})
    return out


def targets(runs: list[dict], growth: list[dict]) -> dict:
    met = {}
    for r in runs:
        limit = TARGETS["beam_stage_peak_mb"] if r["engine"].startswith("beam") else TARGETS["spark_stage_peak_mb"]
        key = f"{r['engine']} at {r['input_mb']} MB"
        met[key] = {"stage_peak_under_limit": r["peak_rss_mb"] <= limit,
                    "driver_peak_under_1gb": r["driver_peak_rss_mb"] <= TARGETS["driver_peak_mb"]}
        if r["engine"].startswith("beam"):
            met[key]["mb_per_s_per_core_at_least_1"] = r["mb_per_s_per_core"] >= TARGETS["beam_mb_per_s_per_core"]
    for g in growth:
        met[f"{g['engine']} growth"] = {"every_stage_peak_within_1.3x": all(
            v <= TARGETS["peak_growth"] for v in g["peak_rss_ratio"].values())}
    return {"limits": TARGETS, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="MB of raw input")
    parser.add_argument("--engines", nargs="+", default=["beam", "spark"], choices=["beam", "spark"])
    parser.add_argument("--spark-cores", type=int, default=2, help="Spark local[N] (default 2)")
    parser.add_argument("--workdir", default=str(ROOT / "build" / "bench-scale"),
                        help="where the inputs are built (kept and reused) and the runs write")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    args = parser.parse_args()

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    model = workdir / "ltp-pku"
    if not (model / "config.json").exists():
        model = train_pku_model(model, env)
    results = {"benchmark": "scale: every stage of wwm run as its own process, at several input sizes",
               "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
               "command": f"python bench/scale.py --sizes {' '.join(map(str, args.sizes))} "
                          f"--engines {' '.join(args.engines)} --spark-cores {args.spark_cores}",
               "inputs": [], "runs": []}
    for size in args.sizes:
        info = build_corpus(workdir, size)
        results["inputs"].append({k: v for k, v in info.items() if k != "config"} | {
            "what": f"shared corpora ({', '.join(CORPORA)}) in {info['copies']} shifted copies (copy k's CJK "
                    f"ideographs moved k*97 places), with {info['exact_copies']} exact and {info['near_copies']} "
                    "near copies of earlier copies' documents spread through the copies"})
        for engine in args.engines:
            cores = 1 if engine == "beam" else args.spark_cores
            results["runs"].append(run_engine(engine, cores, info, model, env, workdir))
            write_results(args.out, results)     # partial results survive a later failure
    results["ratios"] = ratios(results["runs"])
    results["targets"] = targets(results["runs"], results["ratios"])
    results["note"] = ("each stage is its own `wwm <stage>` process; peak RSS is the sum over the process tree "
                       "(JVM and Python workers included) sampled every 0.1 s; the driver peak is the `wwm` "
                       "process alone; per core = MB of raw input / stage wall seconds / cores given to the engine")
    write_results(args.out, results)


if __name__ == "__main__":
    main()
