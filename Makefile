# Two commands set everything up on a fresh machine:
#   make run    virtual environment + install + the main job on the bundled sample (Beam, in-process)
#   make test   virtual environment + install + the whole test suite
# `make help` lists every target and variable.

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
WWM      := $(VENV)/bin/wwm
ENGINE   ?= beam
INPUT    ?=
OUTPUT   ?= build/run-$(ENGINE)
PYTEST_ARGS ?=

SOURCES := setup.py $(shell find pipeline schemas -name '*.py' -o -name '*.json' 2>/dev/null) \
           $(shell find pipeline/sample/corpus -type f 2>/dev/null)

.PHONY: help venv run sample segment-model test bench bench-quality bench-scale ingest clean dedup segment vocab shards pretrain report distclean
.PHONY: test-cluster dataflow-image dataflow-submit dataproc-env dataproc-submit serverless-image serverless-submit tpu-train

help:  ## this list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/' | sort
	@echo
	@echo "Variables: ENGINE=beam|spark (default beam)  INPUT=paths (default: the bundled sample)"
	@echo "           OUTPUT=dir (default build/run-ENGINE)  PYTHON=interpreter for the venv (default python3)"
	@echo "           SEGMENT_MODEL=LTP model dir (default build/ltp-sample, trained on the sample)"
	@echo "Cloud (python -m jobs; see README 'Running on Google Cloud'):"
	@echo "           PROJECT=Google Cloud project (required)  BUCKET=bucket name without gs:// (required)"
	@echo "           REGION=region (default us-central1)  TAG=image tag and job name suffix (default latest)"
	@echo "           INPUT/OUTPUT=gs:// paths (default gs://BUCKET/wwm/input, gs://BUCKET/wwm/run)"
	@echo "           ENGINE is implied: dataflow-* run Beam, dataproc-*/serverless-* run Spark"
	@echo "           DRY_RUN=1 prints the commands instead of running them  JOBS_ARGS=more python -m jobs flags"
	@echo "           (e.g. JOBS_ARGS='--cluster c1 --max-num-workers 50 --tpu t1 --zone europe-west4-a')"

$(VENV)/.installed: $(SOURCES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[test]'
	@touch $@

venv: $(VENV)/.installed  ## create the virtual environment and install the project

build/sample/sample.yaml: $(VENV)/.installed
	$(WWM) sample build/sample

sample: build/sample/sample.yaml  ## write the bundled sample corpus to build/sample (again after a reinstall)

SEGMENT_MODEL ?= build/ltp-sample

$(SEGMENT_MODEL)/config.json: | sample
	$(WWM) train-segmenter build/sample/_segmentation/train.txt --out $(SEGMENT_MODEL)

segment-model: venv $(SEGMENT_MODEL)/config.json  ## a small LTP model trained on the sample (jieba-segmented)

run: venv sample segment-model  ## run ingest, clean, dedup, segment, vocab, shards on INPUT (default: the bundled sample) with ENGINE
	$(WWM) run $(if $(INPUT),$(INPUT),--config build/sample/sample.yaml) --engine $(ENGINE) --output $(OUTPUT) \
	  --segment-model $(SEGMENT_MODEL)
	$(WWM) report $(OUTPUT)

$(VENV)/.neural: $(VENV)/.installed
	$(PY) -m pip install --quiet '.[neural,torch]'
	@touch $@

test: venv $(VENV)/.neural  ## the whole test suite, neural LTP included (a run that collects no test fails)
	$(PY) -m pytest tests $(PYTEST_ARGS)
	$(PY) -m pytest tests/test_pretrain_torch.py $(PYTEST_ARGS)  # torch never beside TensorFlow: its own process

bench-quality: venv  ## whole-word vs token masking A/B with the torch runner (tiny model on CPU): bench/results/quality.json
	$(PY) bench/quality.py

bench-scale: venv  ## every stage at 100 MB and 1 GB of raw input on both engines: bench/results/scale.json (long)
	$(PY) bench/scale.py

bench: venv  ## benchmarks: bench/results/*.json
	$(PY) bench/ingest_clean.py
	$(PY) bench/dedup.py
	$(PY) bench/vocab.py
	$(PY) bench/shards.py
	$(PY) bench/pretrain.py
	$(PY) bench/end_to_end.py

ingest: venv sample  ## one stage: wwm ingest INPUT (default: the bundled sample) -> OUTPUT/ingest
	$(WWM) ingest $(if $(INPUT),$(INPUT),--config build/sample/sample.yaml) --engine $(ENGINE) --output $(OUTPUT)

clean: venv  ## one stage: OUTPUT/ingest -> OUTPUT/clean
	$(WWM) clean --engine $(ENGINE) --output $(OUTPUT)

dedup: venv  ## one stage: OUTPUT/clean -> OUTPUT/dedup
	$(WWM) dedup --engine $(ENGINE) --output $(OUTPUT)

segment: venv segment-model  ## one stage: OUTPUT/dedup -> OUTPUT/segment
	$(WWM) segment --engine $(ENGINE) --output $(OUTPUT) --segment-model $(SEGMENT_MODEL)

VOCAB_ARGS ?=

vocab: venv  ## one stage: OUTPUT/segment -> OUTPUT/vocab (VOCAB_ARGS, e.g. --vocab FILE or --vocab-size N)
	$(WWM) vocab --engine $(ENGINE) --output $(OUTPUT) $(VOCAB_ARGS)

SHARDS_ARGS ?=

shards: venv  ## one stage: OUTPUT/segment + OUTPUT/vocab -> OUTPUT/shards (SHARDS_ARGS, e.g. --vocab FILE --shards-dupe-factor 5)
	$(WWM) shards --engine $(ENGINE) --output $(OUTPUT) $(SHARDS_ARGS)

TPU ?=
PRETRAIN_ARGS ?=

pretrain: venv  ## pretrain from OUTPUT/shards with TensorFlow (TPU=name|local for a TPU; PRETRAIN_ARGS, e.g. --preset base)
	$(WWM) pretrain $(OUTPUT)/shards --output_dir $(OUTPUT)/pretrain $(if $(TPU),--tpu $(TPU)) $(PRETRAIN_ARGS)

report: venv  ## summarise OUTPUT's stats
	$(WWM) report $(OUTPUT)

test-cluster: venv  ## the cluster tests: a Spark standalone master + 2 workers on loopback run the job, and lose executors mid-stage (a few minutes)
	WWM_CLUSTER_TESTS=1 $(PY) -m pytest tests/test_spark_cluster.py tests/test_jobs_cluster.py $(PYTEST_ARGS)
	WWM_CLUSTER_TESTS=1 $(PY) -m pytest tests/reliability -m cluster $(PYTEST_ARGS)

# ---- Google Cloud: each target is `python -m jobs TARGET`; DRY_RUN=1 prints its commands
PROJECT  ?=
BUCKET   ?=
REGION   ?= us-central1
TAG      ?= latest
JOBS_ARGS ?=
JOBS_PY  ?= $(PY)
# INPUT and OUTPUT go to the cloud targets only when given (make's defaults are local paths)
CLOUD_IO = $(if $(INPUT),--input $(INPUT)) $(if $(filter command line environment,$(origin OUTPUT)),--output $(OUTPUT))
JOBS = $(JOBS_PY) -m jobs $@ $(if $(DRY_RUN),--dry-run) --project '$(PROJECT)' --bucket '$(BUCKET)' \
	--region $(REGION) --tag $(TAG) --python $(JOBS_PY) $(CLOUD_IO) $(JOBS_ARGS)
CLOUD_DEPS = $(if $(DRY_RUN),,venv)

dataflow-image: $(CLOUD_DEPS)  ## build and push the Dataflow worker image (jobs/Dockerfile, LTP model baked in)
	@$(JOBS)

dataflow-submit: $(CLOUD_DEPS)  ## wwm run INPUT on Dataflow (Beam DataflowRunner, the worker image)
	@$(JOBS)

dataproc-env: $(CLOUD_DEPS)  ## pack the Python env (conda-pack, in docker) and the package zip; copy to gs://BUCKET/wwm/dist
	@$(JOBS)

dataproc-submit: $(CLOUD_DEPS)  ## wwm run INPUT as a Dataproc cluster job (gcloud dataproc jobs submit pyspark)
	@$(JOBS)

serverless-image: $(CLOUD_DEPS)  ## build and push the Dataproc Serverless container (jobs/serverless.Dockerfile)
	@$(JOBS)

serverless-submit: $(CLOUD_DEPS)  ## wwm run INPUT as a Dataproc Serverless batch (--container-image)
	@$(JOBS)

tpu-train: $(CLOUD_DEPS)  ## create a TPU VM and run wwm pretrain --tpu local on OUTPUT/shards from the bucket
	@$(JOBS)

distclean:  ## remove the virtual environment and build outputs
	rm -rf $(VENV) build
