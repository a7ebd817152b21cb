"""What a function's cold start loads: only what its first invocation needs (``make coldstart`` measures it)."""

from __future__ import annotations

import subprocess
import sys

OPENAPI_MODELS = "aws_lambda_powertools.event_handler.openapi.models"


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_the_api_entry_point_leaves_the_openapi_models_to_the_docs_routes() -> None:
    out = _run(f"import sys, jobq.handlers.api as api\napi._entrypoint()\nprint({OPENAPI_MODELS!r} in sys.modules)\n")
    assert out.strip() == "False"


def test_swagger_ui_is_set_up_by_the_first_request_for_it() -> None:
    out = _run(
        "import sys, json\n"
        "from jobq.handlers.api import ApiDependencies, build_app\n"
        "from jobq_local.events import LambdaContext, http_api_event\n"
        "app = build_app(ApiDependencies(service=None, redriver=None, max_body_bytes=lambda: 1, admins=frozenset))\n"
        "context = LambdaContext('ApiFunction', timeout_seconds=15, memory_limit_in_mb=512, region='us-east-1',"
        " account_id='123456789012')\n"
        f"before = {OPENAPI_MODELS!r} in sys.modules\n"
        "page = app.resolve(http_api_event('GET', '/docs'), context)\n"
        "again = app.resolve(http_api_event('GET', '/docs'), context)\n"
        "print(json.dumps([before, page['statusCode'], page['headers']['Content-Type'], 'swagger' in page['body'],"
        " again['statusCode']]))\n"
    )
    assert out.strip() == '[false, 200, "text/html", true, 200]'


def test_the_worker_imports_powertools_batch_before_pydantic_so_no_record_models_are_built() -> None:
    """Powertools' batch types build pydantic models of SQS, Kinesis, DynamoDB and Kafka records when pydantic
    is already imported; ``import jobq`` imports nothing, so the worker's import of the batch utilities comes
    first."""
    out = _run(
        "import sys, jobq.handlers.worker\n"
        "print(['pydantic' in sys.modules, 'aws_lambda_powertools.utilities.parser.models' in sys.modules])\n"
    )
    assert out.strip() == "[True, False]"


def test_importing_jobq_imports_none_of_its_exports_until_used() -> None:
    out = _run(
        "import sys, jobq\nbefore = [m for m in sys.modules if m.startswith(('jobq.', 'pydantic'))]\n"
        "from jobq import JobType, RetryPolicy\nprint([before, JobType.__module__, RetryPolicy.__module__])\n"
    )
    assert out.strip() == "[[], 'jobq.domain.registry', 'jobq.domain.retry']"


API_ONLY = ("jobq.domain.documents", "jobq.domain.service", "jobq.adapters.dynamodb.listing")
"""The API's documents and use cases, and the listing that sizes pages by the documents."""


def test_the_worker_and_the_sweeper_import_none_of_the_apis_documents_or_use_cases() -> None:
    out = _run(
        "import json, sys\n"
        "from jobq import wiring\n"
        "import jobq.handlers.worker, jobq.handlers.sweeper\n"
        "import jobq.domain.runner, jobq.domain.sweeper  # what their first invocation builds\n"
        f"loaded = [m for m in {API_ONLY!r} if m in sys.modules]\n"
        "from jobq.domain.documents import JobDocument\n"
        "print(json.dumps([loaded, JobDocument.__module__]))\n"
    )
    assert out.strip() == '[[], "jobq.domain.documents"]'
