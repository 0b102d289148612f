"""The project's image under podman, for the image test and the image bench: built as `make image` builds it
(tools/container/build-image.sh), run as Cloudflare runs it (the entrypoint unchanged, the environment given).

Every podman call goes through tools/container/podman, which adds the flags these machines need (runc, the
host's ulimits, the host's network: the container reaches the local stack on 127.0.0.1 as it would reach the
Worker, Postgres and BigQuery over the internet)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field

import httpx

from dlt_platform.local.loopback import free_port
from dlt_platform.settings import PROJECT_ROOT

PODMAN = PROJECT_ROOT / "tools" / "container" / "podman"
BUILD_SCRIPT = PROJECT_ROOT / "tools" / "container" / "build-image.sh"
IMAGE = "dlt-dagster"
# The user the Dockerfile creates and runs as.
IMAGE_UID = 10001


class ImageError(RuntimeError):
    """podman is missing, or the image did not build or start; the message says what to do or where to look."""


def require_podman() -> None:
    if shutil.which("podman") is None:
        raise ImageError("podman is not installed: run `make install-debian` (installs Debian's podman, runc and "
                         "debootstrap; `make test` does it)")


def podman(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run([str(PODMAN), *args], capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        raise ImageError(f"podman {args[0]} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def build_image(image: str = IMAGE) -> float:
    """Build (or, when nothing changed, reuse from podman's layer cache) the image; the seconds it took."""
    require_podman()
    started = time.monotonic()
    result = subprocess.run([str(BUILD_SCRIPT)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={**os.environ, "IMAGE": image}, timeout=1800)
    if result.returncode != 0:
        raise ImageError(f"`make image` failed (exit {result.returncode}):\n{(result.stdout + result.stderr)[-4000:]}")
    return time.monotonic() - started


def image_size(image: str = IMAGE) -> int:
    """Uncompressed size in bytes, as `podman images` shows it."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).strip())



@dataclass
class ImageContainer:
    """One container of the image: `dlt-platform serve` on `port` (the entrypoint's own `--port 3000` is followed
    by `--port PORT`, the last one counting, so tests on one host network do not collide), with `env` and
    nothing else from this process. Values reach podman through its environment (`-e NAME`), never its
    command line, where any process could read a secret."""

    env: dict[str, str] = field(repr=False)
    image: str = IMAGE
    port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"dlt-dagster-{secrets.token_hex(4)}")
    started_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ImageContainer:
        require_podman()
        names = [arg for name in self.env for arg in ("-e", name)]
        podman_env = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "TMPDIR")}
        self.started_at = time.monotonic()
        podman("run", "-d", "--name", self.name, *names, self.image, "--port", str(self.port),
               env={**podman_env, **self.env})
        return self

    def running(self) -> bool:
        return podman("container", "inspect", "--format", "{{.State.Running}}", self.name).strip() == "true"

    def server_info(self) -> dict | None:
        """Dagster's /dagster/server_info through the container's port, or None while it does not answer."""
        try:
            response = httpx.get(f"{self.url}/dagster/server_info", timeout=2)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_until_answering(self, timeout: float = 180) -> float:
        """Seconds from `podman run` to Dagster answering; the container's log in the error when it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server_info() is not None:
                return time.monotonic() - self.started_at
            if not self.running():
                raise ImageError(f"container {self.name} exited before Dagster answered:\n{self.logs()[-4000:]}")
            time.sleep(0.05)
        raise ImageError(f"Dagster in container {self.name} did not answer within {timeout:.0f} s:\n"
                         f"{self.logs()[-4000:]}")

    def exec(self, *command: str) -> str:
        return podman("exec", self.name, *command)

    def changed_paths(self) -> list[str]:
        """What the container wrote to its own (ephemeral) disk: `podman diff`, one "C path" / "A path" a line."""
        return [line.strip() for line in podman("diff", self.name).splitlines() if line.strip()]

    def logs(self) -> str:
        result = subprocess.run([str(PODMAN), "logs", self.name], capture_output=True, text=True, timeout=60)
        return result.stdout + result.stderr

    def remove(self) -> None:
        """The container and its disk gone, as when Cloudflare stops an instance."""
        subprocess.run([str(PODMAN), "rm", "-f", "-t", "10", self.name], capture_output=True, timeout=120)
