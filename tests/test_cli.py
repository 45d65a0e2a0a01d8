import subprocess
import sys

import pytest

from pipeline.cli import NOT_BUILT, build_parser, main

COMMANDS = ["ingest", "clean", "dedup", "segment", "vocab", "shards", "pretrain", "run", "report", "sample",
            "config"]


def test_every_stage_has_a_subcommand():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)


@pytest.mark.parametrize("command", ["ingest", "clean", "dedup", "run"])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--engine", "--output", "--config"):
        assert flag in out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:
        if action.option_strings:
            assert action.help, f"{command} {action.option_strings} has no help"


@pytest.mark.parametrize("command", sorted(NOT_BUILT))
def test_later_stages_say_not_built_yet(command, capsys):
    assert main([command]) == 3
    assert "not built yet" in capsys.readouterr().err


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "nothing-here"), "--output", str(tmp_path / "out")]) == 2
    assert "matches no file" in capsys.readouterr().err
    assert main(["clean", "--output", str(tmp_path / "out")]) == 2
    assert "run ingest first" in capsys.readouterr().err


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "--help"], capture_output=True, text=True,
                            check=True)
    for command in COMMANDS:
        assert command in result.stdout
