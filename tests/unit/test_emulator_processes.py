"""Stopping an emulator's process ends everything it started, in its session or in sessions of their own."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from emulators.processes import Service, descendants_of, process_table, wait_until

# A leader that starts two children: one in its session, one in a session of its own (as LocalStack starts
# DynamoDB Local's JVM), both ignoring SIGTERM, writes their pids, and waits.
LEADER = """
import signal, subprocess, sys, time
child = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
inside = subprocess.Popen([sys.executable, "-c", child])
apart = subprocess.Popen([sys.executable, "-c", child], start_new_session=True)
open(sys.argv[1], "w").write(f"{inside.pid} {apart.pid}")
time.sleep(120)
"""


def test_stop_ends_the_children_of_other_sessions_too(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    service = Service(
        "leader", [sys.executable, "-c", LEADER, str(pids)], tmp_path / "leader.log", dict(os.environ), stop_grace=1
    ).start()
    assert service.process is not None
    wait_until(lambda: pids.exists() and " " in pids.read_text(), what="the children", timeout=30, process=service)
    inside, apart = (int(pid) for pid in pids.read_text().split())
    assert {inside, apart} <= descendants_of(service.process.pid, process_table())
    assert process_table()[apart][1] != service.process.pid  # a session of its own

    service.stop()

    deadline = time.monotonic() + 5
    while {inside, apart} & set(process_table()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not {inside, apart} & set(process_table())
    assert not service.alive
