"""make deploy-rehearsal: template.yaml built with ``sam build``, deployed with ``sam deploy`` through MiniStack's
CloudFormation (SAM transform), and jobs run through the deployed functions and the real SQS event source mapping.

    python -m emulators.rehearsal [--no-schedule] [--keep] [--param NAME=VALUE ...]

Prints what it proved, what it worked around (and why), what failed, and each phase's time; exits 1 when
anything failed, a build or a deploy included. Everything it writes is under .cache/ (the run's directory in
.cache/rehearsal/ is removed after a passing run, kept after a failing one) and in .venv-sam and .venv-ministack.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emulators import sam
from emulators.build import census, compile_build
from emulators.deployed import (
    Endpoint,
    Stack,
    deployed_bytecode,
    differences,
    expected_outputs,
    fix_max_concurrency,
)
from emulators.ministack import MiniStack
from emulators.processes import Venv
from emulators.report import Abort, Report
from emulators.scenario import Deployment, call_http_api, run_jobs, see_schedule
from emulators.staging import Staged, function_settings, pip_install, stage
from jobq_local.template import REPO_ROOT, TEMPLATE_PATH, Template, TemplateError, load_document

WORKDIR = REPO_ROOT / ".cache" / "rehearsal"
STACK = "jobq"
BUCKET = "jobq-rehearsal-artifacts"
REGION = "us-east-1"
CALLER = "rehearsal"
"""The IAM user the rehearsal calls the API as, named in AdminPrincipals."""
PARAMETERS = {"MaxAttempts": "3", "RetryBaseSeconds": "1", "SnapStart": "PublishedVersions"}
"""Overrides that keep the retries short and turn SnapStart on (AdminPrincipals is added)."""
FUNCTIONS = ("ApiFunction", "WorkerFunction", "SweeperFunction")


def run_sam(venv: Venv, args: Sequence[str], *, cwd: Path, log: Path, environment: Mapping[str, str] = {}) -> None:
    """``sam ARGS`` in ``cwd`` (it writes .aws-sam/ there), its output in ``log``; Abort with its end on failure."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    with log.open("w") as out:
        code = subprocess.run(  # noqa: S603 - the pinned SAM CLI
            [str(venv.bin / "sam"), *args],
            env=sam.environment(base, venv.python) | dict(environment),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise Abort(f"sam {args[0]} exited with {code} (its output: {log}):\n{tail}")


def build(report: Report, workdir: Path) -> tuple[Venv, Staged]:
    """The pinned SAM CLI, ``sam build`` of template.yaml, and the build staged for this machine."""
    with report.phase("SAM CLI"):
        venv = sam.venv().ensure()
        env = sam.environment(os.environ, venv.python)
        version = subprocess.check_output([str(venv.bin / "sam"), "--version"], env=env, text=True).strip()  # noqa: S603
        report.say(f"  {version} in {venv.path.name}, on Python {sam.PYTHON}")
    with report.phase("sam build"):
        out = workdir / "build"
        args = ["build", "--template-file", str(TEMPLATE_PATH), "--build-dir", str(out)]
        run_sam(venv, [*args, "--cache-dir", str(workdir / "build-cache")], cwd=workdir, log=workdir / "sam-build.log")
        built = sorted(path.name for path in out.iterdir() if path.is_dir())
        builds = (workdir / "sam-build.log").read_text().count("Building codeuri:")
        report.check(True, f"sam build of template.yaml: {', '.join(built)} ({builds} builds of their code)")
        for compiled in compile_build(out, venv.python):
            report.check(
                compiled.pycs == compiled.modules,
                f"bytecode for {compiled.code.name}: {compiled.pycs} of {compiled.modules} modules, as make build "
                f"compiles them for Python {sam.PYTHON} (unchecked-hash)",
                f"{compiled.modules - compiled.pycs} did not compile",
            )
        if builds > len({str(setting["CodeUri"]) for setting in function_settings(load_document()).values()}):
            report.say("  (SAM builds a CodeUri shared by functions once only when their Metadata are equal)")
    with report.phase("stage"):
        machine = platform.machine()
        install = functools.partial(pip_install, cache=REPO_ROOT / ".cache" / "pip")
        staged = stage(out, workdir / "deploy.json", machine=machine, install=install)
        for code, replaced in staged.replaced.items():
            users = sorted(logical for logical, path in staged.code.items() if path == code)
            report.say(f"  {', '.join(users)}: {code}")
            if replaced:
                archs = "/".join(sorted({staged.architectures[logical] for logical in users}))
                report.workaround(
                    f"MiniStack runs functions on this machine's CPU ({machine}) whatever their Architectures "
                    f"({archs}), where the build's compiled wheels cannot load: replaced "
                    f"{'; '.join(map(str, replaced))} by the same versions for {machine} in the code of "
                    f"{', '.join(users)} (without bytecode); every other file is as sam build and its bytecode "
                    "step wrote it"
                )
    return venv, staged


def deploy(report: Report, workdir: Path, venv: Venv, staged: Staged, ministack: MiniStack,
           parameters: dict[str, str]) -> Deployment:  # fmt: skip
    """MiniStack started, the rehearsal's caller made, and the staged template deployed with ``sam deploy``."""
    with report.phase("MiniStack"):
        ministack.start()
        report.say(f"  MiniStack {ministack.version()} on {ministack.url}")
        endpoint = Endpoint(ministack.url, REGION)
        iam = endpoint.client("iam")
        caller = iam.create_user(UserName=CALLER)["User"]["Arn"]
        key = iam.create_access_key(UserName=CALLER)["AccessKey"]
        parameters.setdefault("AdminPrincipals", caller)
        endpoint.client("s3").create_bucket(Bucket=BUCKET)
    with report.phase("sam deploy"):
        overrides = [f"{name}={value}" for name, value in parameters.items()]
        report.say(f"  sam deploy --stack-name {STACK} --parameter-overrides {' '.join(overrides)}")
        variables = {"AWS_ENDPOINT_URL": ministack.url, "AWS_DEFAULT_REGION": REGION}
        variables |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        args = ["deploy", "--template-file", str(staged.template), "--stack-name", STACK, "--s3-bucket", BUCKET]
        args += ["--region", REGION, "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
        args += ["--no-confirm-changeset", "--no-progressbar", "--parameter-overrides", *overrides]
        try:
            run_sam(venv, args, cwd=workdir, log=workdir / "sam-deploy.log", environment=variables)
        finally:
            failures = _failed_events(endpoint.client("cloudformation"))
            for line in failures:
                report.say(f"  {line}")
        deployed_at = time.time()
        stack = Stack.read(endpoint.client("cloudformation"), STACK)
        report.check(
            stack.status == "CREATE_COMPLETE",
            f"sam deploy (upload, change set, SAM transform): {STACK} {stack.status}, {len(stack.physical)} resources",
            "; ".join(failures),
        )
        if stack.status != "CREATE_COMPLETE":
            raise Abort(f"stack {stack.status}")
    credentials = (key["AccessKeyId"], key["SecretAccessKey"])
    return Deployment(endpoint, stack, parameters, caller, credentials, deployed_at)


def _failed_events(cloudformation: Any) -> list[str]:
    try:
        events = cloudformation.describe_stack_events(StackName=STACK)["StackEvents"]
    except Exception:  # noqa: BLE001 - no stack at all: sam deploy's own output says why
        return []
    return [
        f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if "FAILED" in e["ResourceStatus"]
    ]


def inspect(report: Report, deployment: Deployment, staged: Staged) -> None:
    """Outputs, variables, event source mapping (fixed where MiniStack needs it) and schedule, against the
    template resolved with the stack's own resources."""
    with report.phase("stack"):
        stack, lam = deployment.stack, deployment.client("lambda")
        template = stack.expected(load_document(), deployment.parameters, account_id=deployment.caller.split(":")[4])
        for name, value in stack.outputs.items():
            report.say(f"  output {name} = {value}")
        wrong = differences(expected_outputs(template), stack.outputs)
        report.check(not wrong, f"outputs {', '.join(stack.outputs)}: the template's, resolved", "; ".join(wrong))
        for logical in FUNCTIONS:
            config = lam.get_function_configuration(FunctionName=stack.physical[logical])
            actual = config.get("Environment", {}).get("Variables", {})
            try:
                expected = template.function_environment(logical)
            except TemplateError as exc:
                report.check(False, f"{logical}'s variables resolve to the stack's resources", f"the template: {exc}")
                continue
            report.check(
                not (wrong := differences(expected, actual)),
                f"{logical}'s {len(expected)} variables resolve to the stack's table, queues and parameters",
                "; ".join(wrong),
            )
        aliases = {logical: alias_target(report, lam, template, stack, logical) for logical in FUNCTIONS}
        for logical in FUNCTIONS:
            deployed, handed = deployed_bytecode(lam, stack.physical[logical]), census(staged.code[logical])
            report.check(
                deployed == (handed.modules, handed.pycs) and handed.pycs > 0,
                f"{logical}'s deployed package carries the bytecode it was given: {deployed[1]} pycs for "
                f"{deployed[0]} modules",
                f"{deployed[1]} pycs for {deployed[0]} modules where the staged code has {handed.pycs} for "
                f"{handed.modules}",
            )
        queue = deployment.client("sqs").get_queue_attributes(
            QueueUrl=stack.physical["JobsQueue"], AttributeNames=["QueueArn"]
        )
        queue_arn = queue["Attributes"]["QueueArn"]
        mappings = lam.list_event_source_mappings(FunctionName=aliases["WorkerFunction"])["EventSourceMappings"]
        report.check(
            [(m["EventSourceArn"], m["FunctionResponseTypes"]) for m in mappings]
            == [(queue_arn, ["ReportBatchItemFailures"])],
            f"one event source mapping: JobsQueue -> WorkerFunction:{template.function('WorkerFunction').alias}, "
            "ReportBatchItemFailures",
            str(mappings),
        )
        for mapping in mappings:
            before, after = fix_max_concurrency(lam, deployment.endpoint.url, mapping["UUID"])
            if isinstance(before, str):
                report.workaround(
                    f"the event source mapping's ScalingConfig.MaximumConcurrency (!Ref WorkerMaxConcurrency) was "
                    f"stored as the string {before!r}, which stops MiniStack's SQS poller (\"'>=' not supported "
                    f"between instances of 'int' and 'str'\"): set to the number {after!r} with "
                    "UpdateEventSourceMapping after the deploy"
                )
        schedule = template.resolve(template.function("SweeperFunction").events[0].properties["Schedule"])
        events = deployment.client("events")
        names = events.list_rule_names_by_target(TargetArn=aliases["SweeperFunction"]).get("RuleNames", [])
        rules = [
            (r.get("ScheduleExpression"), r.get("State")) for r in (events.describe_rule(Name=name) for name in names)
        ]
        report.check(rules == [(schedule, "ENABLED")], f"SweeperFunction's rule: {schedule}, ENABLED", str(rules))


def alias_target(report: Report, lam: Any, template: Template, stack: Stack, logical: str) -> str:
    """The ARN of ``logical``'s AutoPublishAlias, checked to name a published version with the SnapStart setting."""
    spec = template.function(logical)
    if spec.alias is None:
        report.check(False, f"{logical} has an AutoPublishAlias", "the template sets none")
        return str(lam.get_function_configuration(FunctionName=stack.physical[logical])["FunctionArn"])
    alias = lam.get_alias(FunctionName=stack.physical[logical], Name=spec.alias)
    version = lam.get_function_configuration(FunctionName=stack.physical[logical], Qualifier=alias["FunctionVersion"])
    wanted = template.resolve(spec.properties.get("SnapStart", {})).get("ApplyOn", "None")
    applied = version.get("SnapStart", {}).get("ApplyOn", "None")
    report.check(
        alias["FunctionVersion"] != "$LATEST" and applied == wanted,
        f"{logical}:{spec.alias} -> published version {alias['FunctionVersion']}, SnapStart {applied}",
        f"the alias names {alias['FunctionVersion']}, SnapStart {applied!r} where the template says {wanted!r}",
    )
    return str(alias["AliasArn"])


def rehearse(report: Report, workdir: Path, parameters: dict[str, str], schedule_timeout: float | None) -> str:
    """Every phase in turn (an Abort stops them); the emulator's name and version."""
    ministack = MiniStack(workdir / "ministack")
    emulator = "MiniStack (not started)"
    try:
        venv, staged = build(report, workdir)
        deployment = deploy(report, workdir, venv, staged, ministack, parameters)
        inspect(report, deployment, staged)
        jobs = run_jobs(report, deployment)
        call_http_api(report, deployment, jobs)
        if schedule_timeout is None:
            report.skip("the sweeper's schedule (--no-schedule)")
        else:
            see_schedule(report, deployment, schedule_timeout)
    except Abort:
        pass
    finally:
        if ministack.service and ministack.service.alive:
            emulator = f"MiniStack {ministack.version()}"
        log = ministack.service.tail(10**6) if ministack.service else ""
        ministack.stop()
        if ministack.service:
            errors = log_errors(log)
            report.say(f"\nMiniStack stopped; its log's errors: {'; '.join(errors) or 'none'}")
    return emulator


def log_errors(log: str) -> list[str]:
    """MiniStack's distinct ERROR lines, timestamps left out, each with its count."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        if " ERROR " in line:
            message = line.split(" ERROR ", 1)[1].strip()
            counts[message] = counts.get(message, 0) + 1
    return [f"{count} x {message}" for message, count in counts.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.rehearsal", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a stack parameter")
    parser.add_argument("--no-schedule", action="store_true", help="do not wait (up to 90 s) for a scheduled sweep")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (build, logs) after a pass")
    args = parser.parse_args(argv)
    WORKDIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=WORKDIR))
    if any("=" not in pair for pair in args.param):
        parser.error("--param takes NAME=VALUE")
    parameters = PARAMETERS | dict(pair.split("=", 1) for pair in args.param)
    report = Report(say=lambda line: print(line, flush=True))
    started = time.monotonic()
    emulator = rehearse(report, workdir, parameters, None if args.no_schedule else 90.0)
    print("\n" + report.summary(emulator, time.monotonic() - started))
    if report.passed and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"\nthe run's build and logs: {workdir}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
