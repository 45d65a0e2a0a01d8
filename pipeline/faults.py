"""Test-only fault injection: off unless the ``WWM_TEST_FAULTS`` environment variable is set.

The reliability tests use it to make a task fail once, or to hold a task long enough for a test to kill
the worker running it.  The variable holds JSON::

    {"dir": "/tmp/x",                       # marker files go here (must be shared by every worker)
     "fail_once": ["segment", "shards"],    # these steps raise once per task / bundle, at its end
     "pause": {"segment": 3.0}}             # these steps sleep this long at the start of each attempt

A step is named by the stage (``segment``), or ``shards.tokenize`` / ``shards.write`` for the shards
stage's Spark steps (``shards`` matches both).  Each attempt that starts writes ``started-<step>-<key>-<pid>``
(the pid of the Python worker running it), so a test can tell which worker to kill.  ``fail_once`` raises
:class:`InjectedFault` at the end of the first attempt of each (step, key): the key is the Spark partition
index, or the id of a Beam bundle's first element, so the retried attempt (same key) passes.  Nothing
reads the variable unless it is set; no output depends on it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

ENV = "WWM_TEST_FAULTS"


class InjectedFault(RuntimeError):
    """The failure ``fail_once`` asks for."""


def _plan() -> dict | None:
    text = os.environ.get(ENV)
    return json.loads(text) if text else None


def _matches(step: str, names) -> str | None:
    for name in names:
        if step == name or step.startswith(name + "."):
            return name
    return None


def _safe(key) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(key))[:80]


def task_started(step: str, key) -> None:
    """At the start of a task attempt: record it, and pause if asked to."""
    plan = _plan()
    if plan is None:
        return
    directory = Path(plan["dir"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"started-{step}-{_safe(key)}-{os.getpid()}-{uuid.uuid4().hex[:6]}").touch()
    name = _matches(step, plan.get("pause", {}))
    if name:
        time.sleep(float(plan["pause"][name]))


def task_ending(step: str, key) -> None:
    """At the end of a task attempt, before its output is committed: fail the first attempt if asked to."""
    plan = _plan()
    if plan is None or not _matches(step, plan.get("fail_once", [])):
        return
    marker = Path(plan["dir"]) / f"failed-{step}-{_safe(key)}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    raise InjectedFault(f"{step} {key}: injected failure ({ENV}), once")


class Attempt:
    """The one seam the engine adapters call: a task attempt (or a Beam bundle) of ``step`` keyed by ``key``.

    Used as ``with attempt(step, key): ...`` around the work whose output the task commits after the block,
    or as ``started()`` ... ``ending()`` where a bundle's start and end are separate calls.  Nothing happens
    unless ``WWM_TEST_FAULTS`` is set."""

    def __init__(self, step: str, key) -> None:
        self.step, self.key = step, key

    def started(self) -> "Attempt":
        task_started(self.step, self.key)
        return self

    def ending(self) -> None:
        task_ending(self.step, self.key)

    def __enter__(self) -> "Attempt":
        return self.started()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.ending()


def attempt(step: str, key) -> Attempt:
    return Attempt(step, key)
