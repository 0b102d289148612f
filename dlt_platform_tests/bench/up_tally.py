"""`dlt-platform up --once` again and again, each on fresh state and data folders, and the tally of its runs.

    .venv/bin/python -m dlt_platform_tests.bench.up_tally --times 10

Each start requests a run of every enabled sample source at once (they collide on the local DuckDB file unless runs
take turns); a start counts as green when every run succeeded. Needs the ports `up` uses (8787, 3000, 8790) free.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STATUS = re.compile(r"^\S+\s+run_\S+\s+(?P<status>queued|launching|launched|running|succeeded|failed|canceled|dead_lettered)\b")


def one_start(number: int, timeout: float) -> tuple[bool, dict[str, int], float]:
    with tempfile.TemporaryDirectory(prefix=f"up-tally-{number}-") as folder:
        env = {**os.environ, "DLT_PLATFORM_DATA_DIR": str(Path(folder) / "data"), "COLUMNS": "200"}
        started = time.monotonic()
        up = subprocess.Popen([str(Path(sys.executable).parent / "dlt-platform"), "up", "--once",
                               "--state-dir", str(Path(folder) / "state")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = up.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            up.terminate()  # `up` stops everything it started on SIGTERM
            stdout, stderr = up.communicate(timeout=120)
            stderr += f"\n(stopped after {timeout:.0f} s)"
        result = subprocess.CompletedProcess(up.args, up.returncode, stdout, stderr)
        seconds = time.monotonic() - started
    statuses: dict[str, int] = {}
    for line in result.stdout.splitlines():
        match = STATUS.match(line.strip())
        if match:
            statuses[match["status"]] = statuses.get(match["status"], 0) + 1
    green = result.returncode == 0 and statuses and set(statuses) == {"succeeded"}
    if not green:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n", file=sys.stderr)
    return bool(green), statuses, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one start may take")
    args = parser.parse_args()
    green = 0
    for number in range(1, args.times + 1):
        ok, statuses, seconds = one_start(number, args.timeout)
        green += ok
        runs = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())) or "no runs"
        print(f"start {number:2d}: {'green' if ok else 'RED'}  {runs}  ({seconds:.0f} s)", flush=True)
    print(f"{green} of {args.times} starts had every enabled sample source succeed")
    return 0 if green == args.times else 1


if __name__ == "__main__":
    sys.exit(main())
