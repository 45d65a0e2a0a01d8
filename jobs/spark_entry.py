"""The main file Dataproc (``jobs submit pyspark``, ``batches submit pyspark``) and ``spark-submit`` run.

Its arguments are ``wwm``'s: ``spark_entry.py run INPUT --engine spark --spark-master yarn --output gs://...``.
The ``pipeline`` package comes from ``--py-files`` (the zip ``python -m jobs.pack`` builds) or from the
packed environment / container image it is installed in.
"""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
