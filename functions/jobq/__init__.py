"""jobq: asynchronous jobs on API Gateway, Lambda, SQS and DynamoDB.

What job authors import. A job type is a pydantic payload model, a handler
``handler(payload, context: JobContext)`` and one ``JobType(...)`` line in ``jobq/jobs/__init__.py``::

    from jobq import JobContext, JobType, NonRetryableError, RetryPolicy

Everything else in the package is internal and may change.
"""

from jobq.domain.context import JobContext
from jobq.domain.errors import NonRetryableError
from jobq.domain.registry import JobRegistry, JobType
from jobq.domain.retry import RetryPolicy

__version__ = "0.1.0"

__all__ = ["JobContext", "JobRegistry", "JobType", "NonRetryableError", "RetryPolicy", "__version__"]
