"""The job state machine and its vocabulary; no AWS SDK in here."""
