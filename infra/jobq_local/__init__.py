"""jobq on one machine: template model, provisioning, local runtime."""
