"""Lambda entry points: decorators, parsing, one domain call, error mapping."""
