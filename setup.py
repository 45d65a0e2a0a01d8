"""Install the ``pipeline`` package and the ``wwm`` command.

The schema JSON files under ``schemas/`` are installed as the package data
``pipeline._schemas`` (``pipeline/schema.py`` finds them there, or in the
source tree); the bundled sample corpus as the package data of ``pipeline.sample``
(``pipeline/sample/corpus/``, read with ``importlib.resources``).
"""

from setuptools import find_packages, setup

# Versions that resolve together on Python 3.11: apache-beam 2.77 needs pyarrow < 26 and
# protobuf < 7; TensorFlow 2.21 (the pretrain extra) needs protobuf >= 6.31; pandas < 2.4.
CORE = [
    "apache-beam==2.77.0",
    "pyspark==4.1.4",
    "pyarrow>=18,<26",
    "protobuf>=6.31,<7",
    "pandas>=2.2,<2.4",
    "numpy>=1.26,<3",
    "opencc==1.4.2",
    "lxml>=5.2,<7",
    "PyYAML>=6.0,<7",
    "ltp-extension==0.1.13",
    "jieba==0.42.1",
    "tokenizers==0.22.2",   # transformers 4.x (the neural extra) needs <= 0.23.0
    "google-crc32c>=1.5,<2",
    "matplotlib==3.11.2",      # the plots of the HTML report (wwm report)
]

setup(
    name="wwm-pipeline",
    version="0.1.0",
    description="Raw Chinese text to whole-word-masked BERT pretraining data on Apache Beam and PySpark",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["pipeline", "pipeline.*"]) + ["pipeline._schemas"],
    package_dir={"pipeline._schemas": "schemas"},
    package_data={"pipeline._schemas": ["*.json", "README.md"], "pipeline.sample": ["corpus/**/*"]},
    install_requires=CORE,
    extras_require={
        # TensorFlow parses the shards back in the tests (tf.data + tf.io.parse_single_example); the GCS emulator
        # serves gs:// to tests/test_gcs.py (a real HTTP server for the GCS JSON API, no network); Hugging Face
        # datasets and DuckDB load the Parquet shards (datasets 4.x: 5.x wants huggingface-hub 2, tokenizers < 2)
        "test": ["pytest>=8,<10", "tensorflow-cpu==2.21.0", "gcp-storage-emulator==2026.7.19", "datasets==4.8.5",
                 "duckdb==2.0.0"],
        # neural LTP: torch 2.13.0 (a local CPU wheel on these machines) and the ltp package; never import it
        # in a process that imports TensorFlow
        # (ltp 4.2.14 calls tokenizer.batch_encode_plus, which transformers 5 removed)
        "neural": ["torch==2.13.0", "ltp==4.2.14", "transformers>=4.30,<5"],
        # the pretraining runner (pipeline/pretrain, `python -m pipeline.pretrain`): TensorFlow 2.20-2.21 (install
        # tensorflow[and-cuda] for GPUs), and the two packages it imports besides TensorFlow and NumPy. On a TPU VM
        # (tpu-vm-tf-2.16.1-pjrt, TensorFlow preinstalled) `tpu-train` installs the wheel with --no-deps and only
        # these two (jobs/targets.py RUNNER_REQUIREMENTS). Never in a process that imports torch.
        "pretrain": ["tensorflow>=2.20,<2.22", "pyarrow>=18,<26", "google-crc32c>=1.5,<2"],
        # the PyTorch runner (wwm pretrain --framework torch, pipeline/pretrain_torch): GPUs without TensorFlow;
        # never in a process that imports TensorFlow (the google checkpoint export runs TF in a subprocess)
        "torch": ["torch==2.13.0", "transformers>=4.30,<5"],
    },
    entry_points={"console_scripts": ["wwm = pipeline.cli:main"]},
)
