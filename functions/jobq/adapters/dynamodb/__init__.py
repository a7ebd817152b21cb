"""Jobs in DynamoDB (JobsTable in template.yaml): the repository, the listing, the item codec, the sweep index."""

from jobq.adapters.dynamodb.repository import DynamoDBJobRepository
from jobq.adapters.dynamodb.schema import list_shard
from jobq.adapters.dynamodb.sweep_index import DynamoDBSweepIndex
from jobq.adapters.dynamodb.table import JobsTable

__all__ = ["DynamoDBJobRepository", "DynamoDBSweepIndex", "JobsTable", "list_shard"]
