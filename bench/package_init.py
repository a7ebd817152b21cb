"""Benchmark: cold init from a deployment package, `sam build`'s vs `make build`'s (`make coldstart-package`).

Lambda runs a function from its package, mounted read-only at /var/task: CPython cannot cache bytecode there,
so a package without ``__pycache__`` (what ``sam build`` ships) is compiled, module by module, on every cold
start. This installs the pinned runtime requirements and jobq for this machine with the runtime's Python (the
template's ``python3.13``) twice, as sam build leaves them and with ``make build``'s bytecode step, and times
in alternating pairs of fresh processes (``PYTHONDONTWRITEBYTECODE``, as on a read-only mount) what
``make coldstart`` times: import the handler and build what its first invocation builds.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.coldstart import function_env, jobq_body, measured, provisioned_template, timed
from emulators import sam
from emulators.build import census, compile_code
from emulators.processes import find_python
from jobq_local.template import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "functions" / "requirements.txt"
CACHE = REPO_ROOT / ".cache" / "package-init"


def packages(python: str) -> tuple[Path, Path]:
    """The requirements and jobq installed for ``python``: once as sources only, once with bytecode."""
    sources = sorted(path for path in (REPO_ROOT / "functions" / "jobq").rglob("*.py"))
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + python.encode())
    for path in sources:
        digest.update(path.read_bytes())
    root = CACHE / digest.hexdigest()[:16]
    plain, compiled = root / "sam-build", root / "make-build"
    if not (root / "done").exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        command += ["--root-user-action", "ignore"]
        subprocess.run([*command, "--target", str(plain), "-r", str(REQUIREMENTS)], check=True)
        shutil.copytree(REPO_ROOT / "functions" / "jobq", plain / "jobq", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(plain, compiled)
        compile_code(compiled, python)
        (root / "done").write_text("")
    return plain, compiled


def measure(pairs: int, functions: list[str]) -> dict[str, Any]:
    python = find_python(sam.PYTHON)
    plain, compiled = packages(python)
    template = provisioned_template()
    report: dict[str, Any] = {"python": sam.PYTHON}
    for label, package in (("sam_build", plain), ("make_build", compiled)):
        counted = census(package)
        report[f"{label}_pycs"] = f"{counted.pycs} of {counted.modules}"
    for function in functions:
        env = function_env(template, function) | {"PYTHONDONTWRITEBYTECODE": "1"}
        body = jobq_body(function, template.function(function).handler)
        times: dict[Path, list[float]] = {plain: [], compiled: []}
        for index in range(pairs):  # alternate which goes first: the machine drifts
            order = [plain, compiled] if index % 2 == 0 else [compiled, plain]
            for package in order:
                times[package].append(timed(body, env | {"PYTHONPATH": str(package)}, python))
        report[function] = {
            "sam_build_ms": round(statistics.median(times[plain]) * 1000, 1),
            "make_build_ms": round(statistics.median(times[compiled]) * 1000, 1),
        }
    return report


def main() -> None:
    args, report = measured(__doc__, measure)
    if args is None:
        return
    print(f"cold init from a package on Python {report['python']}, median of {args.pairs} alternating pairs")
    print(f"pycs: sam build {report['sam_build_pycs']}, make build {report['make_build_pycs']}")
    print(f"{'function':<16} {'sam build':>10} {'make build':>11} {'saved':>6}")
    for function in args.function:
        row = report[function]
        saved = 1 - row["make_build_ms"] / row["sam_build_ms"]
        print(f"{function:<16} {row['sam_build_ms']:>8.1f}ms {row['make_build_ms']:>9.1f}ms {saved:>6.0%}")


if __name__ == "__main__":
    main()
