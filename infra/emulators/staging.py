"""A ``sam build`` output made runnable on this machine's emulator, and the template that deploys it.

MiniStack runs every Python function on its own interpreter, on this machine's CPU, whatever the function's
``Architectures`` says. A build for another architecture (the template's arm64 on an x86_64 machine) bundles
compiled extensions that cannot load here, so each such distribution is replaced by the same version built for
this machine; every other file stays as ``sam build`` wrote it. Functions built alike share one code directory.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.processes import EmulatorError
from jobq_local.template import load_document

MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
"""Lambda's architecture names -> ``platform.machine()``."""

_ARCH_SUFFIX = re.compile(r"_(aarch64|x86_64|arm64|armv7l|ppc64le|s390x|i686)$")

Installer = Callable[[Sequence[str], Sequence[str], str, Path], None]
"""``install(pins, platforms, python_version, target)``: binary wheels of ``pins`` for one of ``platforms``."""


@dataclass(frozen=True)
class Distribution:
    """An installed distribution in a function's code directory, from its ``.dist-info``."""

    name: str
    version: str
    tags: tuple[str, ...]
    dist_info: Path

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platform tags of its wheel (``manylinux_2_17_aarch64``, ...); ``any`` for pure Python."""
        found: list[str] = []
        for tag in self.tags:
            for platform in tag.split("-")[2].split("."):
                if platform not in found:
                    found.append(platform)
        return tuple(found)

    @property
    def compiled(self) -> bool:
        return any(platform != "any" for platform in self.platforms)

    def files(self) -> list[Path]:
        """Its files, as its RECORD lists them (paths inside the code directory only)."""
        root = self.dist_info.parent.resolve()
        listed = []
        for line in (self.dist_info / "RECORD").read_text().splitlines():
            path = (root / line.split(",", 1)[0]).resolve()
            if line and path.is_relative_to(root):
                listed.append(path)
        return listed


@dataclass(frozen=True)
class Replacement:
    """One compiled distribution replaced by the same version built for this machine."""

    name: str
    version: str
    built_for: tuple[str, ...]
    installed_for: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}=={self.version} [{'.'.join(self.built_for)} -> {'.'.join(self.installed_for)}]"


@dataclass(frozen=True)
class Staged:
    """The template to deploy and what was changed to make its code run here."""

    template: Path
    code: Mapping[str, Path]
    """Logical id -> the code directory it deploys."""
    architectures: Mapping[str, str]
    """Logical id -> the function's architecture as the template says it."""
    machine: str
    replaced: Mapping[Path, tuple[Replacement, ...]]
    """Code directory -> the distributions replaced in it (none where the architectures match)."""


def distributions(code: Path) -> list[Distribution]:
    """Every distribution installed in ``code``, by name."""
    found = []
    for dist_info in sorted(code.glob("*.dist-info")):
        metadata = _headers((dist_info / "METADATA").read_text(errors="replace"))
        wheel = _headers((dist_info / "WHEEL").read_text()) if (dist_info / "WHEEL").exists() else {}
        found.append(Distribution(metadata["Name"][0], metadata["Version"][0], tuple(wheel.get("Tag", ())), dist_info))
    return found


def _headers(text: str) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        name, sep, value = line.partition(": ")
        if sep and not line[0].isspace():
            headers.setdefault(name, []).append(value.strip())
    return headers


def host_platforms(platforms: Sequence[str], machine: str) -> tuple[str, ...]:
    """The same platform tags for ``machine``: ``manylinux_2_17_aarch64`` -> ``manylinux_2_17_x86_64``."""
    return tuple(_ARCH_SUFFIX.sub(f"_{machine}", platform) for platform in platforms if platform != "any")


def function_settings(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> CodeUri, Runtime and Architecture of every AWS::Serverless::Function, Globals applied."""
    defaults = document.get("Globals", {}).get("Function", {})
    settings = {}
    for logical_id, resource in document["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = defaults | resource.get("Properties", {})
        architectures = properties.get("Architectures", ["x86_64"])
        if not isinstance(architectures, list) or len(architectures) != 1 or architectures[0] not in MACHINES:
            raise EmulatorError(f"{logical_id}: Architectures {architectures!r} is not one of {sorted(MACHINES)}")
        settings[logical_id] = {
            "CodeUri": properties["CodeUri"],
            "Runtime": properties.get("Runtime", ""),
            "Architecture": architectures[0],
        }
    return settings


def python_version(runtime: str) -> str:
    """``python3.13`` -> ``3.13``."""
    found = re.fullmatch(r"python(\d+\.\d+)", runtime)
    if found is None:
        raise EmulatorError(f"runtime {runtime!r} is not a Python runtime")
    return found.group(1)


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def replace_compiled(code: Path, machine: str, python: str, install: Installer) -> tuple[Replacement, ...]:
    """Replace, in place, every compiled distribution in ``code`` by the same version built for ``machine``."""
    foreign = [dist for dist in distributions(code) if dist.compiled]
    if not foreign:
        return ()
    replaced = []
    with tempfile.TemporaryDirectory(dir=code.parent) as scratch:
        target = Path(scratch)
        platforms = sorted({p for dist in foreign for p in host_platforms(dist.platforms, machine)})
        install([f"{dist.name}=={dist.version}" for dist in foreign], platforms, python, target)
        for dist in foreign:
            for path in dist.files():
                path.unlink(missing_ok=True)
            shutil.rmtree(dist.dist_info, ignore_errors=True)
        for installed in distributions(target):
            source = next(d for d in foreign if _canonical(d.name) == _canonical(installed.name))
            replaced.append(Replacement(source.name, source.version, source.platforms, installed.platforms))
        missing = {_canonical(d.name) for d in foreign} - {_canonical(r.name) for r in replaced}
        if missing:
            raise EmulatorError(f"no {machine} wheel installed for {', '.join(sorted(missing))}")
        for item in target.iterdir():
            if item.is_dir():
                shutil.copytree(item, code / item.name, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(item, code / item.name)
    return tuple(replaced)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_install(pins: Sequence[str], platforms: Sequence[str], python: str, target: Path, cache: Path) -> None:
    """pip's binary wheels of ``pins`` for ``platforms`` and CPython ``python``, without dependencies."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    command += ["--no-deps", "--only-binary=:all:", "--implementation", "cp", "--python-version", python]
    command += [arg for platform in platforms for arg in ("--platform", platform)]
    command += ["--cache-dir", str(cache), "--target", str(target), *pins]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise EmulatorError(f"pip install {' '.join(pins)} for {', '.join(platforms)} failed:\n{result.stderr}")


def stage(build_dir: Path, out: Path, *, machine: str, install: Installer) -> Staged:
    """The template to deploy (JSON, at ``out``) from the build in ``build_dir``, its code made runnable on
    ``machine``; functions whose built code is identical point at one directory."""
    document = load_document(build_dir / "template.yaml")
    settings = function_settings(document)
    by_digest: dict[str, Path] = {}
    code: dict[str, Path] = {}
    replaced: dict[Path, tuple[Replacement, ...]] = {}
    for logical_id, setting in settings.items():
        built = (build_dir / setting["CodeUri"]).resolve()
        shared = by_digest.setdefault(tree_digest(built), built)
        code[logical_id] = shared
        document["Resources"][logical_id]["Properties"]["CodeUri"] = str(shared)
        if shared not in replaced:
            foreign = MACHINES[setting["Architecture"]] != machine
            python = python_version(setting["Runtime"])
            replaced[shared] = replace_compiled(shared, machine, python, install) if foreign else ()
    out.write_text(json.dumps(document, indent=1))
    architectures = {logical_id: setting["Architecture"] for logical_id, setting in settings.items()}
    return Staged(out, code, architectures, machine, replaced)
