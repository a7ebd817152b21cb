"""The SAM CLI (PyPI ``aws-sam-cli``, pinned in requirements/sam.txt) in a Python 3.13 virtualenv of its own.

python -m emulators.sam ARGS...   runs ``sam ARGS`` from .venv-sam (built on first use), telemetry off
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from emulators.processes import EmulatorError, Venv, find_python
from jobq_local.template import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements" / "sam.txt"
PYTHON = "3.13"
"""The template's runtime: ``sam build``'s python3.13 workflow looks for a python3.13 on PATH."""


def venv() -> Venv:
    return Venv(REPO_ROOT / ".venv-sam", REQUIREMENTS, find_python(PYTHON))


def environment(base: Mapping[str, str], python: str) -> dict[str, str]:
    """``base`` for running sam: telemetry off, ``python``'s directory first on PATH, and its files (its own
    settings, the pip downloads of ``sam build``) under .cache/ instead of the home directory."""
    path = str(Path(python).parent) + os.pathsep + base.get("PATH", os.defpath)
    cache = REPO_ROOT / ".cache"
    files = {"__SAM_CLI_APP_DIR": str(cache / "sam"), "PIP_CACHE_DIR": str(cache / "pip")}
    return dict(base) | {"SAM_CLI_TELEMETRY": "0", "PATH": path} | files


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        sam = venv().ensure()
    except EmulatorError as exc:
        print(f"emulators.sam: {exc}", file=sys.stderr)
        return 1
    args = list(sys.argv[1:] if argv is None else argv)
    command = [str(sam.bin / "sam"), *args]
    return subprocess.run(command, env=environment(os.environ, sam.python), check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
