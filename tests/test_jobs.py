"""The cloud targets (python -m jobs): the exact commands --dry-run prints, checked against the parsers that
will read them (Beam's PipelineOptions, wwm's own CLI, bash), and the local steps run for real."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

from jobs.__main__ import main as jobs_main
from jobs.pack import build_zip
from jobs.targets import TARGETS
from pipeline.cli import build_parser, config_from_args

ROOT = Path(__file__).resolve().parents[1]
BASE = ["--project", "proj-1", "--bucket", "bkt", "--python", "python3", "--tag", "t1"]


def dry_run(target: str, *extra: str, capsys) -> list[list[str]]:
    assert jobs_main([target, "--dry-run", *BASE, *extra]) == 0
    return [shlex.split(line) for line in capsys.readouterr().out.splitlines()]


def wwm_config(argv: list[str]):
    """The configuration wwm builds from the argv a target passes it."""
    return config_from_args(build_parser().parse_args(argv))


def test_every_target_has_a_dry_run(capsys):
    for target in TARGETS:
        assert dry_run(target, capsys=capsys), target


def test_dataflow_submit_runs_wwm_with_the_dataflow_runner_and_its_options(capsys):
    (cmd,) = dry_run("dataflow-submit", "--input", "gs://bkt/corpus/*.jsonl", "--max-num-workers", "50",
                     "--harness-threads", "2", capsys=capsys)
    assert cmd[:3] == ["python3", "-m", "pipeline.cli"]
    config = wwm_config(cmd[3:])
    assert (config.engine, config.beam.runner, config.output) == ("beam", "DataflowRunner", "gs://bkt/wwm/run")
    assert [s.path for s in config.input_specs()] == ["gs://bkt/corpus/*.jsonl"]
    assert config.segment.model == "/opt/wwm/ltp-model"
    args = config.beam.pipeline_args
    assert args == [
        "--project=proj-1", "--region=us-central1", "--temp_location=gs://bkt/wwm/tmp",
        "--staging_location=gs://bkt/wwm/staging", "--job_name=wwm-t1", "--max_num_workers=50",
        "--machine_type=n2-highmem-4", "--experiments=no_use_multiple_sdk_containers",
        "--number_of_worker_harness_threads=2",
        "--sdk_container_image=us-central1-docker.pkg.dev/proj-1/wwm/dataflow:t1"]
    options = PipelineOptions(args + ["--runner=DataflowRunner"])
    # every argument is one Beam knows (none would be discarded as unparseable)
    assert options.get_all_options(retain_unknown_options=True) == options.get_all_options()
    gcp, worker = options.view_as(GoogleCloudOptions), options.view_as(WorkerOptions)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert (gcp.project, gcp.region, gcp.job_name) == ("proj-1", "us-central1", "wwm-t1")
    assert (gcp.temp_location, gcp.staging_location) == ("gs://bkt/wwm/tmp", "gs://bkt/wwm/staging")
    assert (worker.max_num_workers, worker.machine_type) == (50, "n2-highmem-4")
    assert worker.sdk_container_image == "us-central1-docker.pkg.dev/proj-1/wwm/dataflow:t1"
    debug = options.view_as(DebugOptions)
    assert (debug.experiments, debug.number_of_worker_harness_threads) == (["no_use_multiple_sdk_containers"], 2)


def test_dataflow_light_path_stages_setup_py_and_segments_with_jieba(capsys):
    (cmd,) = dry_run("dataflow-submit", "--light", capsys=capsys)
    config = wwm_config(cmd[3:])
    options = PipelineOptions(config.beam.pipeline_args)
    assert options.view_as(SetupOptions).setup_file == "./setup.py" and (ROOT / "setup.py").is_file()
    assert options.view_as(WorkerOptions).sdk_container_image is None
    assert config.segment.segmenter == "jieba"


def test_dataflow_image_builds_jobs_dockerfile_from_the_pinned_beam_image(capsys):
    assert dry_run("dataflow-image", "--image", "eu.gcr.io/p/w:1", "--ltp-model", "build/ltp-sample",
                   capsys=capsys) == [
        ["docker", "build", "--file", "jobs/Dockerfile", "--build-arg", "LTP_MODEL=build/ltp-sample",
         "--tag", "eu.gcr.io/p/w:1", "."],
        ["docker", "push", "eu.gcr.io/p/w:1"]]
    dockerfile = (ROOT / "jobs" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)$", dockerfile, re.MULTILINE).group(1)
    assert base == "apache/beam_python3.11_sdk:2.77.0"
    import apache_beam

    # the worker's Beam is the submitter's and setup.py's, and the model lands where dataflow-submit points
    assert base.endswith(":" + apache_beam.__version__)
    assert f'"apache-beam=={apache_beam.__version__}"' in (ROOT / "setup.py").read_text()
    assert "COPY ${LTP_MODEL} /opt/wwm/ltp-model" in dockerfile
    assert "ENTRYPOINT" not in dockerfile    # Dataflow needs the SDK image's /opt/apache/beam/boot


def test_dataproc_submit_ships_the_zip_and_the_packed_env(capsys):
    (cmd,) = dry_run("dataproc-submit", "--cluster", "c1", "--region", "europe-west4", capsys=capsys)
    dash = cmd.index("--")
    assert cmd[:dash] == [
        "gcloud", "dataproc", "jobs", "submit", "pyspark", "jobs/spark_entry.py",
        "--project=proj-1", "--region=europe-west4", "--cluster=c1",
        "--py-files=gs://bkt/wwm/dist/wwm_pipeline.zip",
        "--archives=gs://bkt/wwm/dist/wwm-env.tar.gz#environment",
        ("--properties=^#^spark.submit.deployMode=cluster#spark.pyspark.python=./environment/bin/python"
         "#spark.pyspark.driver.python=./environment/bin/python#spark.executor.memory=8g"
         "#spark.executor.cores=4#spark.task.cpus=1")]
    config = wwm_config(cmd[dash + 1:])
    assert (config.engine, config.spark.master, config.output) == ("spark", "yarn", "gs://bkt/wwm/run")
    assert (ROOT / "jobs" / "spark_entry.py").is_file()


def test_dataproc_env_packs_then_stages(capsys):
    cmds = dry_run("dataproc-env", capsys=capsys)
    assert cmds[0] == ["python3", "-m", "jobs.pack", "zip", "build/jobs/wwm_pipeline.zip"]
    assert cmds[1][-3:] == ["bash", "jobs/pack_env.sh", "build/jobs/wwm-env.tar.gz"]
    assert cmds[2] == ["gcloud", "storage", "cp", "build/jobs/wwm_pipeline.zip", "build/jobs/wwm-env.tar.gz",
                       "gs://bkt/wwm/dist/"]
    assert subprocess.run(["bash", "-n", str(ROOT / "jobs" / "pack_env.sh")], check=False).returncode == 0


def test_serverless_submit_uses_the_container_image(capsys):
    (cmd,) = dry_run("serverless-submit", "--serverless-image", "r-docker.pkg.dev/p/r/s:2", capsys=capsys)
    dash = cmd.index("--")
    assert cmd[:dash] == [
        "gcloud", "dataproc", "batches", "submit", "pyspark", "jobs/spark_entry.py",
        "--project=proj-1", "--region=us-central1", "--batch=wwm-t1", "--version=3.0",
        "--container-image=r-docker.pkg.dev/p/r/s:2", "--deps-bucket=gs://bkt",
        "--properties=^#^spark.executor.memory=8g#spark.executor.cores=4#spark.dynamicAllocation.maxExecutors=20"]
    assert wwm_config(cmd[dash + 1:]).spark.master == "yarn"


def test_tpu_train_creates_the_vm_and_starts_wwm_pretrain_on_it(capsys):
    cmds = dry_run("tpu-train", "--tpu", "t", "--zone", "europe-west4-a", "--pretrain-args",
                   "--preset base --train_batch_size 256", "--delete-tpu", "--spot", capsys=capsys)
    where = ["--project=proj-1", "--zone=europe-west4-a"]
    assert cmds[0] == ["python3", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", "build/jobs", "."]
    assert cmds[1] == ["gcloud", "storage", "cp", "build/jobs/wwm_pipeline-0.1.0-py3-none-any.whl",
                       "gs://bkt/wwm/dist/"]
    assert cmds[2] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "t", *where, "--accelerator-type=v3-8",
                       "--version=tpu-vm-tf-2.16.1-pjrt", "--spot"]
    assert cmds[3][:8] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "t", *where][:8]
    assert cmds[3][8] == "--worker=all"
    assert cmds[4] == ["gcloud", "compute", "tpus", "tpu-vm", "delete", "t", *where, "--quiet"]
    script = cmds[3][9].removeprefix("--command=")
    assert subprocess.run(["bash", "-n", "-c", script], check=False).returncode == 0
    assert "gcloud storage cp gs://bkt/wwm/run/vocab/vocab.txt wwm/vocab.txt" in script
    pretrain = shlex.split(re.search(r"\{ (python3 -m pipeline\.pretrain [^;]*);", script).group(1))
    args = build_parser().parse_args(["pretrain", *pretrain[3:]])
    # the shards are read from the bucket (tests/test_pretrain_gfile.py: the runner reads tf.io.gfile URLs)
    assert (args.shards, args.output_dir, args.tpu, args.vocab, args.preset, args.train_batch_size) == (
        "gs://bkt/wwm/run/shards", "wwm/pretrain", "local", "wwm/vocab.txt", "base", 256)
    # the setup.py version the wheel is named after
    assert 'version="0.1.0"' in (ROOT / "setup.py").read_text()


def pretrain_extra() -> list[str]:
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "pretrain"
                                               for k in node.keys):
            return ast.literal_eval(node.values[[k.value for k in node.keys].index("pretrain")])
    raise AssertionError("no pretrain extra in setup.py")


def test_tpu_vm_uses_googles_tensorflow_runtime_and_installs_only_the_runners_packages(capsys):
    from jobs.targets import RUNNER_REQUIREMENTS, Settings, tpu_script

    cmds = dry_run("tpu-train", capsys=capsys)
    assert "--version=tpu-vm-tf-2.16.1-pjrt" in cmds[2]            # TensorFlow for TPU preinstalled
    script = cmds[3][-1].removeprefix("--command=")
    installs = [step for step in script.split(" && ") if "pip install" in step]
    # the wheel without its dependencies (no Beam, PySpark, LTP, jieba, tokenizers), then what the runner imports
    # besides TensorFlow: setup.py's pretrain extra less tensorflow; TensorFlow itself is never pip-installed
    assert installs[0] == "python3 -m pip install --quiet --no-deps wwm/wwm_pipeline-0.1.0-py3-none-any.whl"
    assert shlex.split(installs[1])[5:] == RUNNER_REQUIREMENTS
    assert RUNNER_REQUIREMENTS == [r for r in pretrain_extra() if not r.startswith("tensorflow")]
    assert "tensorflow-tpu" not in script and "libtpu" not in script
    # a multi-host slice gets the -pod runtime; --tpu-version overrides
    assert Settings("p", "b", accelerator_type="v4-16").tpu_runtime == "tpu-vm-tf-2.16.1-pod-pjrt"
    assert Settings("p", "b", accelerator_type="v5litepod-8").tpu_runtime == "tpu-vm-tf-2.16.1-pjrt"
    assert Settings("p", "b", tpu_version="tpu-vm-tf-2.15.0-pjrt").tpu_runtime == "tpu-vm-tf-2.15.0-pjrt"
    assert "python3 -m pipeline.pretrain gs://b/wwm/run/shards" in tpu_script(Settings("p", "b"))


def test_the_runners_entry_point_imports_no_stage_engine():
    probe = ("import sys, runpy; sys.argv = ['x', '--help']\n"
             "try:\n    runpy.run_module('pipeline.pretrain', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "bad = sorted({m.split('.')[0] for m in sys.modules} & {'apache_beam', 'pyspark', 'ltp', 'ltp_extension', "
             "'jieba', 'tokenizers', 'yaml', 'opencc', 'lxml', 'pandas', 'matplotlib', 'tensorflow'})\n"
             "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--num_warmup_steps" in done.stdout


def test_real_mode_submits_stages_on_gs_paths(tmp_path):
    # the stages read and write gs:// (tests/test_gcs.py), so nothing refuses INPUT/OUTPUT on the bucket any more:
    # the target goes straight to its gcloud command (not found here: exit 127)
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "jobs", "dataproc-submit", *BASE], cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": str(empty)}, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 127, done.stderr
    assert "gcloud not found" in done.stderr
    assert done.stdout.startswith("+ gcloud dataproc jobs submit pyspark ")
    assert "--output gs://bkt/wwm/run" in done.stdout


def test_real_mode_runs_the_commands_in_order_and_stops_at_the_first_failure(tmp_path):
    # dataproc-env for real, where no docker can be found: the zip is built, then the run stops with 127
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "jobs", "dataproc-env", "--project", "p", "--bucket", "b"],
                          cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": str(empty)},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 127, done.stderr
    assert "docker not found" in done.stderr
    assert zipfile.ZipFile(tmp_path / "build" / "jobs" / "wwm_pipeline.zip").testzip() is None
    assert done.stdout.splitlines()[0] == f"+ {sys.executable} -m jobs.pack zip build/jobs/wwm_pipeline.zip"
    assert not (tmp_path / "build" / "jobs" / "wwm-env.tar.gz").exists()


def test_package_zip_is_deterministic_and_importable(tmp_path):
    first, second = build_zip(tmp_path / "a.zip"), build_zip(tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "pipeline/cli.py" in names and "pipeline/_schemas/documents.v1.json" in names
    assert not any("__pycache__" in n for n in names)
    # imported from the zip alone (as Spark's --py-files does), the package finds its schemas
    probe = ("import pipeline.schema as s; assert '.zip' in s.__file__, s.__file__; "
             "print(s.load('segmented').names)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(first)},
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "words" in out.stdout


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_make_targets_print_the_same_commands(target, capsys):
    """`make TARGET DRY_RUN=1` prints what `python -m jobs TARGET --dry-run` does with the same settings."""
    out = subprocess.run(["make", "--no-print-directory", "-s", target, "DRY_RUN=1", "PROJECT=proj-1",
                          "BUCKET=bkt", "TAG=t1", "JOBS_PY=python3"],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert [shlex.split(line) for line in out.stdout.splitlines()] == dry_run(target, capsys=capsys)


def test_light_path_setup_py_builds_the_package_beam_stages(tmp_path):
    """What Beam's stager does with --setup_file (the sdist it uploads for the workers to pip-install)."""
    import tarfile

    from apache_beam.runners.portability.stager import Stager

    sdist = Stager._build_setup_package(str(ROOT / "setup.py"), str(tmp_path), None)
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"setup.py", "pipeline/cli.py", "pipeline/beam/transforms.py", "schemas/documents.v1.json"} <= names
