"""A GCS emulator (the ``gcp-storage-emulator`` package) in its own process, for tests of ``gs://`` paths.

It runs in a child process, not a thread of the test process: pyarrow's ``GcsFileSystem.open_input_file``
holds the GIL while it waits for the server's answer, so an emulator thread in the same interpreter can never
answer it and Parquet reads (random access) hang.  In a child process they work.  The emulator is a real HTTP
server speaking the GCS JSON API (uploads, listings, ranged downloads, copies, deletes); clients reach it
through ``STORAGE_EMULATOR_HOST``, as Google's own clients do.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time

_SERVE = """
import sys, time
from gcp_storage_emulator.server import create_server
server = create_server("127.0.0.1", int(sys.argv[1]), in_memory=True, default_bucket=sys.argv[2])
server.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def emulator(bucket: str = "bkt"):
    """Start the emulator with ``bucket``; yields its ``STORAGE_EMULATOR_HOST`` value (``http://127.0.0.1:PORT``)."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", _SERVE, str(port), bucket], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the GCS emulator did not start (exit {process.poll()})")
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def emulator_env(bucket: str = "bkt"):
    """The emulator, with ``STORAGE_EMULATOR_HOST`` set in this process's environment while it runs."""
    with emulator(bucket) as host:
        old = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = host
        try:
            yield host
        finally:
            if old is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = old
