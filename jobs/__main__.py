"""``python -m jobs TARGET [--dry-run] --project P --bucket B [options]``: submit to Google Cloud.

``--dry-run`` prints the commands, one a line, shell-quoted, and runs nothing; without it they run in
order and the first that fails stops the target. The stages of ``wwm run`` read and write gs:// paths
(``pipeline.storage``), so INPUT and OUTPUT default to the bucket.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from jobs.targets import TARGETS, Settings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", choices=sorted(TARGETS))
    p.add_argument("--dry-run", action="store_true", help="print the commands and run nothing")
    d = Settings("", "")
    g = p.add_argument_group("common")
    g.add_argument("--project", required=True, help="Google Cloud project id")
    g.add_argument("--bucket", required=True, help="bucket name (no gs://): staging, temp, dist, default I/O")
    g.add_argument("--region", default=d.region)
    g.add_argument("--input", default="", help="wwm run INPUT (default gs://BUCKET/wwm/input)")
    g.add_argument("--output", default="", help="wwm run --output (default gs://BUCKET/wwm/run)")
    g.add_argument("--tag", default=d.tag, help="image tag and job/batch name suffix")
    g.add_argument("--python", default=sys.executable, help="interpreter for local steps and wwm")
    g.add_argument("--repository", default=d.repository, help="Artifact Registry repository of the images")
    g.add_argument("--wwm-args", default="", help="extra 'wwm run' flags, one shell-quoted string")
    g = p.add_argument_group("Dataflow")
    g.add_argument("--image", default="", help="worker image (default REGION-docker.pkg.dev/PROJECT/"
                   "REPOSITORY/dataflow:TAG)")
    g.add_argument("--job-name", default="", help="Dataflow job name (default wwm-TAG)")
    g.add_argument("--machine-type", default=d.machine_type)
    g.add_argument("--max-num-workers", type=int, default=d.max_num_workers)
    g.add_argument("--harness-threads", type=int, default=d.harness_threads,
                   help="--number_of_worker_harness_threads: threads (and LTP copies) per worker")
    g.add_argument("--experiment", action="append", dest="experiments", default=None,
                   help=f"Dataflow experiment, repeatable (default {','.join(d.experiments)})")
    g.add_argument("--light", action="store_true",
                   help="ship the package with --setup_file (jieba segmenter, no worker image)")
    g.add_argument("--ltp-model", default=d.ltp_model, help="LTP model directory baked into the image")
    g = p.add_argument_group("Dataproc")
    g.add_argument("--cluster", default=d.cluster)
    g.add_argument("--executor-memory", default=d.executor_memory)
    g.add_argument("--executor-cores", type=int, default=d.executor_cores)
    g.add_argument("--serverless-image", default="",
                   help="Serverless container (default REGION-docker.pkg.dev/PROJECT/REPOSITORY/serverless:TAG)")
    g.add_argument("--runtime-version", default=d.runtime_version, help="Serverless runtime version")
    g = p.add_argument_group("TPU")
    g.add_argument("--tpu", default=d.tpu, help="TPU VM name")
    g.add_argument("--zone", default=d.zone)
    g.add_argument("--accelerator-type", default=d.accelerator_type)
    g.add_argument("--tpu-version", default=d.tpu_version,
                   help="TPU VM software version (default: tpu-vm-tf-2.16.1-pjrt, tpu-vm-tf-2.16.1-pod-pjrt for a "
                        "multi-host slice: Google's TensorFlow runtime, TensorFlow preinstalled)")
    g.add_argument("--pretrain-args", default="", help="extra 'wwm pretrain' flags, one shell-quoted string")
    g.add_argument("--delete-tpu", action="store_true", help="delete the TPU VM when training ends")
    g.add_argument("--spot", action="store_true", help="create a Spot TPU VM (preemptible; tpu-train again resumes)")
    return p


def settings_from_args(args: argparse.Namespace) -> Settings:
    d = Settings("", "")
    return Settings(
        project=args.project, bucket=args.bucket.removeprefix("gs://").rstrip("/"), region=args.region,
        input=args.input, output=args.output, tag=args.tag, python=args.python, repository=args.repository,
        image=args.image, wwm_args=shlex.split(args.wwm_args), job_name=args.job_name,
        machine_type=args.machine_type, max_num_workers=args.max_num_workers,
        harness_threads=args.harness_threads, experiments=args.experiments or d.experiments,
        light=args.light, ltp_model=args.ltp_model, cluster=args.cluster, executor_memory=args.executor_memory,
        executor_cores=args.executor_cores, serverless_image=args.serverless_image,
        runtime_version=args.runtime_version, tpu=args.tpu, zone=args.zone,
        accelerator_type=args.accelerator_type, tpu_version=args.tpu_version,
        pretrain_args=shlex.split(args.pretrain_args),
        delete_tpu=args.delete_tpu, spot=args.spot)


def commands(argv: list[str]) -> tuple[str, list[list[str]], argparse.Namespace]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.project or not args.bucket.removeprefix("gs://").strip("/"):
        parser.error("--project and --bucket must not be empty (make: PROJECT=... BUCKET=...)")
    return args.target, TARGETS[args.target](settings_from_args(args)), args


def main(argv: list[str] | None = None) -> int:
    target, cmds, args = commands(sys.argv[1:] if argv is None else argv)
    if args.dry_run:
        for cmd in cmds:
            print(shlex.join(cmd))
        return 0
    for cmd in cmds:
        print("+", shlex.join(cmd), flush=True)
        try:
            code = subprocess.run(cmd, check=False).returncode
        except FileNotFoundError:
            print(f"python -m jobs {target}: {cmd[0]} not found (install it: see jobs/README.md)", file=sys.stderr)
            return 127
        if code:
            print(f"python -m jobs {target}: exit {code} from {cmd[0]}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
