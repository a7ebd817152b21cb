"""jobq: asynchronous jobs on API Gateway, Lambda, SQS and DynamoDB."""

__version__ = "0.1.0"
