"""Lambda entry points: decorators, parsing, one domain call, error mapping."""

from jobq.snapstart import register_hooks

register_hooks()
