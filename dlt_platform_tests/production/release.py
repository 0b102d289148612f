"""A release of the repository in a folder of its own, run as production runs it, on this machine.

A release is a copy of what `wrangler deploy` reads (wrangler.toml, the Worker, its migrations, the Dockerfile,
package.json) and of what the operator's commands read (Makefile, config/), with node_modules and .venv linked
from this checkout. Copies, not this checkout: a release gets migrations of its own (the upgrade rehearsal adds
one), and wrangler dev keeps its local D1, KV and R2 under the release's own `.wrangler/state`, as
`wrangler d1 migrations apply DB --local` run in the same folder finds them.

`WranglerDev` serves the release's production wrangler.toml (not a local variant: `[dev] enable_containers =
false` makes it run without Docker) with a `.dev.vars` file, the local stand-in of `wrangler secret put`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from dlt_platform.processes import stop_process
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform_tests.waiting import poll

# What `wrangler deploy` and the operator's commands read from the repository root.
RELEASE_FILES = ("wrangler.toml", "package.json", "Dockerfile", "Makefile", "pyproject.toml", "workspace.yaml",
                 "dagster.yaml", "dagster.postgres.yaml", "tsconfig.json")
RELEASE_FOLDERS = ("worker/src", "worker/migrations", "config")
LINKED = ("node_modules", ".venv")



def make_release(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in RELEASE_FILES:
        shutil.copy2(PROJECT_ROOT / name, folder / name)
    for name in RELEASE_FOLDERS:
        shutil.copytree(PROJECT_ROOT / name, folder / name)
    for name in LINKED:
        (folder / name).symlink_to(PROJECT_ROOT / name)
    return folder


def write_dev_vars(release: Path, values: dict[str, str]) -> Path:
    """`.dev.vars` next to wrangler.toml: what `wrangler secret put` gives the deployed Worker."""
    path = release / ".dev.vars"
    path.write_text("".join(f"{name}={json.dumps(value)}\n" for name, value in values.items()))
    path.chmod(0o600)
    return path


def wrangler(release: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(release / "node_modules" / ".bin" / "wrangler"), *args], cwd=release,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@dataclass
class WranglerDev:
    """`wrangler dev` in a release folder: the deployed Worker's local stand-in."""

    release: Path
    port: int
    log_path: Path
    # e.g. ("--var", "DAGSTER_URL:http://127.0.0.1:3000"): a var wrangler dev sets over wrangler.toml's.
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).json().get("d1") == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    def start(self, timeout: float = 120) -> WranglerDev:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.release / "node_modules" / ".bin" / "wrangler"), "dev", "--ip", "127.0.0.1", "--port",
                 str(self.port), "--show-interactive-dev-session=false", *self.extra_args],
                cwd=self.release, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"wrangler dev exited with {self.process.returncode}; see {self.log_path}")
            return self.healthy()

        poll(up, timeout, 0.5, f"wrangler dev on port {self.port} (log {self.log_path})")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 20)
            self.process = None

