"""``sam build``, then bytecode for every function's code, as Lambda would never write it itself.

Lambda mounts a function's code read-only at /var/task, so CPython cannot write ``__pycache__`` there and
compiles every module it imports on every cold start; ``sam build`` ships none. This compiles each built
code directory with the template's runtime Python, as unchecked-hash pycs (loaded without a look at the
source's timestamp, which the zip does not keep) whose tracebacks name /var/task paths.

python -m emulators.build [SAM BUILD ARGS...]   sam build (into .aws-sam/build), then the bytecode
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emulators import sam

LAMBDA_TASK_ROOT = "/var/task"


@dataclass(frozen=True)
class Compiled:
    """One built code directory and its bytecode."""

    code: Path
    modules: int
    """``.py`` files in it."""
    pycs: int
    """Of them, those with a ``__pycache__`` pyc for the runtime's Python."""


def compile_code(code: Path, python: str, version: str = sam.PYTHON) -> Compiled:
    """Compile every module under ``code`` with ``python`` (CPython ``version``, the runtime's) for /var/task."""
    subprocess.run(  # noqa: S603 - the runtime's interpreter, fixed arguments
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(code), "-p", LAMBDA_TASK_ROOT, str(code)],
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return census(code, version)


def census(code: Path, version: str = sam.PYTHON) -> Compiled:
    """How many of ``code``'s modules have a pyc that CPython ``version`` would load."""
    tag = "cpython-" + version.replace(".", "")
    sources = [path for path in code.rglob("*.py") if path.is_file()]
    compiled = [path for path in sources if (path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc").is_file()]
    return Compiled(code, len(sources), len(compiled))


def built_code(build_dir: Path) -> list[Path]:
    """Every code directory ``sam build`` wrote: one per function."""
    return sorted(path for path in build_dir.iterdir() if path.is_dir())


def compile_build(build_dir: Path, python: str, version: str = sam.PYTHON) -> list[Compiled]:
    """Bytecode for every function's code in ``build_dir``."""
    return [compile_code(code, python, version) for code in built_code(build_dir)]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    venv = sam.venv().ensure()
    env = sam.environment(os.environ, venv.python)
    code = subprocess.run([str(venv.bin / "sam"), "build", *args], env=env, check=False).returncode  # noqa: S603
    if code != 0:
        return code
    build_dir = Path(args[args.index("--build-dir") + 1]) if "--build-dir" in args else Path(".aws-sam/build")
    for compiled in compile_build(build_dir, venv.python):
        print(f"bytecode: {compiled.code}: {compiled.pycs} of {compiled.modules} modules compiled for {sam.PYTHON}")
        if compiled.pycs != compiled.modules:
            missing = compiled.modules - compiled.pycs
            print(f"bytecode: {missing} modules of {compiled.code} did not compile", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
