"""jobq: asynchronous jobs on API Gateway, Lambda, SQS and DynamoDB.

What job authors import. A job type is a pydantic payload model, a handler
``handler(payload, context: JobContext)`` and one ``JobType(...)`` line in ``jobq/jobs/__init__.py``::

    from jobq import JobCancelled, JobContext, JobType, NonRetryableError, RetryPolicy

and what callers use: ``from jobq import Client`` (the Python client of the API; see ``jobq.client``).
Everything else in the package is internal and may change.
"""

from typing import TYPE_CHECKING

from jobq.domain.context import JobContext
from jobq.domain.errors import JobCancelled, NonRetryableError
from jobq.domain.registry import JobRegistry, JobType
from jobq.domain.retry import RetryPolicy

if TYPE_CHECKING:
    from jobq.client import Client

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


def __getattr__(name: str) -> object:
    """``jobq.Client`` on first use: the functions never import the client."""
    if name == "Client":
        from jobq.client import Client

        return Client
    raise AttributeError(f"module 'jobq' has no attribute {name!r}")
