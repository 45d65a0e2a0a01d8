"""The ``wwm`` command: one subcommand per stage, plus run, report, sample and config.

Options come from the defaults, then ``--config FILE`` (YAML), then flags.
Every option of :mod:`pipeline.config` has a flag named
``--<section>-<option>`` (``--clean-min-han-ratio 0.4``); ``wwm config``
prints the effective configuration as YAML, which ``--config`` reads back.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import shlex
import sys
from pathlib import Path

from pipeline import __version__
from pipeline import config as cfg
from pipeline.fingerprint import OutputBusy
from pipeline.guard import ForeignOutput
from pipeline.segment.segmenters import SegmenterError
from pipeline.vocab.training import VocabError
from pipeline.summary import detail_lines, stage_table
from pipeline.stages import PREVIOUS, STAGES, AccountingError, run_all, run_stage

SECTIONS_FOR = {
    "ingest": ("ingest", "beam", "spark"),
    "clean": ("clean", "beam", "spark"),
    "dedup": ("dedup", "beam", "spark"),
    "segment": ("segment", "beam", "spark"),
    "vocab": ("vocab", "beam", "spark"),
    "shards": ("shards", "beam", "spark"),
    "run": cfg.Config.SECTIONS,
    "config": cfg.Config.SECTIONS,
}
class Parser(argparse.ArgumentParser):
    """``argparse`` with two changes for a command with subcommands: an unknown option is reported with the
    subcommand's usage (not the top-level ``usage: wwm ...``), and with the closest known option."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, extras = super().parse_known_args(args, namespace)
        commands = getattr(self, "commands", None)
        if commands and extras and getattr(parsed, "command", None) in commands:
            sub = commands[parsed.command]
            sub.error(unknown_message(sub, extras))
        return parsed, extras


def unknown_message(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """"unrecognized arguments: ..." with "did you mean" for each unknown option that is close to a known one."""
    known = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    hints = []
    for extra in extras:
        name = extra.split("=", 1)[0]
        if name.startswith("-"):
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            if close:
                hints.append(f"{name}: did you mean {close[0]}?")
    return f"unrecognized arguments: {' '.join(extras)}" + ("".join(f"\n  {h}" for h in hints) if hints else "")


def _flag(section: str, name: str) -> str:
    return f"--{section}-{name.replace('_', '-')}"


def _add_option(group, section: str, f: dataclasses.Field) -> None:
    dest = f"{section}.{f.name}"
    help_text = f"{f.metadata.get('help', '')} (default: {f.default if f.default is not dataclasses.MISSING else f.default_factory()})"
    help_text = help_text.replace("%", "%%")
    kind = f.type
    if kind == "bool":
        group.add_argument(_flag(section, f.name), dest=dest, action=argparse.BooleanOptionalAction,
                           default=None, help=help_text)
    elif kind == "list":
        group.add_argument(_flag(section, f.name), dest=dest, default=None, metavar="ARGS",
                           help=help_text + "; one shell-quoted string")
    elif kind == "dict":
        group.add_argument(_flag(section, f.name), dest=dest, default=None, action="append",
                           metavar="KEY=VALUE", help=help_text + "; repeat the flag for several")
    else:
        group.add_argument(_flag(section, f.name), dest=dest, default=None,
                           choices=f.metadata.get("choices"), metavar=None if f.metadata.get("choices") else
                           f.name.upper(), help=help_text)


def top_help(name: str) -> str:
    return {f.name: f for f in dataclasses.fields(cfg.Config)}[name].metadata["help"]


def _add_common(parser: argparse.ArgumentParser, command: str) -> None:
    top = {f.name: f for f in dataclasses.fields(cfg.Config)}
    parser.add_argument("--config", metavar="FILE", help="YAML file with any of the options below (keys: "
                        + ", ".join(f.name for f in dataclasses.fields(cfg.Config)) + ")")
    parser.add_argument("--engine", choices=["beam", "spark"], default=None, help=top["engine"].metadata["help"]
                        + " (default: beam)")
    parser.add_argument("--output", "-o", metavar="DIR", default=None,
                        help=top["output"].metadata["help"] + " (default: output)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help=top["progress"].metadata["help"] + " (default: on)")
    for section in SECTIONS_FOR.get(command, ()):
        cls = type(getattr(cfg.Config(), section))
        group = parser.add_argument_group(f"{section} options")
        for f in dataclasses.fields(cls):
            _add_option(group, section, f)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="wwm",
        description="Raw Chinese text to whole-word-masked BERT pretraining data, on Apache Beam or PySpark.",
        epilog="Stages: ingest -> clean -> dedup -> segment -> vocab -> shards -> pretrain. "
               "'wwm COMMAND --help' lists every option of a command.")
    parser.add_argument("--version", action="version", version=f"wwm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", help="read raw corpora into the documents table",
                       description="Read raw corpora (MediaWiki XML dumps, wikiextractor output, nlp_chinese_corpus "
                                   "and ChineseWebText JSON lines, SQuAD JSON, google-research/bert plain text) into "
                                   "OUTPUT/ingest/{documents,quarantined}.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="file, directory or glob; 'SOURCE=PATH' names the source (default: the path's stem)")
    p.add_argument("--format", dest="ingest.format", default=None,
                   help="format of the inputs (same as --ingest-format)")
    p.add_argument("--source", dest="ingest.source", default=None,
                   help="source name of a single input (same as --ingest-source)")
    _add_common(p, "ingest")

    for name, text in (("clean", "normalise, filter and sentence-split documents"),
                       ("dedup", "drop exact, then near (MinHash LSH) duplicates; keep the smallest id"),
                       ("segment", "segment every sentence into words (LTP legacy or neural, or jieba)")):
        p = sub.add_parser(name, help=text, description=text + f". Reads OUTPUT/{PREVIOUS[name]}"
                           f"/documents unless --input is given; writes OUTPUT/{name}/.")
        p.add_argument("--input", metavar="DIR", help="documents table (or a stage directory holding one) to read")
        _add_common(p, name)

    text = "build the WordPiece vocab (21,128 entries, Google's Chinese BERT layout) from the segmented corpus"
    p = sub.add_parser("vocab", help=text, description=text + ". Pre-token counts are computed on the engine, the "
                       "WordPiece trainer runs once on the counts. Reads OUTPUT/segment/segmented unless --input is "
                       "given; writes OUTPUT/vocab/{vocab.txt,counts.tsv,stats.json}. With --vocab FILE an existing "
                       "vocab (e.g. Google's) is checked and copied instead.")
    p.add_argument("--input", metavar="DIR", help="segmented table (or a stage directory holding one) to read")
    p.add_argument("--vocab", dest="vocab.vocab", metavar="FILE", default=None,
                   help="use this vocab file, no training (same as --vocab-vocab)")
    _add_common(p, "vocab")

    p = sub.add_parser("run", help="run every stage in order (ingest, clean, dedup, segment, vocab, shards)",
                       description="Run ingest, clean, dedup, segment, vocab and shards in order on the chosen engine; "
                                   "writes "
                                   "OUTPUT/run.json with each stage's stats and the whole-run accounting.")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="as for 'wwm ingest'")
    p.add_argument("--format", dest="ingest.format", default=None, help="format of the inputs")
    p.add_argument("--source", dest="ingest.source", default=None, help="source name of a single input")
    p.add_argument("--force", action="store_true", default=None,
                   help="run every stage, even those whose output is up to date (same inputs, settings and "
                        "package version as recorded in OUTPUT/<stage>/fingerprint.json): the way out when "
                        "the check cannot see a change")
    p.add_argument("--up-to-date", dest="up_to_date", choices=["stat", "content"], default=None,
                   help=top_help("up_to_date") + " (default: stat)")
    _add_common(p, "run")

    p = sub.add_parser("shards", help="whole-word-masked TFRecord shards in google-research/bert's format",
                       description="Build training instances from OUTPUT/segment/segmented (or --input) with the vocab "
                                   "(OUTPUT/vocab/vocab.txt or --vocab), mask whole words, and write "
                                   "OUTPUT/shards/part-NNNNN-of-MMMMM.tfrecord, manifest.json and stats.json.")
    p.add_argument("--input", metavar="DIR", help="segmented table (or the segment stage directory) to read")
    p.add_argument("--vocab", dest="shards.vocab", metavar="FILE", default=None,
                   help="vocab file (same as --shards-vocab)")
    _add_common(p, "shards")

    p = sub.add_parser("pretrain", help="pretrain BERT (MLM + NSP) or RoBERTa-style (MLM) from the shards (TensorFlow)",
                       description="Train on TPU (--tpu), GPUs or CPU from OUTPUT/shards; checkpoints and resumes; "
                                   "exports bert_model.ckpt (google names) and a Hugging Face folder.")
    from pipeline.pretrain.cli import add_arguments as add_pretrain_arguments
    add_pretrain_arguments(p)

    p = sub.add_parser("train-segmenter", help="train an LTP legacy segmentation model from segmented text",
                       description="Train an LTP legacy (perceptron) CWS model from gold text (one sentence a line, "
                                   "words separated by spaces; full-width spaces are normalised). The trainer keeps "
                                   "the best epoch on an evaluation set: --eval FILE, or the last --dev-share of GOLD "
                                   "(held out of training). Writes DIR/cws_model.bin and DIR/config.json, a directory "
                                   "ltp.LTP(DIR) and --segment-model DIR load.")
    p.add_argument("gold", metavar="GOLD")
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    p.add_argument("--eval", metavar="FILE", help="evaluation (dev) set in the same format")
    p.add_argument("--dev-share", type=float, default=0.1, help="share of GOLD held out as the dev set when no "
                   "--eval is given (default: 0.1)")
    p.add_argument("--sentences", metavar="START:END", default=":", help="use only these gold sentences, Python "
                   "slice syntax, e.g. :1700 (default: all)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs; the best on the dev set is kept "
                   "(default: 10)")
    p.add_argument("--algorithm", choices=["ap", "pa", "pa-i", "pa-ii"], default="pa-ii",
                   help="averaged perceptron or passive-aggressive variants (default: pa-ii)")

    p = sub.add_parser("segment-eval", help="precision, recall and F1 of a segmenter on gold text (SIGHAN)",
                       description="Segment the gold sentences' text with the configured segmenter and score the "
                                   "words against the gold words (a word is right when its span matches).")
    p.add_argument("--gold", required=True, metavar="FILE")
    p.add_argument("--sentences", metavar="START:END", default=":", help="score only these gold sentences, e.g. "
                   "1700: (default: all)")
    _add_common(p, "segment")

    p = sub.add_parser("report", help="summarise a run directory: the stage table here, report.html and "
                       "report.json beside the stages",
                       description="Print each stage's accounting and counters from OUTPUT/*/stats.json and write "
                                   "OUTPUT/report.html (figures, rejected and quarantined examples) and "
                                   "OUTPUT/report.json.")
    p.add_argument("run_dir", metavar="OUTPUT_DIR")

    p = sub.add_parser("sample", help="write the bundled sample corpus (every input format)",
                       description="Write the project's own sample corpus, one file per supported format.")
    p.add_argument("out", metavar="DIR")

    p = sub.add_parser("config", help="print the effective configuration as YAML",
                       description="Print defaults + --config file + flags as YAML (readable by --config).")
    p.add_argument("inputs", nargs="*", metavar="INPUT")
    _add_common(p, "config")
    parser.commands = sub.choices
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    values: dict = {}
    for key, value in vars(args).items():
        if value is None or key in ("command", "config", "input", "run_dir", "out", "gold", "sentences", "force"):
            continue
        if key == "inputs":
            if value:
                values["inputs"] = list(value)
            continue
        section, _, name = key.partition(".")
        if not name:
            values[section] = value
            continue
        if name == "pipeline_args":
            value = shlex.split(value)
        elif name in ("conf", "weights"):          # the dict options: KEY=VALUE, the flag repeated
            pairs = {}
            for item in value:
                k, sep, v = item.partition("=")
                if not sep:
                    raise cfg.ConfigError(f"--{section}-{name} expects KEY=VALUE, got {item!r}")
                pairs[k] = v
            value = pairs
        values.setdefault(section, {})[name] = value
    return values


def config_from_args(args: argparse.Namespace) -> cfg.Config:
    try:
        return cfg.load(args.config, _overrides(args))
    except UnicodeDecodeError as exc:
        raise cfg.ConfigError(f"--config {args.config}: not a UTF-8 text file ({exc.reason} at byte {exc.start})")


def read_text_input(what: str, path: str, read):
    """``read(path)`` for an input file given on the command line: a directory, a binary file or a missing
    file is a :class:`ConfigError` naming the flag."""
    try:
        return read(path)
    except UnicodeDecodeError as exc:
        raise cfg.ConfigError(f"{what} {path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})")
    except IsADirectoryError:
        raise cfg.ConfigError(f"{what} {path}: is a directory, a file is expected")
    except FileNotFoundError:
        raise cfg.ConfigError(f"{what} {path}: no such file")


def report(run_dir: str) -> dict:
    root = Path(run_dir)
    stages = {}
    for stage in STAGES:
        path = root / stage / "stats.json"
        if path.exists():
            try:
                stages[stage] = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise cfg.ConfigError(f"{path}: not a stats file wwm wrote ({exc})") from None
    if not stages:
        raise FileNotFoundError(f"no stage stats under {root}")
    lines = stage_table(stages) + detail_lines(stages)
    from pipeline.report import write_report

    summary = write_report(root)
    print("\n".join(lines))
    print(f"report: {root / 'report.html'} (JSON: {root / 'report.json'})")
    return summary


def run_report(root: str) -> str:
    """Write the HTML report of a finished ``wwm run`` beside its outputs; the line that says where (or why not:
    a report that cannot be written never fails the run that produced the data)."""
    if "://" in root:
        return f"report: not written for an object-store output (wwm report reads local run directories)"
    from pipeline.report import write_report

    try:
        write_report(root)
    except Exception as exc:  # noqa: BLE001 - the run's outputs are published; say what went wrong, go on
        return f"report: not written ({type(exc).__name__}: {exc}); try 'wwm report {root}'"
    return f"report: {root}/report.html (JSON: {root}/report.json)"


def _slice(text: str) -> slice:
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError(text)
        return slice(int(start) if start else None, int(end) if end else None)
    except ValueError:
        raise cfg.ConfigError(f"--sentences expects START:END (whole numbers, either may be left out), "
                              f"got {text!r}") from None


def train_segmenter(args) -> dict:
    from pipeline.segment.gold import read_gold, split_dev, train_legacy

    sentences = read_text_input("GOLD", args.gold, read_gold)[_slice(args.sentences)]
    if args.eval:
        train, dev = sentences, read_text_input("--eval", args.eval, read_gold)
    else:
        train, dev = split_dev(sentences, args.dev_share)
    info = train_legacy(train, dev, args.out, epochs=args.epochs, algorithm=args.algorithm)
    print(json.dumps(info, ensure_ascii=False))
    return info


def write_sample_config(out: str) -> Path:
    """``OUT/sample.yaml``: one input per corpus directory of the sample, named after it."""
    root = Path(out)
    inputs = [{"path": str(d), "source": d.name} for d in sorted(root.iterdir())
              if d.is_dir() and not d.name.startswith(("_", "."))]
    path = root / "sample.yaml"
    path.write_text(cfg.yaml.safe_dump({"inputs": inputs}, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


def write_sample_segmentation(out: str) -> Path:
    """``OUT/_segmentation/train.txt``: the sample's cleaned sentences, segmented by jieba, one a line.

    Text the project wrote, segmented automatically: enough to train a small LTP
    model offline for ``make run`` and the tests (it learns jieba's choices; real
    runs use the official LTP models or a model trained on real gold text).
    """
    from pipeline.clean.stage import Cleaner
    from pipeline.ingest.files import expand
    from pipeline.ingest.readers import read_file
    from pipeline.records import Document
    from pipeline.segment.segmenters import JiebaSegmenter

    root = Path(out)
    cleaner = Cleaner()
    sentences = []
    for corpus in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", "."))):
        for f in expand(str(corpus)):
            for record in read_file(f):
                if isinstance(record, Document):
                    cleaned = cleaner.process(record)
                    if isinstance(cleaned, Document):
                        sentences.extend(cleaned.sentences)
    lines = [" ".join(w for w in words if not w.isspace()) for words in JiebaSegmenter().segment(sentences)]
    path = root / "_segmentation" / "train.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines if line), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        if args.command == "sample":
            from pipeline.sample import write_sample

            for path in write_sample(args.out):
                print(path)
            print(write_sample_config(args.out))
            print(write_sample_segmentation(args.out))
            return 0
        if args.command == "report":
            report(args.run_dir)
            return 0
        if args.command == "pretrain":
            from pipeline.pretrain.cli import run as run_pretrain
            return run_pretrain(args)
        if args.command == "train-segmenter":
            train_segmenter(args)
            return 0
        config = config_from_args(args)
        if args.command == "segment-eval":
            from pipeline.segment.gold import evaluate, read_gold
            from pipeline.segment.segmenters import make_segmenter

            gold = read_text_input("--gold", args.gold, read_gold)[_slice(args.sentences)]
            print(json.dumps(evaluate(make_segmenter(config.segment), gold), ensure_ascii=False))
            return 0
        if args.command == "config":
            print(cfg.dump(config), end="")
            return 0
        if args.command == "run":
            summary = run_all(config, STAGES, force=bool(args.force))
            a = summary.get("accounting", {})
            print("\n".join(["", *stage_table(summary["stages"]), *detail_lines(summary["stages"]), ""]))
            print(f"run: read {a.get('read', 0):,} = kept {a.get('kept', 0):,} + rejected {a.get('rejected', 0):,} + "
                  f"duplicate {a.get('duplicate', 0):,} + quarantined {a.get('quarantined', 0):,}")
            root = config.output.rstrip("/") if "://" in config.output else str(Path(config.output).resolve())
            print(f"outputs: {root}/{{{','.join(STAGES)}}}  (run.json beside them); the shards are in {root}/shards")
            print(run_report(root))
            return 0
        run_stage(args.command, config, getattr(args, "input", None))
        return 0
    except (cfg.ConfigError, FileNotFoundError, SegmenterError, VocabError, OutputBusy,
            ForeignOutput) as exc:
        print(f"wwm {args.command}: {exc}", file=sys.stderr)
        return 2
    except (NotADirectoryError, IsADirectoryError, PermissionError) as exc:    # a path of the wrong kind
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"wwm {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except AccountingError as exc:
        print(f"wwm {args.command}: accounting failed, nothing published: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
