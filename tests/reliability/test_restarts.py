"""A ``wwm run`` killed with SIGKILL at several points, then run again: nothing half-written is ever published,
and the rerun gives exactly the output of an uninterrupted run, redoing only the stages that were not done.

Every run is a real ``python -m pipeline.cli run`` subprocess on the bundled sample (Beam in-process, jieba).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.outputs import read_table
from pipeline.stages import STAGES, STAGE_TABLES

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ["--segment-segmenter", "jieba", "--vocab-size", "2000", "--shards-dupe-factor", "2",
            "--shards-shards", "3"]     # progress on (the default): its reports are leftovers to clean up too


def wwm_run(sample_inputs, output: Path, *extra: str) -> list[str]:
    inputs = [f"{spec.source}={spec.path}" for spec in sample_inputs]
    return [sys.executable, "-m", "pipeline.cli", "run", *inputs, "--output", str(output), *SETTINGS, *extra]


def run(sample_inputs, output: Path, *extra: str) -> str:
    done = subprocess.run(wwm_run(sample_inputs, output, *extra), cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def run_and_kill(sample_inputs, output: Path, when, *extra: str, timeout: float = 300) -> list[str]:
    """Start ``wwm run``; SIGKILL it as soon as ``when(output)`` is true; returns what the output directory
    held at that instant."""
    process = subprocess.Popen(wwm_run(sample_inputs, output, *extra), cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while not when(output):
            assert process.poll() is None, f"wwm run ended (rc {process.returncode}) before the kill point"
            assert time.time() < deadline, "kill point never reached"
            time.sleep(0.02)
        seen = sorted(p.name for p in output.iterdir())
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.time() + 30
        while group_alive(process.pid) and time.time() < deadline:
            time.sleep(0.2)
        seen.append(f"children left after 30 s: {group_alive(process.pid)}")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)     # the group this test started; the driver is already dead
        except ProcessLookupError:
            pass
    assert process.returncode == -signal.SIGKILL
    return seen


def group_alive(pgid: int) -> bool:
    """Whether a process of the group (the driver's children: a Spark JVM, Beam workers) is still running."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def temporary(stage: str, settle: float = 0.0):
    """Kill point: the stage's temporary output exists (the stage is running), then ``settle`` seconds more."""
    state = {}

    def when(output: Path) -> bool:
        if output.is_dir() and list(output.glob(f".tmp-{stage}-*")):
            state.setdefault("since", time.time())
            return time.time() - state["since"] >= settle
        return False
    return when


def after(seconds: float):
    started = time.time()
    return lambda output: time.time() - started >= seconds


def sort_key(table):
    return (lambda r: (r["stage"], r["file"], r["position"])) if table == "quarantined" else (lambda r: r["id"])


def stage_content(output: Path, stage: str) -> dict:
    """What a published stage holds, in a form two runs can be compared by: table rows, vocab and shard bytes."""
    directory = output / stage
    content = {table: sorted(read_table(directory / table, table).to_pylist(), key=sort_key(table))
               for table in STAGE_TABLES[stage]}
    if stage == "vocab":
        content["vocab.txt"] = (directory / "vocab.txt").read_bytes()
    if stage == "shards":
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        content["manifest.shards"] = manifest["shards"]
        content["files"] = {s["file"]: (directory / s["file"]).read_bytes() for s in manifest["shards"]}
    stats = json.loads((directory / "stats.json").read_text(encoding="utf-8"))
    content["accounting"] = stats["accounting"]
    return content


def published(output: Path) -> list[str]:
    return [stage for stage in STAGES if (output / stage).is_dir()]


def leftovers(output: Path) -> list[str]:
    return sorted(p.name for pattern in (".tmp-*", ".old-*", ".progress-*") for p in output.glob(pattern))


@pytest.fixture(scope="module")
def reference(sample_inputs, tmp_path_factory):
    output = tmp_path_factory.mktemp("uninterrupted")
    started = time.time()
    run(sample_inputs, output)
    seconds = time.time() - started
    return output, {stage: stage_content(output, stage) for stage in STAGES}, seconds


def check_published_match(output: Path, reference_content: dict) -> list[str]:
    """Every stage directory published in ``output`` is whole: identical to the uninterrupted run's."""
    stages = published(output)
    for stage in stages:
        assert stage_content(output, stage) == reference_content[stage], f"{stage} published but not whole"
    return stages


SPARK = ["--engine", "spark", "--spark-master", "local[2]", "--spark-driver-memory", "1g"]

# (name, kill point, stages certainly done before it, engine flags)
KILL_POINTS = [
    ("mid-clean", temporary("clean", 0.2), ["ingest"], []),
    ("mid-segment", temporary("segment", 0.5), ["ingest", "clean", "dedup"], []),
    ("mid-shards", temporary("shards", 0.5), ["ingest", "clean", "dedup", "segment", "vocab"], []),
    ("spark-mid-dedup", temporary("dedup", 1.0), ["ingest", "clean"], SPARK),
]


@pytest.mark.parametrize("name, when, done_before, engine", KILL_POINTS, ids=[k[0] for k in KILL_POINTS])
def test_killed_run_publishes_nothing_half_written_and_a_rerun_completes_it(
        reference, sample_inputs, tmp_path, name, when, done_before, engine):
    """Killed on Beam or Spark; the rerun is on the same engine (Spark writes the same tables as Beam)."""
    _, expected, _ = reference
    output = tmp_path / "run"
    seen = run_and_kill(sample_inputs, output, when, *engine)
    print(f"{name}: SIGKILL landed with {seen} in the output directory")
    assert seen[-1] == "children left after 30 s: False"     # a Spark JVM ends with its driver
    stages = check_published_match(output, expected)
    assert stages[:len(done_before)] == done_before
    assert leftovers(output), "the stage being written should have left its temporary directory"

    log = run(sample_inputs, output, *engine)
    for stage in stages:
        if (output / stage / "fingerprint.json").exists():
            assert f"{stage}: up to date, skipped" in log
    for stage in STAGES:
        if stage not in stages:
            assert f"{stage}: up to date" not in log and f"{stage}: " in log
    assert "recover: removed .tmp-" in log and "recover: removed .progress-" in log
    assert check_published_match(output, expected) == list(STAGES)
    assert not leftovers(output)
    again = run(sample_inputs, output, *engine)      # touching nothing redoes nothing
    assert all(f"{stage}: up to date, skipped" in again for stage in STAGES)


def test_killed_at_a_random_time_then_rerun(reference, sample_inputs, tmp_path):
    """Kill points by elapsed time, whatever stage that is: a run killed after 35% of an uninterrupted run's
    time, its rerun killed after as long again (it gets further: the done stages are skipped), then a rerun."""
    _, expected, seconds = reference
    output = tmp_path / "run"
    for attempt in range(2):
        seen = run_and_kill(sample_inputs, output, after(seconds * 0.35))
        print(f"attempt {attempt}: killed after {seconds * 0.35:.1f} s with {seen} in the output directory")
        check_published_match(output, expected)
    run(sample_inputs, output)
    assert check_published_match(output, expected) == list(STAGES)
    assert not leftovers(output)


def test_a_killed_rerun_with_new_settings_leaves_the_old_output(reference, sample_inputs, tmp_path):
    """Replacing a published stage: killed while the new shards are written, the old shards stay published
    and whole; the old settings then find everything up to date; the new ones redo the shards alone."""
    _, expected, _ = reference
    output = tmp_path / "run"
    run(sample_inputs, output)
    seen = run_and_kill(sample_inputs, output, temporary("shards", 0.5), "--shards-seed", "7")
    assert "shards" in seen and any(name.startswith(".tmp-shards-") for name in seen)
    assert check_published_match(output, expected) == list(STAGES)

    log = run(sample_inputs, output)
    assert all(f"{stage}: up to date, skipped" in log for stage in STAGES)
    assert not leftovers(output)

    log = run(sample_inputs, output, "--shards-seed", "7")
    assert all(f"{stage}: up to date, skipped" in log for stage in STAGES if stage != "shards")
    assert "shards: up to date" not in log
    new = stage_content(output, "shards")
    assert new["files"] != expected["shards"]["files"]
    assert json.loads((output / "shards" / "manifest.json").read_text())["settings"]["seed"] == 7


def test_a_second_run_on_the_same_output_is_refused_while_one_runs(reference, sample_inputs, tmp_path):
    output = tmp_path / "run"
    process = subprocess.Popen(wwm_run(sample_inputs, output), cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        when = temporary("ingest")
        deadline = time.time() + 120
        while not when(output):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.02)
        second = subprocess.run(wwm_run(sample_inputs, output), cwd=ROOT, capture_output=True, text=True, check=False,
                                timeout=120)
        assert second.returncode == 2 and "another run is writing this output directory" in second.stderr
        assert list(output.glob(".tmp-ingest-*")) or (output / "ingest").is_dir()   # the first run's work stays
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_interrupted_publication_is_restored(reference, sample_inputs, tmp_path):
    """The state a run killed between the two renames of a non-atomic publication leaves (no ``shards``, the
    old one aside as ``.old-shards-*``, a new one in ``.tmp-shards-*``): the next run puts the old one back,
    finds it up to date and removes the rest."""
    import shutil

    ref_output, expected, _ = reference
    output = tmp_path / "run"
    shutil.copytree(ref_output, output, symlinks=True)
    os.replace(output / "shards", output / ".old-shards-0123456789ab")
    (output / ".tmp-shards-ba9876543210" / "rejected").mkdir(parents=True)
    (output / ".tmp-shards-ba9876543210" / "part-00000-of-00003.tfrecord").write_bytes(b"half")
    log = run(sample_inputs, output)
    assert "recover: restored" in log and "recover: removed .tmp-shards-ba9876543210" in log
    assert all(f"{stage}: up to date, skipped" in log for stage in STAGES)
    assert check_published_match(output, expected) == list(STAGES)
    assert not leftovers(output)


def test_what_is_redone_after_a_change(sample_inputs, tmp_path):
    """A setting of one stage redoes it and the stages after it; a touched input file redoes everything (its
    mtime is in ingest's fingerprint); ``--force`` redoes everything; each time the rest is skipped."""
    import shutil

    from pipeline.config import InputSpec

    inputs = []
    for spec in sample_inputs:
        copy = tmp_path / "inputs" / Path(spec.path).name
        shutil.copytree(spec.path, copy)
        inputs.append(InputSpec(str(copy), spec.format, spec.source))
    output = tmp_path / "run"
    run(inputs, output)

    def redone(log: str) -> list[str]:
        skipped = [stage for stage in STAGES if f"{stage}: up to date, skipped" in log]
        return [stage for stage in STAGES if stage not in skipped]

    assert redone(run(inputs, output, "--dedup-threshold", "0.7")) == ["dedup", "segment", "vocab", "shards"]
    touched = next(p for p in (tmp_path / "inputs").rglob("*") if p.is_file())
    os.utime(touched, ns=(time.time_ns(), time.time_ns()))
    assert redone(run(inputs, output, "--dedup-threshold", "0.7")) == list(STAGES)
    assert redone(run(inputs, output, "--dedup-threshold", "0.7", "--force")) == list(STAGES)
    fingerprint = json.loads((output / "dedup" / "fingerprint.json").read_text(encoding="utf-8"))
    assert fingerprint["made_from"]["settings"]["threshold"] == 0.7
    assert fingerprint["made_from"]["inputs"]["clean"] == json.loads(
        (output / "clean" / "fingerprint.json").read_text(encoding="utf-8"))["digest"]
