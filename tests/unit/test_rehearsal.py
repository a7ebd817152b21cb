"""The deploy rehearsal's pure parts: staging a build for this machine, the stack read back against the template,
the ApiFunction invoked as API Gateway would, the report. No MiniStack, no SAM CLI, no network."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from emulators import sam
from emulators.deployed import InvokedApi, Stack, deployed_bytecode, differences, expected_outputs
from emulators.processes import EmulatorError
from emulators.rehearsal import log_errors
from emulators.report import Abort, Report
from emulators.staging import distributions, function_settings, host_platforms, python_version, stage
from jobq_local.template import load_document

AARCH64 = "cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64"


def install_dist(code: Path, name: str, version: str, tag: str, files: dict[str, bytes]) -> None:
    """A distribution as pip installs it: its files, and a .dist-info with METADATA, WHEEL and RECORD."""
    dist_info = code / f"{name}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    for relative, content in files.items():
        (code / relative).parent.mkdir(parents=True, exist_ok=True)
        (code / relative).write_bytes(content)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA description.\n")
    wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n" + "".join(f"Tag: {t}\n" for t in _expand(tag))
    (dist_info / "WHEEL").write_text(wheel)
    record = [f"{relative},sha256=x,1" for relative in files] + [f"{dist_info.name}/{n}" for n in ("METADATA", "WHEEL")]
    (dist_info / "RECORD").write_text("\n".join([*record, f"{dist_info.name}/RECORD,,", "../../bin/tool,,"]) + "\n")


def _expand(tag: str) -> list[str]:
    python, abi, platforms = tag.split("-")
    return [f"{python}-{abi}-{platform}" for platform in platforms.split(".")]


def built_code(code: Path) -> None:
    """What sam build puts in a function's directory: jobq, a pure distribution and a compiled one."""
    (code / "jobq").mkdir(parents=True)
    (code / "jobq" / "__init__.py").write_text("")
    install_dist(code, "six", "1.17.0", "py2.py3-none-any", {"six.py": b"pure"})
    install_dist(
        code, "pydantic_core", "2.50.4", AARCH64,
        {"pydantic_core/__init__.py": b"init", "pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so": b"arm"},
    )  # fmt: skip


class FakeInstaller:
    """Installs each pin as a distribution built for the first platform asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str], str]] = []

    def __call__(self, pins: Sequence[str], platforms: Sequence[str], python: str, target: Path) -> None:
        self.calls.append((list(pins), list(platforms), python))
        for pin in pins:
            name, version = pin.split("==")
            so = f"{name}/_{name}.cpython-313-x86_64-linux-gnu.so"
            install_dist(
                target, name, version, f"cp313-cp313-{platforms[0]}", {f"{name}/__init__.py": b"x", so: b"x86"}
            )


def write_build(build: Path, *, architecture: str = "arm64") -> None:
    """A sam build output: two functions built alike, one built differently, Globals naming the architecture."""
    for name in ("ApiFunction", "WorkerFunction", "OtherFunction"):
        built_code(build / name)
    (build / "OtherFunction" / "jobq" / "extra.py").write_text("different")
    resources = {
        name: {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": name, "Handler": "jobq.x"}}
        for name in ("ApiFunction", "WorkerFunction", "OtherFunction")
    }
    resources["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "AWS::StackName"}}}
    document = {
        "Globals": {"Function": {"CodeUri": "functions/", "Runtime": "python3.13", "Architectures": [architecture]}},
        "Resources": resources,
    }
    (build / "template.yaml").write_text(json.dumps(document))


def test_distributions_tell_compiled_wheels_by_their_platform_tags(tmp_path: Path) -> None:
    # Given a function's code as sam build leaves it
    built_code(tmp_path)
    # When its distributions are read
    found = {dist.name: dist for dist in distributions(tmp_path)}
    # Then the pure one is not compiled and the other lists its wheel's platforms
    assert not found["six"].compiled
    assert found["pydantic_core"].compiled
    assert found["pydantic_core"].platforms == ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
    assert {p.name for p in found["pydantic_core"].files()} >= {"__init__.py", "RECORD"}


def test_host_platforms_swap_the_architecture_and_keep_the_policy() -> None:
    platforms = ("manylinux_2_17_aarch64", "manylinux2014_aarch64", "any")
    assert host_platforms(platforms, "x86_64") == ("manylinux_2_17_x86_64", "manylinux2014_x86_64")


def test_function_settings_apply_globals_and_refuse_odd_architectures() -> None:
    settings = function_settings(load_document())
    assert settings["WorkerFunction"] == {"CodeUri": "functions/", "Runtime": "python3.13", "Architecture": "arm64"}
    with pytest.raises(EmulatorError, match="Architectures"):
        function_settings({"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {
            "CodeUri": ".", "Architectures": ["arm64", "x86_64"]}}}})  # fmt: skip
    assert python_version("python3.13") == "3.13"
    with pytest.raises(EmulatorError, match="not a Python runtime"):
        python_version("nodejs22.x")


def test_stage_for_another_architecture_replaces_only_the_compiled_distributions(tmp_path: Path) -> None:
    # Given an arm64 build, on an x86_64 machine
    build = tmp_path / "build"
    write_build(build)
    pure_before = (build / "ApiFunction" / "six.py").read_bytes()
    installer = FakeInstaller()
    # When it is staged
    staged = stage(build, tmp_path / "deploy.json", machine="x86_64", install=installer)
    # Then functions built alike share one directory, and each distinct one had its compiled wheels replaced
    api = (build / "ApiFunction").resolve()
    assert staged.code["ApiFunction"] == staged.code["WorkerFunction"] == api
    assert staged.code["OtherFunction"] == (build / "OtherFunction").resolve()
    assert [call[0] for call in installer.calls] == [["pydantic_core==2.50.4"]] * 2
    assert installer.calls[0][1:] == (["manylinux2014_x86_64", "manylinux_2_17_x86_64"], "3.13")
    (replacement,) = staged.replaced[api]
    assert str(replacement) == (
        "pydantic_core==2.50.4 [manylinux_2_17_aarch64.manylinux2014_aarch64 -> manylinux2014_x86_64]"
    )
    assert not list(api.rglob("*aarch64*.so"))
    assert (api / "pydantic_core" / "_pydantic_core.cpython-313-x86_64-linux-gnu.so").read_bytes() == b"x86"
    assert [d.platforms for d in distributions(api) if d.name == "pydantic_core"] == [("manylinux2014_x86_64",)]
    assert (api / "six.py").read_bytes() == pure_before
    # and the deployed template points every function at its directory, leaving the rest as built
    deployed = json.loads((tmp_path / "deploy.json").read_text())
    assert deployed["Resources"]["WorkerFunction"]["Properties"]["CodeUri"] == str(api)
    assert deployed["Resources"]["Queue"] == {
        "Type": "AWS::SQS::Queue",
        "Properties": {"QueueName": {"Ref": "AWS::StackName"}},
    }


def test_stage_for_this_machines_architecture_changes_no_file(tmp_path: Path) -> None:
    build = tmp_path / "build"
    write_build(build)
    installer = FakeInstaller()
    staged = stage(build, tmp_path / "deploy.json", machine="aarch64", install=installer)
    assert installer.calls == []
    assert all(replaced == () for replaced in staged.replaced.values())
    assert list((build / "ApiFunction").rglob("*aarch64*.so"))


def test_stage_fails_when_no_wheel_for_this_machine_was_installed(tmp_path: Path) -> None:
    build = tmp_path / "build"
    write_build(build)
    with pytest.raises(EmulatorError, match="no x86_64 wheel installed for pydantic-core"):
        stage(build, tmp_path / "deploy.json", machine="x86_64", install=lambda *_: None)


def stack_of_template() -> Stack:
    resources = {name: f"phys-{name}" for name in load_document()["Resources"] if name != "JobsApiJwtAuthorizer"}
    resources |= {"JobsQueue": "http://localhost/000000000000/jobs", "JobsApi": "abc123"}
    outputs = {"ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com", "JobsTableName": "phys-JobsTable"}
    return Stack("jobq", "CREATE_COMPLETE", outputs, resources)


def test_the_stack_is_checked_against_the_template_resolved_with_its_own_resources() -> None:
    # Given a stack and the template's parameters
    stack = stack_of_template()
    template = stack.expected(load_document(), {"MaxAttempts": "3", "AdminPrincipals": "arn:a"}, "000000000000")
    # When the template is resolved against it
    outputs = expected_outputs(template)
    environment = template.function_environment("ApiFunction")
    # Then outputs and variables name the stack's resources and the parameters
    assert outputs["ApiUrl"] == "https://abc123.execute-api.us-east-1.amazonaws.com"
    assert outputs["JobsQueueUrl"] == "http://localhost/000000000000/jobs"
    assert environment["JOBS_TABLE_NAME"] == "phys-JobsTable"
    assert environment["JOBQ_MAX_ATTEMPTS"] == "3"
    assert environment["JOBQ_ADMIN_PRINCIPALS"] == "arn:a"
    assert differences(environment, dict(environment) | {"MORE": "x"}) == []
    wrong = dict(environment) | {"JOBS_TABLE_NAME": "other"}
    del wrong["JOBQ_MAX_ATTEMPTS"]
    assert differences(environment, wrong) == [
        "JOBS_TABLE_NAME: 'other' != 'phys-JobsTable'",
        "JOBQ_MAX_ATTEMPTS: '(missing)' != '3'",
    ]


class FakeLambda:
    """Answers invocations with a canned API response and keeps the events."""

    def __init__(self, status: int, body: Any, *, function_error: str | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        text = base64.b64encode(json.dumps(body).encode()).decode()
        self.answer = {"statusCode": status, "body": text, "isBase64Encoded": True}
        self.function_error = function_error

    def invoke(self, *, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.events.append(json.loads(Payload))
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response


ROUTES = InvokedApi.routes_of(["GET /jobs", "GET /jobs/{job_id}", "POST /jobs", "$default", "GET /openapi.json"])


def test_invoked_api_sends_the_event_api_gateway_would_for_the_deployed_route() -> None:
    lam = FakeLambda(200, {"job_id": "01J", "status": "queued"})
    api = InvokedApi(lam, "jobq-ApiFunction", ROUTES, "arn:aws:iam::000000000000:user/rehearsal")
    assert api.expect(200, "GET", "/jobs/01J") == {"job_id": "01J", "status": "queued"}
    api.call("POST", "/jobs", {"type": "echo"})
    get, post = lam.events
    assert (get["routeKey"], get["pathParameters"]) == ("GET /jobs/{job_id}", {"job_id": "01J"})
    assert get["requestContext"]["authorizer"]["iam"]["userArn"] == "arn:aws:iam::000000000000:user/rehearsal"
    assert get["requestContext"]["http"]["method"] == "GET"
    assert (post["routeKey"], json.loads(post["body"])) == ("POST /jobs", {"type": "echo"})
    with pytest.raises(RuntimeError, match="answered 200 \\(wanted 202\\)"):
        api.expect(202, "GET", "/jobs/01J")
    with pytest.raises(LookupError, match="no route for DELETE /jobs"):
        api.call("DELETE", "/jobs")


def test_invoked_api_raises_a_function_error() -> None:
    api = InvokedApi(FakeLambda(200, {}, function_error="Unhandled"), "f", ROUTES, "arn")
    with pytest.raises(RuntimeError, match="f failed \\(Unhandled\\)"):
        api.call("GET", "/jobs")


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


def test_report_times_phases_and_turns_an_exception_into_a_failed_phase() -> None:
    lines: list[str] = []
    report = Report(say=lines.append, clock=Ticks())
    with report.phase("build"):
        report.check(True, "it builds")
    with pytest.raises(Abort), report.phase("deploy"):
        raise ValueError("no bucket")
    report.workaround("a string where a number belongs")
    assert report.phases == [("build", 1.5), ("deploy", 1.5)]
    assert report.failed == ["deploy: ValueError: no bucket"]
    assert not report.passed
    summary = report.summary("MiniStack 9.9", 3.0)
    assert summary.splitlines()[0] == "deploy rehearsal on MiniStack 9.9: FAILED"
    assert "  + it builds" in summary
    assert "worked around (MiniStack 9.9):\n  ~ a string where a number belongs" in summary
    assert "failed:\n  - deploy: ValueError: no bucket" in summary
    assert "  total      3.0 s" in summary


def test_report_passes_with_proofs_and_no_failure_and_records_a_failed_check() -> None:
    report = Report(say=lambda _: None)
    assert not report.passed  # nothing proved is no pass
    report.check(True, "a")
    assert report.passed
    assert not report.check(False, "b", "because")
    assert report.failed == ["b: NOT SO (because)"]
    assert "failed:\n  - b: NOT SO (because)" in report.summary("X", 0)


def test_log_errors_are_counted_without_their_timestamps() -> None:
    log = "\n".join([
        "2026-12-01 11:16:30 ERROR [lambda] ESM SQS poller error: bad",
        "2026-12-01 11:16:31 INFO [lambda] ok",
        "2026-12-01 11:16:32 ERROR [lambda] ESM SQS poller error: bad",
    ])  # fmt: skip
    assert log_errors(log) == ["2 x [lambda] ESM SQS poller error: bad"]


def test_sam_runs_with_the_runtime_python_first_and_its_files_under_the_cache() -> None:
    environment = sam.environment({"PATH": "/usr/bin", "HOME": "/root"}, "/opt/py313/bin/python3.13")
    assert environment["PATH"] == "/opt/py313/bin:/usr/bin"
    assert environment["SAM_CLI_TELEMETRY"] == "0"
    assert environment["__SAM_CLI_APP_DIR"].endswith("/.cache/sam")
    assert environment["HOME"] == "/root"


def test_deployed_bytecode_counts_every_pyc_of_the_package_top_level_ones_included(tmp_path: Path) -> None:
    package = tmp_path / "code.zip"
    with zipfile.ZipFile(package, "w") as archive:
        names = ["six.py", "__pycache__/six.cpython-313.pyc", "jobq/api.py", "jobq/__pycache__/api.cpython-313.pyc"]
        for name in names:
            archive.writestr(name, "")
        archive.writestr("jobq/notes.txt", "")

    class PackageLambda:
        def get_function(self, *, FunctionName: str) -> dict[str, Any]:
            return {"Code": {"Location": package.as_uri()}}

    assert deployed_bytecode(PackageLambda(), "jobq-ApiFunction") == (2, 2)
