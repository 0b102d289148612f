"""Load packages set aside: ones a retry cannot load no longer block their source.

A package left pending by a failed run is loaded first by the next run (loads.finish_pending_loads). If that
fails terminally (dlt says so: a terminal job failure, e.g. rows the warehouse refuses) or fails the same way as
on the previous attempt, the package is set aside: its folder is copied to
`<data_dir>/failed_packages/<source_id>/<load_id>/` with `set_aside.json` (why, when, its package state), then
dlt aborts it (`Pipeline.abort_packages`: the package completes as aborted, its failed jobs kept, the other
pending packages are dropped and the pipeline state goes back to where the package started, so their data is
extracted again). The run goes on and loads new data.

Nothing here knows a source type: a webhook source reads the package states of its set-aside packages to keep
their deliveries out of its next batches (sources/webhook/__init__.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import dlt
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.pipeline.exceptions import PipelineStepFailed

FAILED_PACKAGES = "failed_packages"
# Materialization metadata of a run that set a package aside; the run mirror makes it the run's message in D1.
SET_ASIDE_METADATA = "load_packages_set_aside"
MANIFEST = "set_aside.json"
LAST_FAILURE = "last_failure.json"  # the pending package's last failure, to tell a repeated one
MAX_REASON_CHARS = 2000


def source_dir(data_dir: Path, source_id: str) -> Path:
    return data_dir / FAILED_PACKAGES / source_id


def pipeline_source_dir(pipeline: dlt.Pipeline) -> Path:
    """The set-aside folder of a pipeline built by loads.build_pipeline (pipelines live in <data_dir>/pipelines)."""
    return source_dir(Path(pipeline.pipelines_dir).parent, pipeline.pipeline_name)


@dataclass(frozen=True)
class SetAside:
    load_id: str
    path: Path
    reason: str
    set_aside_at: str
    package_state: dict

    def describe(self) -> str:
        return f"load package {self.load_id} set aside in {self.path}: {self.reason}"


def failure_text(error: BaseException) -> str:
    """The failure in one line: the failed job and the destination's message, not dlt's wrapping of them."""
    cause = error.exception if isinstance(error, PipelineStepFailed) else error
    inner = getattr(cause, "client_exception", None) or cause
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    text = lines[0] if lines else type(inner).__name__
    job = getattr(cause, "job_id", None)
    return (f"job {job}: {text}" if job else text)[:MAX_REASON_CHARS]


def _shape(text: str) -> str:
    # Figures vary between attempts of the same failure ("122.0 MiB/122.0 MiB used"): compare without them.
    return re.sub(r"\d+(\.\d+)?", "#", text)


def is_terminal(error: BaseException) -> bool:
    cause = error.exception if isinstance(error, PipelineStepFailed) else error
    return isinstance(cause, DestinationTerminalException)


def failed_before(pipeline: dlt.Pipeline, load_id: str, reason: str) -> bool:
    """Whether the package failed the same way on its previous attempt (and remember this attempt)."""
    folder = pipeline_source_dir(pipeline)
    path = folder / LAST_FAILURE
    try:
        last = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = {}
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"load_id": load_id, "failure": reason}), encoding="utf-8")
    return last.get("load_id") == load_id and _shape(last.get("failure", "")) == _shape(reason)


def forget_failure(pipeline: dlt.Pipeline) -> None:
    (pipeline_source_dir(pipeline) / LAST_FAILURE).unlink(missing_ok=True)


def set_aside(pipeline: dlt.Pipeline, load_id: str, reason: str) -> SetAside:
    """Keep a copy of the package for inspection, then abort it (and drop the packages after it) with dlt."""
    info = pipeline.get_load_package_info(load_id)
    target = pipeline_source_dir(pipeline) / load_id
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(info.package_path, target)
    state = dict(pipeline.get_load_package_state(load_id))
    moment = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    aside = SetAside(load_id, target, reason, moment, state)
    (target / MANIFEST).write_text(
        json.dumps(
            {
                "load_id": load_id,
                "source_id": pipeline.pipeline_name,
                "reason": reason,
                "set_aside_at": moment,
                "package_state": state,
            },
            default=str,
        ),
        encoding="utf-8",
    )
    pipeline.abort_packages()
    forget_failure(pipeline)
    return aside


def set_aside_packages(data_dir: Path, source_id: str) -> list[SetAside]:
    """The packages a source set aside, oldest first (load ids sort by time)."""
    found = []
    for manifest in sorted(source_dir(data_dir, source_id).glob(f"*/{MANIFEST}")):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a copy cut short: nothing to learn from it
        found.append(
            SetAside(
                data["load_id"],
                manifest.parent,
                data.get("reason", ""),
                data.get("set_aside_at", ""),
                data.get("package_state") or {},
            )
        )
    return sorted(found, key=lambda aside: aside.load_id)
