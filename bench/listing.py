"""Benchmark: ``GET /jobs?status=failed`` among many succeeded jobs (`make bench-listing ARGS="--succeeded 20000"`).

Stores the jobs in the moto stack's table (through the repository, as the API and the worker write them), then
asks the API function for the failed ones, as an admin and as their owner, and prints what it read.
"""

from __future__ import annotations

import argparse
import time

from tests.support.callers import ADMIN, ALICE
from tests.support.listing_reads import counting_reads, fill
from tests.support.stack import moto_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--succeeded", type=int, default=20_000)
    parser.add_argument("--failed", type=int, default=10)
    args = parser.parse_args()
    with moto_stack({"AdminPrincipals": ADMIN}) as stack:
        started = time.monotonic()
        failed = fill(args.succeeded, args.failed)
        print(f"stored {args.succeeded} succeeded and {args.failed} failed jobs in {time.monotonic() - started:.1f} s")
        for who, caller in (("admin", ADMIN), ("owner", ALICE)):
            with counting_reads() as reads:
                page = stack.api("GET", "/jobs", query="status=failed&limit=100", caller=caller)
            found = [job["job_id"] for job in page.body["items"]]
            print(
                f"{who:<5}  GET /jobs?status=failed: {len(found)} jobs in one page "
                f"(all {args.failed}: {found == failed}, next_cursor={page.body['next_cursor']}); "
                f"read {reads.items} items in {reads.total_requests} requests {dict(reads.requests)}"
            )
            if found != failed or reads.items > 2 * len(failed) + 16:
                raise SystemExit("the listing read more than its page")


if __name__ == "__main__":
    main()
