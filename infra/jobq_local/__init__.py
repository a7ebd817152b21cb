"""jobq's local runtime: template.yaml's functions, API and event sources on this machine, without Docker."""

LOGGER_NAME = "local-runtime"
"""The runtime's own log lines. Not a name containing "jobq": Powertools' Logger for service jobq puts a filter on
the root handler that drops every record whose logger name contains its service name."""
