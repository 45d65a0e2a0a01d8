"""Benchmark: ingest + clean + exact dedup on each engine, with peak memory.

Each stage runs as its own ``wwm <stage>`` child process, so peak memory is
per stage.  Input: the shared real corpora (../shared/data/corpora: wiki2019zh, wikiextractor,
ChineseWebText, CMRC 2018, DRCD; about 7 MB) replicated into N copies (each copy
its own source, so ids stay unique and every copy after the first is an exact
duplicate of the first) to reach each requested size.  A sampler sums the RSS of that process and all
its descendants (the Spark JVM and Python workers included) every 0.1 s.

Side by side, a baseline runs the same core functions in a plain Python loop
(no engine, no Parquet), so engine figures can be quoted as ratios against it.

Writes bench/results/ingest_clean.json.  Usage:
    python bench/ingest_clean.py [--sizes 50 100] [--engines beam spark]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WWM_SHARED_DATA", ROOT.parent / "shared" / "data"))
CORPORA = ["wiki2019zh_sample.jsonl", "wikiextractor_doc_sample.txt", "chinesewebtext_sample.jsonl",
           "cmrc2018_dev.json", "drcd_dev_traditional.json"]
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_stats() -> dict[int, list[bytes]]:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, ...), for every process."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
        stats[int(entry)] = fields
    return stats


def descendants(stats: dict[int, list[bytes]], root: int, include_root: bool = True) -> list[int]:
    """``root`` (if asked) and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    out, stack = [], [root] if include_root else list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid in stats:
            out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    stats = proc_stats()
    return sum(int(stats[p][21]) * PAGE for p in descendants(stats, pid))


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak tree RSS bytes, output) of a command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return wall, peak, out


def write_results(path: str, results: dict) -> None:
    """Write a benchmark's results as indented JSON and say where."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def build_corpus(workdir: Path, size_mb: int) -> tuple[Path, int, int]:
    """Replicate the shared corpora (symlinks) into copies until size_mb; returns (config, bytes, copies)."""
    files = [SHARED / "corpora" / name for name in CORPORA if (SHARED / "corpora" / name).exists()]
    if not files:
        raise SystemExit(f"shared corpora not found under {SHARED}; nothing to benchmark")
    one = sum(f.stat().st_size for f in files)
    copies = -(-size_mb * 1_000_000 // one)
    corpus = workdir / f"corpus-{size_mb}mb"
    shutil.rmtree(corpus, ignore_errors=True)
    inputs = []
    for k in range(copies):
        copy_dir = corpus / f"copy{k:03d}"
        copy_dir.mkdir(parents=True)
        for f in files:
            (copy_dir / f.name).symlink_to(f)
        inputs.append({"path": str(copy_dir), "source": f"copy{k:03d}"})
    config = corpus / "inputs.json"
    config.write_text(json.dumps({"inputs": inputs}), encoding="utf-8")  # JSON is YAML
    return config, one * copies, copies


def baseline(config_path: str) -> None:
    """Child process: the core functions over the corpus in a plain loop; prints JSON timings."""
    sys.path.insert(0, str(ROOT))
    from pipeline.clean.stage import Cleaner
    from pipeline.config import load
    from pipeline.dedup.exact import ExactKey
    from pipeline.ingest.files import expand
    from pipeline.ingest.readers import read_file
    from pipeline.records import Document

    config = load(config_path)
    cleaner, key = Cleaner(config.clean), ExactKey(config.dedup.key_convert)
    t0 = time.perf_counter()
    docs = [r for spec in config.input_specs() for f in expand(spec.path, spec.source, spec.format)
            for r in read_file(f) if isinstance(r, Document)]
    t1 = time.perf_counter()
    kept = [r for r in (cleaner.process(d) for d in docs) if isinstance(r, Document)]
    t2 = time.perf_counter()
    keys = {}
    for d in kept:
        keys.setdefault(key(d), d.id)
    t3 = time.perf_counter()
    print(json.dumps({"ingest": t1 - t0, "clean": t2 - t1, "dedup": t3 - t2, "documents": len(docs),
                      "kept": len(keys)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100], help="input sizes in MB")
    parser.add_argument("--engines", nargs="+", default=["beam", "spark"], choices=["beam", "spark"])
    parser.add_argument("--spark-cores", type=int, default=2, help="Spark local[N]")
    parser.add_argument("--workdir", default=str(ROOT / "build" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest_clean.json"))
    parser.add_argument("--baseline-run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_run:
        baseline(args.baseline_run)
        return

    workdir = Path(args.workdir)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    results = {
        "benchmark": "ingest + clean + dedup (the engines' dedup stage runs exact then near dedup; the "
                     "baseline's dedup column is exact keys only)",
        "input": "shared corpora (wiki2019zh, wikiextractor, ChineseWebText, CMRC 2018, DRCD) replicated: "
                 "copy k is source 'copyK'; copies after the first are exact duplicates of it",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join([Path(sys.executable).name, "bench/ingest_clean.py", "--sizes",
                             *map(str, args.sizes), "--engines", *args.engines]),
        "runs": [],
    }
    for size in args.sizes:
        config, nbytes, copies = build_corpus(workdir, size)
        mb = nbytes / 1e6
        wall, peak, out = run_measured([sys.executable, __file__, "--baseline-run", str(config)], env)
        base = json.loads(out.strip().splitlines()[-1])
        base_ic = base["ingest"] + base["clean"]
        results["runs"].append({
            "engine": "baseline (core functions, plain loop, 1 core)", "input_mb": round(mb, 1), "copies": copies,
            "cores": 1, "seconds": {k: round(base[k], 2) for k in ("ingest", "clean", "dedup")},
            "ingest_clean_mb_per_s_per_core": round(mb / base_ic, 2),
            "all_three_mb_per_s_per_core": round(mb / (base_ic + base["dedup"]), 2),
            "peak_rss_mb": round(peak / 2**20, 1),
        })
        print(json.dumps(results["runs"][-1]), flush=True)
        for engine in args.engines:
            output = workdir / f"out-{engine}-{size}mb"
            shutil.rmtree(output, ignore_errors=True)
            common = ["--engine", engine, "--output", str(output), "--no-progress"]
            cores = 1
            if engine == "spark":
                common += ["--spark-master", f"local[{args.spark_cores}]", "--spark-driver-memory", "4g"]
                cores = args.spark_cores
            secs, walls, peaks, stats, startup = {}, {}, {}, {}, {}
            for stage in ("ingest", "clean", "dedup"):
                cmd = [sys.executable, "-m", "pipeline.cli", stage, *common]
                if stage == "ingest":
                    cmd += ["--config", str(config)]
                wall, peak, out = run_measured(cmd, env)
                stats[stage] = json.loads((output / stage / "stats.json").read_text(encoding="utf-8"))
                secs[stage] = stats[stage]["seconds"]
                startup[stage] = stats[stage]["engine_startup_seconds"]
                walls[stage] = round(wall, 2)
                peaks[stage] = round(peak / 2**20, 1)
            ic = secs["ingest"] + secs["clean"]
            entry = {
                "engine": engine if engine == "spark" else "beam (FnApiRunner, in-process)",
                "input_mb": round(mb, 1), "copies": copies, "cores": cores,
                "seconds": secs, "engine_startup_seconds": startup, "wall_seconds_with_startup": walls,
                "ingest_clean_mb_per_s_per_core": round(mb / ic / cores, 2),
                "all_three_mb_per_s_per_core": round(mb / sum(secs.values()) / cores, 2),
                "ratio_to_baseline_ingest_clean": round(base_ic / ic, 2),
                "peak_rss_mb": peaks,
                "accounting": {s: stats[s]["accounting"] for s in stats},
            }
            results["runs"].append(entry)
            print(json.dumps(entry), flush=True)
    beam = [r for r in results["runs"] if r["engine"].startswith("beam")]
    if beam:
        results["target"] = {
            "ingest_clean_mb_per_s_per_core_on_beam": ">= 5",
            "measured": [r["ingest_clean_mb_per_s_per_core"] for r in beam],
            "met": all(r["ingest_clean_mb_per_s_per_core"] >= 5 for r in beam),
            "peak_rss_mb_by_input_mb": {r["input_mb"]: r["peak_rss_mb"] for r in beam},
        }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
