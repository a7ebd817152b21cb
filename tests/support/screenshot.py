"""The README's dashboard screenshot (`make screenshot`): a local runtime with jobs in every status, in Chromium."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from jobq import Client
from jobq.dashboard import make_server, serve_in_thread
from jobq_local.process import RuntimeProcess
from tests.support.browser import chromium


def populate(client: Client) -> str:
    """Jobs in every status; the id of a running job that reports progress."""
    for n in range(3):
        client.submit("echo", {"order": 1000 + n})
    client.submit("fail", {"retryable": False, "message": "the image is not a PNG"})
    client.submit("sleep", {"seconds": 1})
    cancelled = client.submit("echo", {"later": True}, delay_seconds=600)
    client.cancel(cancelled.job_id)
    client.submit("echo", {"tomorrow": True}, delay_seconds=900)
    running = client.submit("count", {"to": 50, "seconds": 40})
    deadline = time.monotonic() + 30
    while (job := client.get(running.job_id)).progress is None or job.progress.done < 8:
        if time.monotonic() > deadline:
            raise SystemExit("the count job did not report progress")
        time.sleep(0.3)
    return running.job_id


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    with RuntimeProcess({"MaxAttempts": "2"}) as runtime:
        client = Client.local(state_file=runtime.state_file)
        populate(client)
        time.sleep(1.5)  # the sleep job done, the others settled
        server = make_server(client, refresh_seconds=0)
        serve_in_thread(server)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1180, "height": 560})
            page.goto(server.url)
            page.wait_for_selector("#jobs")
            args.output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.output))
        server.shutdown()
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
