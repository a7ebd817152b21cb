"""make build's bytecode step: every module compiled, unchecked-hash, naming its /var/task path."""

from __future__ import annotations

import marshal
import sys
from pathlib import Path

from emulators.build import census, compile_build

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
TAG = sys.implementation.cache_tag


def _code(root: Path) -> Path:
    package = root / "ApiFunction" / "jobq"
    (package / "handlers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "handlers" / "api.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    return root / "ApiFunction"


def test_every_module_of_every_built_function_gets_an_unchecked_hash_pyc_for_var_task(tmp_path: Path) -> None:
    code = _code(tmp_path)
    assert census(code, VERSION).pycs == 0
    (compiled,) = compile_build(tmp_path, sys.executable, VERSION)
    assert (compiled.code, compiled.modules, compiled.pycs) == (code, 2, 2)
    pyc = (code / "jobq" / "handlers" / "__pycache__" / f"api.{TAG}.pyc").read_bytes()
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source never checked
    assert marshal.loads(pyc[16:]).co_filename == "/var/task/jobq/handlers/api.py"


def test_a_module_that_does_not_compile_is_counted_as_missing(tmp_path: Path) -> None:
    code = _code(tmp_path)
    (code / "jobq" / "broken.py").write_text("def (:\n")
    (compiled,) = compile_build(tmp_path, sys.executable, VERSION)
    assert (compiled.modules, compiled.pycs) == (3, 2)


def test_the_census_counts_only_the_runtimes_bytecode(tmp_path: Path) -> None:
    code = _code(tmp_path)
    compile_build(tmp_path, sys.executable, VERSION)
    assert census(code, "3.13" if VERSION != "3.13" else "3.12").pycs == 0
