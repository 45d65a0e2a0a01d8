"""The commands of each cloud target, as argv lists built from one set of settings.

A target is a function ``settings -> list of commands``; nothing here runs anything (``jobs.__main__``
prints or runs the lists). Local paths in the commands are relative to the repository root, where
``make`` and ``python -m jobs`` run.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

VERSION = "0.1.0"                        # setup.py's version: the wheel's name
WHEEL = f"wwm_pipeline-{VERSION}-py3-none-any.whl"
BEAM_IMAGE = "apache/beam_python3.11_sdk:2.77.0"
CONTAINER_MODEL = "/opt/wwm/ltp-model"   # where jobs/Dockerfile puts the LTP model
# Google's TensorFlow route on TPU VMs: a tpu-vm-tf-X.Y.Z[-pod]-pjrt software version, TensorFlow for TPU
# preinstalled (docs: "TPU software versions"); nothing of TensorFlow is pip-installed over it.
TPU_TF_VERSION = "2.16.1"
# what the runner imports besides TensorFlow and NumPy: setup.py's "pretrain" extra without tensorflow
# (tests/test_jobs.py checks the two lists agree)
RUNNER_REQUIREMENTS = ["pyarrow>=18,<26", "google-crc32c>=1.5,<2"]


@dataclass
class Settings:
    """Everything a target needs; the Makefile's variables map onto these."""

    project: str
    bucket: str                          # name, without gs://
    region: str = "us-central1"
    input: str = ""                      # default gs://BUCKET/wwm/input
    output: str = ""                     # default gs://BUCKET/wwm/run
    tag: str = "latest"                  # image tag and job-name suffix
    python: str = "python3"              # interpreter that runs the local steps and wwm
    repository: str = "wwm"              # Artifact Registry repository
    image: str = ""                      # Dataflow worker image (default: Artifact Registry, see image_name)
    wwm_args: list[str] = field(default_factory=list)   # extra wwm run flags (stage options)
    # Dataflow
    job_name: str = ""
    machine_type: str = "n2-highmem-4"
    max_num_workers: int = 20
    harness_threads: int = 4
    experiments: list[str] = field(default_factory=lambda: ["no_use_multiple_sdk_containers"])
    light: bool = False                  # --setup_file instead of the worker image (jieba, no LTP model)
    ltp_model: str = "build/ltp-model"   # LTP model directory baked into the image
    # Dataproc
    cluster: str = "wwm"
    executor_memory: str = "8g"
    executor_cores: int = 4
    serverless_image: str = ""
    runtime_version: str = "3.0"          # Spark 4.0 (2.2 LTS has Spark 3.5); the project pins PySpark 4.1
    # TPU
    tpu: str = "wwm-tpu"
    zone: str = "us-central1-a"
    accelerator_type: str = "v3-8"
    tpu_version: str = ""                # default: tpu-vm-tf-TPU_TF_VERSION[-pod]-pjrt (see tpu_runtime)
    pretrain_args: list[str] = field(default_factory=list)
    delete_tpu: bool = False
    spot: bool = False                   # a Spot TPU VM (cheaper, preemptible: rerun tpu-train to resume)

    def gs(self, *parts: str) -> str:
        return "/".join([f"gs://{self.bucket}", *parts])

    @property
    def run_input(self) -> str:
        return self.input or self.gs("wwm", "input")

    @property
    def run_output(self) -> str:
        return (self.output or self.gs("wwm", "run")).rstrip("/")

    @property
    def dist(self) -> str:
        """Where the built artefacts (zip, packed env, wheel) are staged."""
        return self.gs("wwm", "dist")

    def image_name(self, name: str = "dataflow") -> str:
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.repository}/{name}:{self.tag}"

    @property
    def worker_image(self) -> str:
        return self.image or self.image_name("dataflow")

    @property
    def tpu_runtime(self) -> str:
        """The TPU VM software version: ``tpu_version``, else Google's TensorFlow one for this accelerator
        (``-pod`` for a multi-host slice: more than 8 cores or chips, e.g. v3-32, v4-16, v5litepod-16)."""
        if self.tpu_version:
            return self.tpu_version
        size = self.accelerator_type.rsplit("-", 1)[-1]
        pod = "-pod" if size.isdigit() and int(size) > 8 else ""
        return f"tpu-vm-tf-{TPU_TF_VERSION}{pod}-pjrt"

    @property
    def batch_image(self) -> str:
        return self.serverless_image or self.image_name("serverless")


def _wwm(s: Settings, *engine_args: str) -> list[str]:
    """``wwm run INPUT --output OUTPUT ...`` (the argv after the program)."""
    return ["run", s.run_input, "--output", s.run_output, *engine_args, *s.wwm_args]


# ------------------------------------------------------------------------------------------------ Dataflow

def dataflow_image(s: Settings) -> list[list[str]]:
    """Build the worker image (jobs/Dockerfile, the repo root as context) and push it."""
    return [
        ["docker", "build", "--file", "jobs/Dockerfile", "--build-arg", f"LTP_MODEL={s.ltp_model}",
         "--tag", s.worker_image, "."],
        ["docker", "push", s.worker_image],
    ]


def dataflow_pipeline_args(s: Settings) -> list[str]:
    """Beam pipeline options of a Dataflow run (they parse with ``PipelineOptions``)."""
    args = [
        f"--project={s.project}",
        f"--region={s.region}",
        f"--temp_location={s.gs('wwm', 'tmp')}",
        f"--staging_location={s.gs('wwm', 'staging')}",
        f"--job_name={s.job_name or 'wwm-' + s.tag.replace('.', '-').replace('_', '-').lower()}",
        f"--max_num_workers={s.max_num_workers}",
        f"--machine_type={s.machine_type}",
        *[f"--experiments={e}" for e in s.experiments],
        f"--number_of_worker_harness_threads={s.harness_threads}",
    ]
    if s.light:
        args.append("--setup_file=./setup.py")
    else:
        args.append(f"--sdk_container_image={s.worker_image}")
    return args


def dataflow_submit(s: Settings) -> list[list[str]]:
    """``wwm run`` on Beam with the DataflowRunner: each stage is one Dataflow job."""
    segment = (["--segment-segmenter", "jieba"] if s.light else ["--segment-model", CONTAINER_MODEL])
    return [[s.python, "-m", "pipeline.cli", *_wwm(
        s, "--engine", "beam", "--beam-runner", "DataflowRunner",
        "--beam-pipeline-args", shlex.join(dataflow_pipeline_args(s)), *segment)]]


# ------------------------------------------------------------------------------------------------ Dataproc

ZIP = "build/jobs/wwm_pipeline.zip"
ENV_TAR = "build/jobs/wwm-env.tar.gz"
CONDA_IMAGE = "condaforge/miniforge3:24.11.3-0"


def dataproc_env(s: Settings) -> list[list[str]]:
    """The packed environment (conda-pack, interpreter included) and the package zip, staged to the bucket.

    The environment is built in a Linux container so that it matches the cluster's OS whatever the
    submitting machine is; jobs/pack_env.sh does the work inside it.
    """
    return [
        [s.python, "-m", "jobs.pack", "zip", ZIP],
        ["docker", "run", "--rm", "--volume", ".:/src", "--workdir", "/src", CONDA_IMAGE,
         "bash", "jobs/pack_env.sh", ENV_TAR],
        ["gcloud", "storage", "cp", ZIP, ENV_TAR, s.dist + "/"],
    ]


def spark_properties(props: dict[str, str]) -> str:
    """gcloud's ``--properties`` with '#' as the separator (values may hold commas)."""
    return "^#^" + "#".join(f"{k}={v}" for k, v in props.items())


def dataproc_submit(s: Settings) -> list[list[str]]:
    """A cluster job: the package zip in --py-files, the packed env in --archives, YARN cluster mode."""
    props = {
        "spark.submit.deployMode": "cluster",
        "spark.pyspark.python": "./environment/bin/python",
        "spark.pyspark.driver.python": "./environment/bin/python",
        "spark.executor.memory": s.executor_memory,
        "spark.executor.cores": str(s.executor_cores),
        "spark.task.cpus": "1",
    }
    return [[
        "gcloud", "dataproc", "jobs", "submit", "pyspark", "jobs/spark_entry.py",
        f"--project={s.project}", f"--region={s.region}", f"--cluster={s.cluster}",
        f"--py-files={s.dist}/wwm_pipeline.zip",
        f"--archives={s.dist}/wwm-env.tar.gz#environment",
        f"--properties={spark_properties(props)}",
        "--", *_wwm(s, "--engine", "spark", "--spark-master", "yarn"),
    ]]


def serverless_image(s: Settings) -> list[list[str]]:
    """The Serverless container (no Spark inside: Dataproc mounts its own)."""
    return [
        ["docker", "build", "--file", "jobs/serverless.Dockerfile", "--tag", s.batch_image, "."],
        ["docker", "push", s.batch_image],
    ]


def serverless_submit(s: Settings) -> list[list[str]]:
    """A Serverless batch on the project's container image (which holds the package and its deps)."""
    props = {
        "spark.executor.memory": s.executor_memory,
        "spark.executor.cores": str(s.executor_cores),
        "spark.dynamicAllocation.maxExecutors": str(s.max_num_workers),
    }
    batch = f"wwm-{s.tag}".replace(".", "-").replace("_", "-").lower()
    return [[
        "gcloud", "dataproc", "batches", "submit", "pyspark", "jobs/spark_entry.py",
        f"--project={s.project}", f"--region={s.region}", f"--batch={batch}",
        f"--version={s.runtime_version}", f"--container-image={s.batch_image}",
        f"--deps-bucket={s.gs()}", f"--properties={spark_properties(props)}",
        "--", *_wwm(s, "--engine", "spark", "--spark-master", "yarn"),
    ]]


# ------------------------------------------------------------------------------------------------ TPU

def tpu_script(s: Settings) -> str:
    """What runs on the TPU VM (in the login directory): install the staged wheel without its dependencies
    and the runner's two others (TensorFlow for TPU comes with the ``tpu-vm-tf-*`` software version; Beam,
    PySpark, LTP and the rest of the pipeline are not installed), then ``python -m pipeline.pretrain --tpu
    local`` (``wwm pretrain`` without the rest of ``wwm``) on the shards in the bucket, then copy the run back.

    tf.data reads the shards (and the runner the manifest) from gs:// directly. The vocab (a small file) is
    copied beside the run so that the exports include it. ``wwm pretrain`` writes its output directory
    through local paths, so the run goes to the VM's disk and is copied to OUTPUT/pretrain when training
    ends or fails; an earlier run's output is copied down first, so a second ``tpu-train`` resumes.
    """
    shards, out = f"{s.run_output}/shards", f"{s.run_output}/pretrain"
    pretrain = ["python3", "-m", "pipeline.pretrain", shards, "--output_dir", "wwm/pretrain",
                "--tpu", "local", "--vocab", "wwm/vocab.txt", *s.pretrain_args]
    steps = [
        "mkdir -p wwm/pretrain",
        f"gcloud storage cp {s.dist}/{WHEEL} wwm/",
        f"python3 -m pip install --quiet --no-deps wwm/{WHEEL}",
        f"python3 -m pip install --quiet {shlex.join(RUNNER_REQUIREMENTS)}",
        'python3 -c "import tensorflow as tf; print(\'TensorFlow\', tf.__version__)"',
        f"gcloud storage cp {s.run_output}/vocab/vocab.txt wwm/vocab.txt",
        f"(gcloud storage rsync --recursive {out} wwm/pretrain || true)",
    ]
    # the run is copied back whether training finished or failed (checkpoints to resume from)
    return (" && ".join(steps) + f" && {{ {shlex.join(pretrain)}; code=$?; "
            f"gcloud storage rsync --recursive wwm/pretrain {out}; exit $code; }}")


def tpu_train(s: Settings) -> list[list[str]]:
    where = [f"--project={s.project}", f"--zone={s.zone}"]
    commands = [
        [s.python, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", "build/jobs", "."],
        ["gcloud", "storage", "cp", f"build/jobs/{WHEEL}", s.dist + "/"],
        ["gcloud", "compute", "tpus", "tpu-vm", "create", s.tpu, *where,
         f"--accelerator-type={s.accelerator_type}", f"--version={s.tpu_runtime}", *(["--spot"] if s.spot else [])],
        ["gcloud", "compute", "tpus", "tpu-vm", "ssh", s.tpu, *where, "--worker=all",
         f"--command={tpu_script(s)}"],
    ]
    if s.delete_tpu:
        commands.append(["gcloud", "compute", "tpus", "tpu-vm", "delete", s.tpu, *where, "--quiet"])
    return commands


TARGETS = {
    "dataflow-image": dataflow_image,
    "dataflow-submit": dataflow_submit,
    "dataproc-env": dataproc_env,
    "dataproc-submit": dataproc_submit,
    "serverless-image": serverless_image,
    "serverless-submit": serverless_submit,
    "tpu-train": tpu_train,
}
