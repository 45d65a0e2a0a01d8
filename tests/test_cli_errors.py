"""What a user sees when a command is given a wrong input or a misspelled option: one clear line and exit 2,
the subcommand's usage with the closest option, no import noise, every default in ``wwm pretrain --help``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def wwm(*args: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env or ENV, cwd=cwd)


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"wwm {argv[0]}: "), err
    assert "Traceback" not in err
    return lines[0]


def test_pretrain_on_a_missing_shards_directory_is_one_line_and_exit_2():
    done = wwm("pretrain", "/nonexistent", "--output_dir", "X")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["wwm pretrain: shards directory /nonexistent does not exist (wwm run or wwm shards writes "
                     "OUTPUT/shards)"], done.stderr


def test_pretrain_inputs_that_are_not_there(tmp_path, capsys):
    assert "no manifest.json" in one_line_error(capsys, ["pretrain", str(tmp_path), "--output_dir",
                                                         str(tmp_path / "out")])
    (tmp_path / "manifest.json").write_text("{}")
    assert "--vocab /nope does not exist" in one_line_error(capsys, ["pretrain", str(tmp_path), "--output_dir",
                                                                     str(tmp_path / "out"), "--vocab", "/nope"])
    assert "--init_checkpoint" in one_line_error(capsys, ["pretrain", str(tmp_path), "--output_dir",
                                                          str(tmp_path / "out"), "--init_checkpoint", "/nope/ckpt"])


def test_pretrain_on_a_manifest_it_cannot_use_is_one_line(tmp_path):
    pytest.importorskip("tensorflow")
    (tmp_path / "manifest.json").write_text("{}")
    done = wwm("pretrain", str(tmp_path), "--output_dir", str(tmp_path / "out"), "--preset", "tiny")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("wwm pretrain: the shards' manifest.json has no")


def test_every_command_answers_a_missing_or_wrong_input_with_one_line(tmp_path, capsys):
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\x00\xd0\xff\xfe" * 64)
    stats = tmp_path / "run" / "ingest"
    stats.mkdir(parents=True)
    (stats / "stats.json").write_text("{not json")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = {
        ("report", "/nonexistent"): "no stage stats",
        ("report", str(tmp_path / "run")): "not a stats file",
        ("train-segmenter", "/nonexistent", "--out", str(tmp_path / "m")): "no such file",
        ("train-segmenter", str(binary), "--out", str(tmp_path / "m")): "not a UTF-8 text file",
        ("train-segmenter", str(tmp_path), "--out", str(tmp_path / "m")): "is a directory",
        ("train-segmenter", str(a_file), "--out", str(tmp_path / "m"), "--sentences", "x:y"): "START:END",
        ("segment-eval", "--gold", str(binary), "--segment-segmenter", "jieba"): "not a UTF-8 text file",
        ("run", "--config", str(binary)): "not a UTF-8 text file",
        ("run", "--config", "/nonexistent.yaml"): "nonexistent.yaml",
        ("run", "/nonexistent", "-o", str(tmp_path / "o1")): "matches no file",
        ("clean", "--input", "/nonexistent", "-o", str(tmp_path / "o2")): "does not exist",
        ("shards", "--shards-vocab", "/nope", "-o", str(tmp_path / "o3")): "does not exist",
        ("segment", "--segment-model", "/nope", "-o", str(tmp_path / "o4")): "does not exist",
        ("sample", str(a_file)): "Not a directory",
        ("config", "--clean-min-chars", "abc"): "not a valid int",
    }
    for argv, expected in cases.items():
        line = one_line_error(capsys, list(argv))
        assert expected in line, (argv, line)


def test_a_misspelled_option_shows_the_subcommands_usage_and_the_closest_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--shards-max-seq-lenght", "128"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: wwm run ")
    assert "wwm run: error: unrecognized arguments: --shards-max-seq-lenght" in err
    assert "did you mean --shards-max-seq-length?" in err
    with pytest.raises(SystemExit):
        main(["pretrain", "shards", "--output_dir", "x", "--num-train-steps", "4"])
    err = capsys.readouterr().err
    assert err.startswith("usage: wwm pretrain ") and "did you mean --num_train_steps?" in err
    with pytest.raises(SystemExit):       # nothing close: no suggestion, still the subcommand's usage
        main(["clean", "--zzzzzz"])
    err = capsys.readouterr().err
    assert err.startswith("usage: wwm clean ") and "did you mean" not in err


def test_beam_is_imported_without_the_apitools_warning(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import pipeline.beam.runner, logging; "
                           "logging.getLogger().warning('after'); print(len(logging.getLogger().handlers))"],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr
    assert "apitools" not in done.stderr
    assert done.stdout.strip() == "0"           # no root handler installed as a side effect
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("第一句话在这里。\n第二句话也在这里。\n", encoding="utf-8")
    done = wwm("ingest", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "apitools" not in done.stderr and "WARNING:root" not in done.stderr


def test_pretrain_help_shows_every_default():
    parser = build_parser()
    pretrain = parser.commands["pretrain"]
    text = pretrain.format_help()
    assert "(default: 100000)" in text and "(default: 32)" in text and "(default: adamw)" in text
    for action in pretrain._actions:
        if not action.option_strings or action.default in (None, "", False, argparse.SUPPRESS):
            continue
        shown = pretrain.formatter_class(prog="x")._get_help_string(action) % {"default": action.default}
        assert f"(default: {action.default})" in shown, action.option_strings
    assert "--num_warmup_steps" in text and "10% of --num_train_steps" in text
