"""tests/spark_cluster.py itself: workers register, executors are listed and one can be killed mid-stage (Spark
reruns its tasks), and leaving the block stops every process it started. Runs with make test-cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from spark_cluster import _alive, descendants, standalone_cluster

pytestmark = pytest.mark.skipif(not os.environ.get("WWM_CLUSTER_TESTS"),
                                reason="cluster tests run with make test-cluster (WWM_CLUSTER_TESTS=1)")

JOB = """
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("squares").getOrCreate()
print("RESULT", spark.sparkContext.parallelize(range(200), 8).map(lambda x: (time.sleep(0.2), x * x)[1]).sum())
"""


def test_an_executor_killed_mid_stage_is_replaced_and_the_job_finishes(tmp_path):
    job = tmp_path / "squares.py"
    job.write_text(JOB)
    with standalone_cluster(workers=2, cores_per_worker=1, memory="1g") as cluster:
        assert cluster.alive_workers() == 2 and cluster.master_url.startswith("spark://127.0.0.1:")
        started = [p.pid for p in (cluster.master, *cluster.workers)]
        submit = subprocess.Popen([cluster.spark_submit, "--master", cluster.master_url,
                                   "--conf", f"spark.pyspark.python={sys.executable}", str(job)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)
        first = cluster.wait_for_executors(2)
        time.sleep(3)                                  # tasks are running on both executors
        killed = cluster.kill_executor(first[0])
        assert killed == first[0]
        replaced = False                               # the master starts a new executor for the app
        while submit.poll() is None and not replaced:
            replaced = any(pid not in first for pid in cluster.executor_pids())
            time.sleep(0.2)
        out, err = submit.communicate(timeout=300)
        assert submit.returncode == 0, err[-5000:]
        assert f"RESULT {sum(x * x for x in range(200))}" in out
        assert replaced and killed not in cluster.executor_pids()
        tree = [pid for p in started for pid in descendants(p)]
    for pid in started + tree:
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), pid
