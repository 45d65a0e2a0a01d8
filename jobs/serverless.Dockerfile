# Dataproc Serverless container: Python 3.11, the project and its pinned dependencies, no Spark (Serverless
# mounts its own Spark and Java into the container). Build from the repository root (make serverless-image):
#   docker build --file jobs/serverless.Dockerfile --tag IMAGE .
FROM python:3.11-slim-bookworm

# Serverless runs the container as user spark (uid 1099); procps for Spark's scripts; tini as init
RUN apt-get update && apt-get install -y --no-install-recommends procps tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1099 spark && useradd --uid 1099 --gid 1099 --create-home spark
ARG LTP_MODEL=build/ltp-model
WORKDIR /opt/wwm/src
COPY setup.py README.md ./
COPY pipeline ./pipeline
COPY schemas ./schemas
# pyspark comes from Serverless at run time; the project's pin installs the matching Python side
RUN pip install --no-cache-dir . && pip check
COPY ${LTP_MODEL} /opt/wwm/ltp-model
ENV PYSPARK_PYTHON=/usr/local/bin/python3.11
USER spark
