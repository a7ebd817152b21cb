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
from emulators.deployed import Endpoint, Stack, differences, expected_outputs, fix_max_concurrency
from emulators.ministack import MiniStack
from emulators.processes import Venv
from emulators.report import Abort, Report
from emulators.scenario import Deployment, call_http_api, run_jobs, see_schedule
from emulators.staging import Staged, function_settings, pip_install, stage
from jobq_local.template import REPO_ROOT, TEMPLATE_PATH, TemplateError, load_document

WORKDIR = REPO_ROOT / ".cache" / "rehearsal"
STACK = "jobq"
BUCKET = "jobq-rehearsal-artifacts"
REGION = "us-east-1"
CALLER = "rehearsal"
"""The IAM user the rehearsal calls the API as, named in AdminPrincipals."""
PARAMETERS = {"MaxAttempts": "3", "RetryBaseSeconds": "1"}
"""Overrides that keep the retries short (AdminPrincipals is added)."""
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
                    f"{', '.join(users)}; every other file is as sam build wrote it"
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


def inspect(report: Report, deployment: Deployment) -> None:
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
        queue = deployment.client("sqs").get_queue_attributes(
            QueueUrl=stack.physical["JobsQueue"], AttributeNames=["QueueArn"]
        )
        queue_arn = queue["Attributes"]["QueueArn"]
        mappings = lam.list_event_source_mappings(FunctionName=stack.physical["WorkerFunction"])["EventSourceMappings"]
        report.check(
            [(m["EventSourceArn"], m["FunctionResponseTypes"]) for m in mappings]
            == [(queue_arn, ["ReportBatchItemFailures"])],
            "one event source mapping: JobsQueue -> WorkerFunction, ReportBatchItemFailures",
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
        target = lam.get_function_configuration(FunctionName=stack.physical["SweeperFunction"])["FunctionArn"]
        events = deployment.client("events")
        names = events.list_rule_names_by_target(TargetArn=target).get("RuleNames", [])
        rules = [
            (r.get("ScheduleExpression"), r.get("State")) for r in (events.describe_rule(Name=name) for name in names)
        ]
        report.check(rules == [(schedule, "ENABLED")], f"SweeperFunction's rule: {schedule}, ENABLED", str(rules))


def rehearse(report: Report, workdir: Path, parameters: dict[str, str], schedule_timeout: float | None) -> str:
    """Every phase in turn (an Abort stops them); the emulator's name and version."""
    ministack = MiniStack(workdir / "ministack")
    emulator = "MiniStack (not started)"
    try:
        venv, staged = build(report, workdir)
        deployment = deploy(report, workdir, venv, staged, ministack, parameters)
        inspect(report, deployment)
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
