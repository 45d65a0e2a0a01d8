"""Cloud submission: Dataflow (Beam), Dataproc cluster jobs and Serverless batches (Spark), a TPU VM (runner).

Every target is ``python -m jobs TARGET [options]``; ``--dry-run`` prints the exact commands, one a line,
and runs nothing. The commands only call ``wwm`` (``pipeline.cli``) with engine flags it already has
(``--beam-runner``, ``--beam-pipeline-args``, ``--spark-master``); nothing here is imported by ``pipeline``.
"""
