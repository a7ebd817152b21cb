"""The dashboard on HTTP (127.0.0.1): the request handler, its Origin check and headers, the server."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from jobq.dashboard.markup import Page
from jobq.dashboard.pages import Dashboard

if TYPE_CHECKING:
    from jobq.client import Client

MAX_FORM_BYTES = 300 * 1024


class Handler(BaseHTTPRequestHandler):
    """HTTP in front of a Dashboard; POSTs must come from the dashboard's own pages (Origin check)."""

    server: DashboardServer
    server_version = "jobq-dashboard"

    def do_GET(self) -> None:
        self._answer("GET", {})

    def do_POST(self) -> None:
        if not self._same_origin():
            self._send(Page(HTTPStatus.FORBIDDEN, "<p>cross-site request refused</p>"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM_BYTES:
            self._send(self.server.dashboard.error_page(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "form too large"))
            return
        text = self.rfile.read(length).decode("utf-8", errors="replace")
        self._answer("POST", {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()})

    def _answer(self, method: str, form: Mapping[str, str]) -> None:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        try:
            page = self.server.dashboard.route(method, parts.path, query, form)
        except Exception as exc:  # noqa: BLE001 - a page, never a traceback in the browser
            self.log_error("page failed: %r", exc)
            page = self.server.dashboard.error_page(HTTPStatus.BAD_GATEWAY, f"{type(exc).__name__}: {exc}")
        self._send(page)

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin") or self.headers.get("Referer")
        if not origin:
            return False
        host, port = self.server.address
        return urlsplit(origin).netloc in {f"{host}:{port}", f"localhost:{port}"}

    def _send(self, page: Page) -> None:
        body = page.body.encode()
        self.send_response(page.status)
        if page.location:
            self.send_header("Location", page.location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header(
            "Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
        )
        self.end_headers()
        # The browser may go on (an auto refresh, a click) before the page is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the dashboard is a local tool."""


class DashboardServer(ThreadingHTTPServer):
    """The dashboard's HTTP server (127.0.0.1)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], dashboard: Dashboard) -> None:
        super().__init__(address, Handler)
        self.dashboard = dashboard

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on."""
        host, port = self.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"


def make_server(
    client: Client, *, host: str = "127.0.0.1", port: int = 0, refresh_seconds: float = 2.0
) -> DashboardServer:
    """A dashboard server on ``host:port`` (0: any free port), not yet serving."""
    return DashboardServer((host, port), Dashboard(client, refresh_seconds=refresh_seconds))


def serve(client: Client, *, host: str = "127.0.0.1", port: int = 8300, refresh_seconds: float = 2.0) -> None:
    """Serve the dashboard until Ctrl-C."""
    server = make_server(client, host=host, port=port, refresh_seconds=refresh_seconds)
    print(f"jobq dashboard on {server.url}  (API {client.url}); Ctrl-C stops it", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_in_thread(server: DashboardServer) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests, screenshots)."""
    thread = threading.Thread(target=server.serve_forever, name="jobq-dashboard", daemon=True)
    thread.start()
    return thread
