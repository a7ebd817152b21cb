"""`jobq dashboard` in a real headless Chromium over the real local runtime: submit from the form, watch a job
succeed, retry a failed one, empty the dead-letter queue, see a running job's progress."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobq import Client
from jobq.dashboard import DashboardServer, make_server, serve_in_thread
from jobq_local.process import RuntimeProcess
from tests.support.browser import chromium
from tests.support.paths import HOSTILE_SITE

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    path = os.pathsep.join([str(HOSTILE_SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    parameters = {"RetryBaseSeconds": "1", "RetryMaxSeconds": "1", "MaxAttempts": "2"}
    with RuntimeProcess(parameters, environment={"PYTHONPATH": path}) as process:
        yield process


@pytest.fixture(scope="module")
def client(runtime: RuntimeProcess) -> Client:
    return Client.local(state_file=runtime.state_file)


@pytest.fixture(scope="module")
def dashboard(client: Client) -> Iterator[DashboardServer]:
    server = make_server(client, refresh_seconds=1)
    serve_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()


def submit_from_form(page: Page, dashboard: DashboardServer, job_type: str, payload_json: str | None = None) -> str:
    """Fill the submit form for ``job_type`` and send it; the job id of the page it lands on."""
    page.goto(f"{dashboard.url}/submit")
    page.select_option("#type", job_type)
    if payload_json is not None:
        page.fill(f'fieldset[data-type="{job_type}"] textarea', payload_json)
    page.click("#submit")
    page.wait_for_url(re.compile(r"/jobs/[0-9A-Z]{26}$"))
    return page.url.rsplit("/", 1)[1]


def test_submit_from_the_form_and_watch_the_job_succeed(page: Page, dashboard: DashboardServer) -> None:
    from playwright.sync_api import expect

    job_id = submit_from_form(page, dashboard, "echo", '{"hello": "browser"}')
    expect(page.locator("#status")).to_have_text("succeeded", timeout=WAIT_MS)  # the page refreshes itself
    assert '"hello": "browser"' in page.locator("pre").nth(1).inner_text()  # the result
    page.goto(f"{dashboard.url}/?refresh=0")
    row = page.locator(f'tr[data-job="{job_id}"]')
    expect(row).to_contain_text("succeeded")


def test_form_fields_follow_the_types_schema_and_bad_values_come_back_on_the_form(
    page: Page, dashboard: DashboardServer
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{dashboard.url}/submit")
    page.select_option("#type", "sleep")
    page.fill('input[name="sleep.seconds"]', "600")
    page.click("#submit")
    expect(page.locator("#form-error")).to_contain_text("payload is not valid for job type 'sleep'")
    expect(page.locator("#form-error")).to_contain_text("seconds: Input should be less than or equal to 60")
    assert page.locator('fieldset[data-type="sleep"]').is_visible()
    assert not page.locator('fieldset[data-type="echo"]').is_visible()


def test_retry_a_failed_job_and_empty_the_dead_letter_queue(
    page: Page, dashboard: DashboardServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    marker = tmp_path / "fail-while-this-exists"
    marker.touch()
    job_id = submit_from_form(page, dashboard, "flaky", f'{{"marker": "{marker}"}}')
    expect(page.locator("#status")).to_have_text("failed", timeout=WAIT_MS)
    expect(page.locator("#error")).to_contain_text("flaky:")
    page.goto(f"{dashboard.url}/dlq")
    expect(page.locator(f'#dlq a[href="/jobs/{job_id}"]')).to_be_visible()

    marker.unlink()  # the cause is fixed: retry the job from its page
    page.goto(f"{dashboard.url}/jobs/{job_id}")
    page.click("#retry")
    expect(page.locator("#status")).to_have_text("succeeded", timeout=WAIT_MS)
    expect(page.locator("#history")).to_contain_text("NonRetryableError")  # the failed attempt is kept

    page.goto(f"{dashboard.url}/dlq?refresh=0")
    if page.locator("#redrive-all").count():  # its old message, unless the sweeper removed it already
        expect(page.locator(f'#dlq tr:has(a[href="/jobs/{job_id}"]) .s')).to_have_text("succeeded")
        page.click("#redrive-all")  # a message of a job that is no longer failed: stale, deleted
        expect(page.locator("#report")).to_have_text("redriven 0, dropped 1, kept 0")
    expect(page.locator("#dlq-empty")).to_have_text("the dead-letter queue is empty", timeout=WAIT_MS)


def test_a_running_job_shows_its_progress_and_can_be_cancelled(
    page: Page, dashboard: DashboardServer, client: Client
) -> None:
    from playwright.sync_api import expect

    job = client.submit("count", {"to": 40, "seconds": 20})
    page.goto(f"{dashboard.url}/jobs/{job.job_id}")
    expect(page.locator("#status")).to_have_text("running", timeout=WAIT_MS)
    expect(page.locator(".facts .bar")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".facts")).to_contain_text("counted to", timeout=WAIT_MS)
    page.click("#cancel")
    expect(page.locator("#status")).to_have_text("cancelled", timeout=WAIT_MS)
    assert client.get(job.job_id).error is not None


def test_jobs_list_counts_filters_and_pages(page: Page, dashboard: DashboardServer, client: Client) -> None:
    from playwright.sync_api import expect

    for n in range(30):
        client.submit("echo", {"n": n}, delay_seconds=900)  # stay queued
    page.goto(f"{dashboard.url}/?status=queued&refresh=0")
    expect(page.locator('.counts a[data-status="queued"] b')).to_have_text(re.compile(r"^(3\d|\d{3})\+?$"))
    assert page.locator("#jobs tr[data-job]").count() == 25
    page.click("#next")
    assert 5 <= page.locator("#jobs tr[data-job]").count() <= 25
    statuses = set(page.locator("#jobs tr[data-job] .s").all_inner_texts())
    assert statuses == {"queued"}


def test_a_cross_site_post_is_refused(dashboard: DashboardServer) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{dashboard.url}/dlq/redrive", data=b"", method="POST", headers={"Origin": "http://evil.example"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
