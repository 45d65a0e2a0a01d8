#!/usr/bin/env bash
# Build a relocatable Python 3.11 environment holding the project and its pinned dependencies, packed with
# conda-pack (the interpreter is inside the archive, unlike venv-pack's symlinks, so the cluster nodes need
# no matching Python). Run inside a Linux conda image from the repository root (make dataproc-env does:
#   docker run --rm --volume .:/src --workdir /src condaforge/miniforge3:24.11.3-0 bash jobs/pack_env.sh OUT
# ). Dataproc extracts OUT on every node as ./environment (--archives OUT#environment).
set -euo pipefail
out=${1:?usage: pack_env.sh OUT.tar.gz}
env=/tmp/wwm-env
conda install --yes --quiet --name base conda-pack
conda create --yes --quiet --prefix "$env" python=3.11
"$env/bin/python" -m pip install --quiet --no-cache-dir .
"$env/bin/python" -m pip check
"$env/bin/python" -c "import pipeline.schema, pyspark, pyarrow; pipeline.schema.load('documents')"
mkdir -p "$(dirname "$out")"
conda-pack --prefix "$env" --output "$out" --force
echo "packed $out"
