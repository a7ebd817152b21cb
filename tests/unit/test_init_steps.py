"""make coldstart-steps: every function's steps, in the order its handler imports them."""

from __future__ import annotations

import subprocess
import sys

from bench.coldstart import FIRST_USE, boto3_body
from bench.init_steps import LIBRARIES, steps, yardstick

from jobq_local.template import Template


def test_every_function_of_the_template_has_steps_ending_in_its_handler_and_first_use() -> None:
    template = Template()
    functions = {spec.logical_id: spec.handler for spec in template.functions()}
    assert set(LIBRARIES) == set(functions)
    for function, handler in functions.items():
        labelled = steps(function, handler)
        assert [label for label, _ in labelled[: len(LIBRARIES[function])]] == [
            f"import {name}" for name in LIBRARIES[function]
        ]
        assert handler.rpartition(".")[0] in labelled[-2][1]
        assert labelled[-1][1] == FIRST_USE[function]


def test_the_worker_step_order_is_the_order_the_worker_imports_its_libraries() -> None:
    # In a fresh process: after the worker's handler module, pydantic came in after Powertools' batch utilities.
    probe = (
        "import sys, jobq.handlers.worker; order = list(sys.modules); "
        "print(order.index('aws_lambda_powertools.utilities.batch') < order.index('pydantic'))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
    assert LIBRARIES["WorkerFunction"].index("aws_lambda_powertools.utilities.batch") < LIBRARIES[
        "WorkerFunction"
    ].index("pydantic")


def test_the_yardstick_steps_run_make_coldstarts_yardstick() -> None:
    for function in LIBRARIES:
        (first, first_code), (_, clients) = yardstick(function)
        assert (first, first_code) == ("import boto3", "import boto3")
        assert clients.startswith("session = boto3.session.Session(); session.client(")
        assert "; ".join([first_code, clients]) == boto3_body(function)
