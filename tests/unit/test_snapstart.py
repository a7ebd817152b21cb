"""SnapStart: every handler registers the after-restore reseed; the template turns SnapStart on by parameter."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from jobq import snapstart
from jobq_local.template import REPO_ROOT, Template

FAKE_RUNTIME_LIBRARY = """
registered = []
def register_after_restore(func, *args, **kwargs):
    registered.append(func.__module__ + "." + func.__qualname__)
    return func
"""


@pytest.mark.parametrize("module", ["jobq.handlers.api", "jobq.handlers.worker", "jobq.handlers.sweeper"])
def test_importing_a_handler_registers_the_reseed_hook(module: str, tmp_path: Path) -> None:
    (tmp_path / "snapshot_restore_py.py").write_text(FAKE_RUNTIME_LIBRARY)
    code = f"import {module}, snapshot_restore_py; print(snapshot_restore_py.registered)"
    path = os.pathsep.join([str(tmp_path), str(REPO_ROOT / "functions")])
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['jobq.snapstart.reseed']"


def test_without_the_runtime_library_nothing_is_registered() -> None:
    assert "snapshot_restore_py" not in sys.modules
    assert snapstart.register_hooks() is False


def test_reseed_gives_restored_environments_different_sequences() -> None:
    random.seed(7)
    snapshot = random.getstate()
    first = [random.random() for _ in range(3)]
    random.setstate(snapshot)
    snapstart.reseed()
    assert [random.random() for _ in range(3)] != first


def test_snapstart_is_a_parameter_applied_to_every_function_through_its_alias() -> None:
    on = Template(parameters={"SnapStart": "PublishedVersions"})
    assert Template().resolve({"Ref": "SnapStart"}) == "None"
    for spec in on.functions():
        assert on.resolve(spec.properties["SnapStart"]) == {"ApplyOn": "PublishedVersions"}
        assert spec.alias == "live"
    integration = on.resource("ApiIntegration")["Properties"]["IntegrationUri"]
    permission = on.resource("ApiInvokePermission")["Properties"]["FunctionName"]
    assert integration == permission == {"Ref": "ApiFunction.Alias"}
    assert on.invoked_function(integration) == "ApiFunction"
