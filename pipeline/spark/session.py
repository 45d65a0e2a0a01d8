"""The Spark session for a run, and Arrow-to-Spark schema conversion."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from pipeline import schema
from pipeline.config import Config
from pipeline.runtime import export_worker_environment

DAEMON_MODULE = "pipeline.spark.daemon"

_TYPES = {
    pa.string(): T.StringType(),
    pa.int64(): T.LongType(),
    pa.int32(): T.IntegerType(),
    pa.float64(): T.DoubleType(),
    pa.float32(): T.FloatType(),
    pa.bool_(): T.BooleanType(),
}


def spark_type(arrow_type: pa.DataType) -> T.DataType:
    if pa.types.is_list(arrow_type):
        return T.ArrayType(spark_type(arrow_type.value_type), containsNull=True)
    return _TYPES[arrow_type]


def spark_schema(table: str) -> T.StructType:
    """The Spark schema of a table defined in ``schemas/``."""
    return T.StructType([T.StructField(f.name, spark_type(f.type), f.nullable) for f in schema.load(table)])


def get_session(config: Config) -> SparkSession:
    """A Spark session on the configured master, with workers on this interpreter and package."""
    env = export_worker_environment()
    builder = (SparkSession.builder
               .appName("wwm")
               .master(config.spark.master)
               .config("spark.driver.memory", config.spark.driver_memory)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.parquet.compression.codec", "snappy")
               .config("spark.executorEnv.PYTHONPATH", env["PYTHONPATH"])
               .config("spark.pyspark.python", env["PYSPARK_PYTHON"]))
    conf = {str(k): str(v) for k, v in config.spark.conf.items()}
    if config.spark.master.startswith("local") and "spark.sql.shuffle.partitions" not in conf:
        conf["spark.sql.shuffle.partitions"] = "8"   # not 200 tiny tasks on a laptop
    if config.spark.master.startswith(("local", "spark://")):
        # workers on this machine import this package from PYTHONPATH: start them through our daemon, which
        # takes pyspark.zip off their path (a re-read of it for every task; see pipeline.spark.daemon)
        conf.setdefault("spark.python.daemon.module", DAEMON_MODULE)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
