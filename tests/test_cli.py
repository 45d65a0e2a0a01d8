import subprocess
import sys

import pytest

from pipeline.cli import build_parser, main

COMMANDS = ["ingest", "clean", "dedup", "segment", "vocab", "shards", "pretrain", "run", "report", "sample",
            "config", "train-segmenter", "segment-eval"]


def test_every_stage_has_a_subcommand():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)


@pytest.mark.parametrize("command", ["ingest", "clean", "dedup", "segment", "run"])
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


def test_sample_command_writes_every_format_and_a_config(tmp_path, capsys):
    assert main(["sample", str(tmp_path)]) == 0
    import yaml

    config = yaml.safe_load((tmp_path / "sample.yaml").read_text(encoding="utf-8"))
    sources = [item["source"] for item in config["inputs"]]
    assert sources == sorted(sources) and {"zhwiki", "news2016zh", "plain", "chinesewebtext"} <= set(sources)


def test_run_and_report_from_the_command_line(tmp_path, capsys):
    main(["sample", str(tmp_path / "sample")])
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["run", "--config", str(tmp_path / "sample" / "sample.yaml"), "--output", str(out),
                 "--no-progress", "--segment-segmenter", "jieba"]) == 0
    printed = capsys.readouterr().out
    assert "run: read 46 = kept" in printed and str(out.resolve()) in printed
    # issue 19.5: the run writes its report and says where
    assert f"report: {out.resolve()}/report.html" in printed and (out / "report.html").is_file()
    table = {}
    for line in printed.splitlines():
        if line.split():
            table.setdefault(line.split()[0], line.split())
    assert table["stage"][:3] == ["stage", "read", "kept"] and table["total"][1] == "46"
    assert [table[s][1] for s in ("ingest", "clean", "dedup", "segment")] == ["46", "44", "40", "37"]
    assert main(["report", str(out)]) == 0
    assert "segment" in capsys.readouterr().out and (out / "report.json").exists()
