"""Write functions/jobq/adapters/botocore_data/endpoints.json: botocore's own, cut to the functions' services.

Every partition keeps its defaults, regions and region pattern; of the services, only those the functions'
session makes clients for (``jobq.adapters.aws.SERVICES``) stay. ``make botocore-data`` runs this after
``make lock`` moves botocore; a unit test fails while the file and the installed botocore disagree.

python -m emulators.botocore_data
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import botocore

from jobq.adapters.aws import BOTOCORE_DATA, SERVICES

ENDPOINTS = "endpoints.json"


def botocore_endpoints() -> dict[str, Any]:
    """The installed botocore's endpoints.json."""
    loaded: dict[str, Any] = json.loads((Path(botocore.__file__).parent / "data" / ENDPOINTS).read_text())
    return loaded


def trimmed(endpoints: dict[str, Any], services: Iterable[str] = SERVICES) -> dict[str, Any]:
    """``endpoints`` with every partition's ``services`` cut to ``services``."""
    keep = frozenset(services)
    partitions = [
        partition | {"services": {name: spec for name, spec in partition["services"].items() if name in keep}}
        for partition in endpoints["partitions"]
    ]
    return endpoints | {"partitions": partitions}


def render(endpoints: dict[str, Any]) -> str:
    return json.dumps(endpoints, indent=1, sort_keys=True) + "\n"


def main() -> None:
    BOTOCORE_DATA.mkdir(exist_ok=True)
    target = BOTOCORE_DATA / ENDPOINTS
    target.write_text(render(trimmed(botocore_endpoints())))
    services = ", ".join(SERVICES)
    print(f"wrote {target} ({target.stat().st_size} bytes; {services}; botocore {botocore.__version__})")


if __name__ == "__main__":
    main()
