"""The published OpenAPI document: Powertools' own, made exact for jobq.

- ``POST /jobs`` takes a union discriminated on ``type``: one variant per registered job type with that
  type's payload schema, so Swagger UI and generated clients show each payload's real fields.
- A route lists the statuses it sends and no other: Powertools adds 422 to every route, but only a
  route with a request body sends it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from jobq.domain.documents import SubmitJobRequest
from jobq.domain.registry import JobRegistry

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
    from aws_lambda_powertools.utilities.typing import LambdaContext

SUBMIT_PATH = "/jobs"
REF_PREFIX = "#/components/schemas/"


class JobqResolver(APIGatewayHttpResolver):
    """APIGatewayHttpResolver whose OpenAPI document describes each job type's payload, and whose Swagger UI is
    set up by the first request for it (Powertools' ``enable_swagger`` imports the OpenAPI models, about a
    quarter of the function's cold start, which no other route needs)."""

    def __init__(self, *, registry: Callable[[], JobRegistry], **options: Any) -> None:
        super().__init__(**options)
        self._registry = registry
        self._swagger: dict[str, Any] | None = None

    def enable_swagger_on_first_use(self, *, path: str, **options: Any) -> None:
        """``enable_swagger(path=path, **options)``, called when a request for ``path`` first arrives."""
        self._swagger = {"path": path, **options}

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        if self._swagger is not None and str(event.get("rawPath", "")).rstrip("/").endswith(self._swagger["path"]):
            options, self._swagger = self._swagger, None
            self.enable_swagger(**options)
        return super().resolve(event, context)

    def get_openapi_schema(self, **options: Any) -> OpenAPI:
        """Powertools' document with the per-type submit union and only the statuses each route sends."""
        from aws_lambda_powertools.event_handler.openapi.models import OpenAPI  # the docs routes' alone

        document = super().get_openapi_schema(**options).model_dump(by_alias=True, exclude_none=True, mode="json")
        return OpenAPI.model_validate(exact_document(document, self._registry()))


def exact_document(document: dict[str, Any], registry: JobRegistry) -> dict[str, Any]:
    """``document`` with the submit body as a union over ``registry``'s types, and no 422 where no body is read."""
    document = copy.deepcopy(document)
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for path in document.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "requestBody" not in operation:
                operation.get("responses", {}).pop("422", None)
    submit = document.get("paths", {}).get(SUBMIT_PATH, {}).get("post")
    if submit is None:
        return document
    variants = submit_variants(registry, schemas)
    union = {
        "oneOf": [{"$ref": ref} for ref in variants.values()],
        "discriminator": {"propertyName": "type", "mapping": variants},
    }
    submit["requestBody"]["content"]["application/json"]["schema"] = union
    return document


def submit_variants(registry: JobRegistry, schemas: dict[str, Any]) -> dict[str, str]:
    """Add a ``Submit<Type>Job`` schema per job type (and its payload's) to ``schemas``; type -> $ref."""
    base = SubmitJobRequest.model_json_schema(ref_template=REF_PREFIX + "{model}")["properties"]
    variants = {}
    for name in registry.names:
        job_type = registry.require(name)
        payload = job_type.model.model_json_schema(ref_template=REF_PREFIX + "{model}")
        schemas.update(payload.pop("$defs", {}))
        title = "".join(part.capitalize() for part in name.replace(".", "_").replace("-", "_").split("_"))
        payload_name = f"{title}JobPayload"
        schemas[payload_name] = payload | {"title": payload_name}
        variant_name = f"Submit{title}Job"
        schemas[variant_name] = {
            "title": variant_name,
            "description": f"Submit a `{name}` job.",
            "type": "object",
            "properties": {
                "type": {"type": "string", "const": name},
                "payload": {"$ref": REF_PREFIX + payload_name},
                "delay_seconds": base["delay_seconds"],
            },
            "required": ["type", "payload"] if payload.get("required") else ["type"],
            "additionalProperties": False,
        }
        variants[name] = REF_PREFIX + variant_name
    return variants
