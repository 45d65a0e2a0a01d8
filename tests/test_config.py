import pytest
import yaml

from pipeline import config as cfg
from pipeline.cli import build_parser, config_from_args


def test_yaml_file_sets_options_and_flags_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "engine": "spark",
        "inputs": [{"path": "corpus/zhwiki", "source": "zhwiki"}, "news=corpus/news"],
        "clean": {"min_chars": 50, "convert": "tw2s"},
        "spark": {"conf": {"spark.executor.memory": "8g"}},
    }), encoding="utf-8")
    args = build_parser().parse_args(["run", "--config", str(path), "--clean-min-chars", "30",
                                      "--no-clean-fullwidth", "--spark-conf", "spark.x=1"])
    config = config_from_args(args)
    assert config.engine == "spark"
    assert config.clean.min_chars == 30          # flag beats file
    assert config.clean.convert == "tw2s"        # file beats default
    assert config.clean.fullwidth is False
    assert config.spark.conf == {"spark.x": "1"}
    specs = config.input_specs()
    assert [(s.path, s.source) for s in specs] == [("corpus/zhwiki", "zhwiki"), ("corpus/news", "news")]


def test_dump_reads_back_to_the_same_config(tmp_path):
    config = cfg.load(overrides={"clean": {"min_han_ratio": 0.4}, "beam": {"direct_num_workers": 2},
                                 "inputs": ["a=x/y", {"path": "z", "format": "ccnet"}],
                                 "ingest": {"format": "news2016zh"}})
    path = tmp_path / "dumped.yaml"
    path.write_text(cfg.dump(config), encoding="utf-8")
    again = cfg.load(path)
    assert again.to_dict() == config.to_dict()
    assert again.clean.min_han_ratio == 0.4 and again.beam.direct_num_workers == 2
    assert again.input_specs() == [cfg.InputSpec("x/y", "news2016zh", "a"), cfg.InputSpec("z", "ccnet", None)]


@pytest.mark.parametrize("values, message", [
    ({"clean": {"min_charz": 3}}, "unknown option clean.min_charz"),
    ({"enginee": "beam"}, "unknown option enginee"),
    ({"engine": "flink"}, "not one of"),
    ({"clean": {"min_chars": "many"}}, "not a valid int"),
    ({"clean": {"fullwidth": "sometimes"}}, "not a valid bool"),
    ({"inputs": [{"paht": "x"}]}, "expected keys"),
    ([1, 2], "mapping at the top level"),
])
def test_bad_config_is_a_clear_error(values, message):
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.apply(cfg.Config(), values)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("engine: !!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    with pytest.raises(cfg.ConfigError, match="no language-specific tags"):
        cfg.load(path)


def test_help_texts_name_every_config_key_and_the_html_report(capsys):
    """--config's help lists every top-level key a YAML file may hold (it once stopped at dedup), and the report
    command's help names the HTML report it writes (it once said HTML was not built yet)."""
    keys = [f.name for f in cfg.dataclasses.fields(cfg.Config)]
    assert set(cfg.Config.SECTIONS) <= set(keys)
    for command in ("run", "ingest", "shards", "config"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "keys: " + ", ".join(keys) + ")" in text, command
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    top = " ".join(capsys.readouterr().out.split())
    assert "report.html" in top and "not built" not in top
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "--help"])
    assert "report.html" in " ".join(capsys.readouterr().out.split())
