"""jobq dashboard: a small web page over a deployment, served on 127.0.0.1, every call signed by ``jobq.Client``.

Server-side rendered HTML, no build step, no new dependency: jobs newest first with filters, paging and
counts by status, a job's page (payload, result, error, history, progress), cancel and retry, the
dead-letter queue with redrive, and a submit form built from ``GET /types``.
"""

from jobq.dashboard.forms import form_payload
from jobq.dashboard.pages import Dashboard
from jobq.dashboard.server import DashboardServer, make_server, serve, serve_in_thread

__all__ = ["Dashboard", "DashboardServer", "form_payload", "make_server", "serve", "serve_in_thread"]
