"""The entrypoint of a run container (run_containers.run_container_command): write $DAGSTER_HOME/dagster.yaml for
this environment (Postgres when DAGSTER_PG_URL is set; a run container starts with an empty disk), then become
Dagster's run worker, `dagster api execute_run ...`, with the same environment.

It imports nothing of Dagster's: the run worker it becomes imports Dagster, dlt and the code location afresh, and
this step imported all of Dagster first (about 1 s of CPU a run on a quiet core, 2 s on busy CI cores).
"""

from __future__ import annotations

import os
import sys

from dlt_platform.orchestration.instance import prepare_dagster_home


def main(argv: list[str]) -> None:
    if not argv:
        print(
            "usage: python -m dlt_platform.orchestration.run_entrypoint dagster api execute_run <args>", file=sys.stderr
        )
        raise SystemExit(2)
    env = prepare_dagster_home(dict(os.environ))
    # Dagster names its own CLI `dagster`; the run's PATH need not hold the interpreter's scripts folder.
    if argv[0] == "dagster":
        argv = [sys.executable, "-m", "dagster", *argv[1:]]
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main(sys.argv[1:])
