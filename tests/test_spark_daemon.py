"""Spark's Python workers start through ``pipeline.spark.daemon``: no pyspark.zip to re-read for every task."""

import zipfile
from pathlib import Path

import pyspark

from pipeline.spark.daemon import needless_archives
from pipeline.spark.session import get_session

SPARK_PYTHON_LIB = Path(pyspark.__file__).parent / "python" / "lib"


def test_workers_import_pyspark_from_its_package_and_hold_no_zip(tmp_path):
    from conftest import make_config

    spark = get_session(make_config(tmp_path, []))

    def _worker_path(_):     # defined here: pickled by value (the workers cannot import this test module)
        import importlib
        import sys
        import zipimport
        from pathlib import Path

        import pyspark as worker_pyspark

        importlib.invalidate_caches()
        zips = sorted(k for k, v in sys.path_importer_cache.items() if isinstance(v, zipimport.zipimporter))
        return worker_pyspark.__file__, [p for p in sys.path if p.endswith((".zip", ".jar")) and Path(p).exists()], zips

    assert spark.conf.get("spark.python.daemon.module") == "pipeline.spark.daemon"
    results = spark.sparkContext.parallelize(range(4), 4).map(_worker_path).collect()
    for pyspark_file, archives, zip_importers in results:
        assert Path(pyspark_file).parent == Path(pyspark.__file__).parent   # the installed package
        assert archives == [] and zip_importers == []


def test_only_archives_with_an_installed_twin_or_no_python_are_dropped(tmp_path):
    pyspark_zip = str(SPARK_PYTHON_LIB / "pyspark.zip")
    py4j_zip = str(next(SPARK_PYTHON_LIB.glob("py4j-*-src.zip")))
    site = str(Path(pyspark.__file__).parent.parent)
    data_jar = tmp_path / "data.jar"
    with zipfile.ZipFile(data_jar, "w") as z:
        z.writestr("org/Thing.class", b"\xca\xfe")
    code_zip = tmp_path / "code.zip"
    with zipfile.ZipFile(code_zip, "w") as z:
        z.writestr("mymodule.py", "x = 1\n")
    path = [pyspark_zip, py4j_zip, str(data_jar), str(code_zip), site]
    assert needless_archives(path) == [pyspark_zip, py4j_zip, str(data_jar)]
    # no installed pyspark beside them (a cluster image with only $SPARK_HOME): the zips stay
    assert needless_archives([pyspark_zip, py4j_zip, str(tmp_path)]) == []
    # another pyspark version installed: the zip stays
    other = tmp_path / "other" / "pyspark"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("")
    (other / "version.py").write_text('__version__: str = "0.0.1"\n')
    assert needless_archives([pyspark_zip, str(other.parent), site]) == []
