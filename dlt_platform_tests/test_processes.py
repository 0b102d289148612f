"""The supervisor `up` and `serve` share, with real child processes."""

from __future__ import annotations

import sys

import psutil
import pytest

from dlt_platform.processes import ProcessError, Supervisor, restart_pause
from dlt_platform_tests.waiting import poll

EXIT_3 = [sys.executable, "-c", "import sys; sys.exit(3)"]
# A shell that starts a grandchild and waits: stopping the child must end the grandchild too.
TREE = ["sh", "-c", "sleep 60 & wait"]


def test_a_child_that_exits_is_restarted_at_once_then_with_a_growing_pause():
    said: list[str] = []
    supervisor = Supervisor(say=said.append)
    first = supervisor.start("crasher", EXIT_3, own_session=False)
    first.wait()
    supervisor.restart_exited(now=1000.0)
    assert said[0] == "crasher exited with 3; restarting in 0 s"
    assert supervisor.processes["crasher"] is not first
    supervisor.processes["crasher"].wait()
    supervisor.restart_exited(now=1001.0)
    supervisor.processes["crasher"].wait()
    supervisor.restart_exited(now=1002.0)  # the third exit within a minute
    assert said[-1] == "crasher exited with 3; restarting in 2 s"
    waiting = supervisor.processes["crasher"]
    supervisor.restart_exited(now=1003.0)
    assert supervisor.processes["crasher"] is waiting, "restarted before its pause was over"
    supervisor.restart_exited(now=1004.0)
    assert supervisor.processes["crasher"] is not waiting
    supervisor.stop_all()
    assert [restart_pause(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [0, 0, 2, 4, 8, 16, 30]


def test_stopping_a_child_in_its_own_session_ends_what_it_started(tmp_path):
    supervisor = Supervisor(stop_timeout=5)
    shell = supervisor.start("tree", TREE, log_path=tmp_path / "tree.log")
    grandchildren = poll(psutil.Process(shell.pid).children, 5, 0.05, "the shell's sleep")
    supervisor.stop_all()
    assert shell.poll() is not None and supervisor.processes == {}
    gone, alive = psutil.wait_procs(grandchildren, timeout=5)
    assert not alive


def test_waiting_for_a_child_that_exits_names_its_exit_code_and_log(tmp_path):
    supervisor = Supervisor()
    supervisor.start("crasher", EXIT_3, log_path=tmp_path / "crasher.log")
    with pytest.raises(ProcessError) as error:
        supervisor.wait_ready("crasher", ready=lambda: False, timeout=30)
    assert str(error.value) == f"crasher exited with 3; see {tmp_path / 'crasher.log'}"
    supervisor.stop_all()
