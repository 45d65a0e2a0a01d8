"""``python -m pipeline.sample OUT_DIR``: write the bundled sample corpus under OUT_DIR."""

import sys

from pipeline.sample import write_sample

if len(sys.argv) != 2:
    print("usage: python -m pipeline.sample OUT_DIR", file=sys.stderr)
    sys.exit(2)
for path in write_sample(sys.argv[1]):
    print(path)
