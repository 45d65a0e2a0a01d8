"""What ``wwm run`` must not do to what surrounds it: replace a user's folder, read its own output back as
input, miss an input edited in place (with ``--up-to-date content``), or leave Beam's temporary directories
in the system's temporary directory when it is killed.  Real runs on the Beam runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import make_config
from pipeline import guard
from pipeline.config import InputSpec
from pipeline.fingerprint import recover
from pipeline.ingest.files import expand
from pipeline.outputs import read_table, table_rows
from pipeline.stages import run_all, run_stage

ROOT = Path(__file__).resolve().parents[1]
TEXT = "这是第一篇文章的第一句话，写得足够长。\n这是第一篇文章的第二句话，也写得足够长。\n"


def corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text(TEXT, encoding="utf-8")
    (folder / "b.txt").write_text(TEXT.replace("第一篇", "第二篇"), encoding="utf-8")
    return folder


def lines_of(log: list[str], word: str) -> list[str]:
    return [line for line in log if word in line]


def test_run_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    inputs = corpus(tmp_path / "in")
    out = tmp_path / "out"
    own = out / "shards"
    own.mkdir(parents=True)
    (own / "notes.txt").write_text("my own notes")
    config = make_config(out, [InputSpec(str(inputs), "auto", None)], segment={"segmenter": "jieba"})
    with pytest.raises(guard.ForeignOutput) as refused:
        run_all(config, log=lambda *_: None)
    assert f"{own} exists and was not written by wwm" in str(refused.value)
    assert "Move that folder away or choose another --output" in str(refused.value)
    # refused before the first stage: nothing published, the user's file intact
    assert (own / "notes.txt").read_text() == "my own notes"
    assert not (out / "ingest").exists()
    # a stage run alone refuses too
    (out / "ingest").mkdir()
    (out / "ingest" / "keep.txt").write_text("mine")
    with pytest.raises(guard.ForeignOutput):
        run_stage("ingest", config, log=lambda *_: None)
    assert (out / "ingest" / "keep.txt").read_text() == "mine"
    assert [p.name for p in out.iterdir() if p.name.startswith(".tmp-")] == []


def test_run_replaces_its_own_outputs_and_the_cli_says_why_it_stops(tmp_path):
    inputs = corpus(tmp_path / "in")
    out = tmp_path / "out"
    config = make_config(out, [InputSpec(str(inputs), "auto", None)])
    run_all(config, ("ingest",), log=lambda *_: None)
    assert guard.is_own_output(out / "ingest", "ingest")
    run_all(config, ("ingest",), log=lambda *_: None, force=True)      # its own output: replaced
    assert table_rows(out / "ingest" / "documents") == 2
    (out / "clean").mkdir()
    (out / "clean" / "x.txt").write_text("x")
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(inputs), "-o", str(out),
                           "--no-progress", "--segment-segmenter", "jieba"], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"wwm run: {out / 'clean'} exists and was not "
                                                           f"written by wwm")
    assert (out / "clean" / "x.txt").read_text() == "x"


def test_an_output_inside_an_input_folder_is_not_read_back(tmp_path):
    inputs = corpus(tmp_path / "in")
    out = inputs / "run"                          # the output directory inside the input folder
    config = make_config(out, [InputSpec(str(inputs), "auto", None)])
    first = run_all(config, ("ingest", "clean"), log=lambda *_: None)
    assert first["stages"]["ingest"]["accounting"]["read"] == 2
    assert [f.relpath for f in expand(str(inputs), exclude=str(out))] == ["a.txt", "b.txt"]
    log: list[str] = []
    again = run_all(config, ("ingest", "clean"), log=log.append)
    # same two files: nothing of OUTPUT read, and so nothing changed: both stages are up to date
    assert lines_of(log, "up to date, skipped") == ["ingest: up to date, skipped", "clean: up to date, skipped"]
    assert again["stages"]["ingest"]["input"]["files"] == 2
    # a glob over the input folder skips it too; an input inside the output, named explicitly, is read
    assert [f.relpath for f in expand(str(inputs / "**" / "*"), exclude=str(out))] == ["a.txt", "b.txt"]
    assert expand(str(out / "ingest" / "stats.json"), exclude=str(out))[0].relpath == "stats.json"


def test_content_mode_sees_an_input_edited_in_place_with_size_and_time_unchanged(tmp_path):
    inputs = corpus(tmp_path / "in")
    out = tmp_path / "out"
    config = make_config(out, [InputSpec(str(inputs), "auto", None)])
    run_all(config, ("ingest",), log=lambda *_: None)
    target = inputs / "a.txt"
    st = target.stat()
    edited = TEXT.replace("第一句话", "第三句话")
    assert len(edited.encode()) == st.st_size
    target.write_text(edited, encoding="utf-8")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    log: list[str] = []
    run_all(config, ("ingest",), log=log.append)
    # the default check (path, size, time) cannot see it, and says what it compared and the way out
    assert lines_of(log, "up to date") == ["ingest: up to date, skipped"]
    assert lines_of(log, "--force") == ["skipped ingest: made from the same settings, package version and input "
                                        "files by path, size and modification time (--up-to-date content "
                                        "compares their bytes); --force reruns every stage"]
    texts = lambda: "".join(read_table(out / "ingest" / "documents", "documents", ["text"]).column("text")
                            .to_pylist())
    assert "第三句话" not in texts()
    config.up_to_date = "content"
    log.clear()
    run_all(config, ("ingest",), log=log.append)         # the first content-mode run: a new fingerprint
    assert "第三句话" in texts()
    log.clear()
    run_all(config, ("ingest",), log=log.append)
    assert lines_of(log, "up to date") == ["ingest: up to date, skipped"]
    target.write_text(TEXT, encoding="utf-8")             # back to the old bytes, same size, same time
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    log.clear()
    run_all(config, ("ingest",), log=log.append)
    assert lines_of(log, "up to date") == [] and "第三句话" not in texts()


def test_cli_up_to_date_flag_and_config_key(tmp_path):
    from pipeline.cli import build_parser, config_from_args

    args = build_parser().parse_args(["run", "x", "--up-to-date", "content"])
    assert config_from_args(args).up_to_date == "content"
    (tmp_path / "c.yaml").write_text("up_to_date: content\n")
    assert config_from_args(build_parser().parse_args(["run", "--config", str(tmp_path / "c.yaml")])).up_to_date \
        == "content"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--up-to-date", "sometimes"])


KILLED = """
import os, signal, sys
import apache_beam as beam
from pipeline.config import Config, InputSpec
from pipeline.stages import run_stage

def killed(self, *args, **kwargs):           # the run dies as a SIGKILL kills it: no finally, no atexit
    os.kill(os.getpid(), signal.SIGKILL)

beam.Pipeline.run = killed
config = Config(output=sys.argv[2], inputs=[InputSpec(sys.argv[1], "auto", None)], progress=False)
run_stage("ingest", config, log=lambda *_: None)
"""


def test_a_killed_beam_run_leaves_no_temporary_directory_in_the_system_temp_dir(tmp_path):
    inputs = corpus(tmp_path / "in")
    out = tmp_path / "out"
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED))
    done = subprocess.run([sys.executable, str(script), str(inputs), str(out)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(system_tmp)})
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert [p.name for p in system_tmp.iterdir() if p.name.startswith("beam-pipeline-temp")] == []
    left = sorted(p.name for p in out.iterdir() if p.name.startswith(".tmp-beam-"))
    assert len(left) == 1 and any((out / left[0]).glob("beam-pipeline-temp*"))
    # the next run's recovery removes it, with the stage's own leftovers
    done = recover(out, log=lambda *_: None)
    assert f"removed {left[0]}" in done
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())
