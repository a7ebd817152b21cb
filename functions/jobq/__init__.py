"""jobq: asynchronous jobs on API Gateway, Lambda, SQS and DynamoDB.

What job authors import. A job type is a pydantic payload model, a handler
``handler(payload, context: JobContext)`` and one ``JobType(...)`` line in ``jobq/jobs/__init__.py``::

    from jobq import JobCancelled, JobContext, JobType, NonRetryableError, RetryPolicy

and what callers use: ``from jobq import Client`` (the Python client of the API; see ``jobq.client``).
Everything else in the package is internal and may change.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobq.client import Client
    from jobq.domain.context import JobContext
    from jobq.domain.errors import JobCancelled, NonRetryableError
    from jobq.domain.registry import JobRegistry, JobType
    from jobq.domain.retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "Client",
    "JobCancelled",
    "JobContext",
    "JobRegistry",
    "JobType",
    "NonRetryableError",
    "RetryPolicy",
    "__version__",
]

_EXPORTS = {
    "Client": "jobq.client",
    "JobCancelled": "jobq.domain.errors",
    "JobContext": "jobq.domain.context",
    "JobRegistry": "jobq.domain.registry",
    "JobType": "jobq.domain.registry",
    "NonRetryableError": "jobq.domain.errors",
    "RetryPolicy": "jobq.domain.retry",
}
"""Where each name of ``__all__`` lives, imported on first use: importing ``jobq`` (as every function and the
client do, before anything else) imports nothing. The worker relies on it: Powertools' batch utilities,
imported before pydantic is, skip building pydantic models of every event source's records (about 45 ms of
its cold start); the functions never import the client."""


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jobq' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
