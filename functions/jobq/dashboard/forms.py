"""The submit form's payload: read from its fields by the job type's JSON Schema, or from its JSON text."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from jobq.domain.documents import JobTypeDocument


def field_kind(spec: Mapping[str, Any]) -> str:
    """The JSON type of a schema property (the non-null one of an ``anyOf``); ``string`` when unsure."""
    if "type" in spec:
        return str(spec["type"])
    for option in spec.get("anyOf", []):
        if option.get("type") not in {None, "null"}:
            return str(option["type"])
    return "string"


def form_payload(job_type: JobTypeDocument, form: Mapping[str, str]) -> dict[str, Any]:
    """The payload a submit form describes: its JSON text when given, else each field by its schema type."""
    raw = form.get(f"{job_type.type}.__json__", "").strip()
    if raw and raw != "{}":
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"the payload JSON is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise ValueError("the payload JSON must be an object")
        return payload
    payload = {}
    for name, spec in job_type.payload_schema.get("properties", {}).items():
        field = f"{job_type.type}.{name}"
        kind = field_kind(spec)
        if kind == "boolean":
            payload[name] = form.get(field) == "on"
            continue
        text = form.get(field, "").strip()
        if not text:
            continue  # the model's default applies (or the API says the field is required)
        if kind == "integer":
            payload[name] = _number(name, text, int)
        elif kind == "number":
            payload[name] = _number(name, text, float)
        elif kind in {"object", "array"}:
            try:
                payload[name] = json.loads(text)
            except ValueError:
                raise ValueError(f"{name}: not JSON") from None
        else:
            payload[name] = text
    return payload


def _number(name: str, text: str, kind: Callable[[str], Any]) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None
