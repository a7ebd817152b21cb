"""template.yaml as data: parameters, conditions, SAM Globals, intrinsic functions, functions and events.

The local runtime, provisioning and the tests read every resource setting through this module, so that
template.yaml stays the single source of truth.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

NO_VALUE = object()
"""What ``!Ref AWS::NoValue`` resolves to: the enclosing property is dropped."""

_SHORT_TAGS = {
    "!Ref": "Ref",
    "!GetAtt": "Fn::GetAtt",
    "!Sub": "Fn::Sub",
    "!If": "Fn::If",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!And": "Fn::And",
    "!Or": "Fn::Or",
    "!Join": "Fn::Join",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!FindInMap": "Fn::FindInMap",
    "!Condition": "Condition",
    "!GetAZs": "Fn::GetAZs",
    "!Base64": "Fn::Base64",
}


class TemplateError(ValueError):
    """template.yaml uses something this module cannot evaluate, or a value is invalid."""


class _Loader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags into their long form."""


def _construct_tag(loader: _Loader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    tag = "!" + tag_suffix
    name = _SHORT_TAGS.get(tag)
    if name is None:
        raise TemplateError(f"unsupported tag {tag}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_Loader.add_multi_constructor("!", _construct_tag)


def load_document(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The raw template, with short-form intrinsics expanded."""
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


@dataclass(frozen=True)
class PhysicalResource:
    """What a logical resource is called once provisioned: Ref value and attributes."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventSource:
    """A function event from the template (SQS, HttpApi, Schedule, ...), properties resolved lazily."""

    name: str
    type: str
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    """An AWS::Serverless::Function with SAM Globals applied."""

    logical_id: str
    properties: Mapping[str, Any]

    @property
    def handler(self) -> str:
        return str(self.properties["Handler"])

    @property
    def timeout(self) -> int:
        """Seconds (SAM's default is 3)."""
        return int(self.properties.get("Timeout", 3))

    @property
    def memory_size(self) -> int:
        return int(self.properties.get("MemorySize", 128))

    @property
    def alias(self) -> str | None:
        """SAM's ``AutoPublishAlias``: the alias its event sources and integrations invoke."""
        alias = self.properties.get("AutoPublishAlias")
        return None if alias is None else str(alias)

    @property
    def events(self) -> list[EventSource]:
        return [
            EventSource(name, str(event["Type"]), event.get("Properties", {}))
            for name, event in (self.properties.get("Events") or {}).items()
        ]


class Template:
    """A template with parameter values chosen: resolves intrinsics against provisioned resources."""

    def __init__(
        self,
        document: Mapping[str, Any] | None = None,
        *,
        parameters: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        stack_name: str = "jobq",
    ) -> None:
        self.document: dict[str, Any] = copy.deepcopy(dict(document or load_document()))
        self.region = region
        self.account_id = account_id
        self.stack_name = stack_name
        self.parameters = self._parameter_values(parameters or {})
        self.physical: dict[str, PhysicalResource] = {}

    # -- parameters and conditions ------------------------------------------------------------

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, str]:
        declared: dict[str, Any] = self.document.get("Parameters", {})
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = str(overrides[name])
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no default; pass a value")
            _check_parameter(name, spec, value)
            values[name] = value
        return values

    def condition(self, name: str) -> bool:
        """The value of a named condition."""
        conditions = self.document.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(conditions[name]))

    # -- resources ----------------------------------------------------------------------------

    def resources(self, resource_type: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(logical id, resource) pairs, optionally of one type; resources whose condition fails are left out."""
        for logical_id, resource in self.document["Resources"].items():
            if resource_type is not None and resource["Type"] != resource_type:
                continue
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            yield logical_id, resource

    def resource(self, logical_id: str) -> dict[str, Any]:
        """One resource by logical id."""
        try:
            resource: dict[str, Any] = self.document["Resources"][logical_id]
        except KeyError:
            raise TemplateError(f"no resource {logical_id} in the template") from None
        return resource

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties with every intrinsic resolved."""
        resolved = self.resolve(self.resource(logical_id).get("Properties", {}))
        return dict(resolved)

    def dependencies(self, logical_id: str) -> set[str]:
        """Logical ids a resource refers to through Ref, GetAtt or Sub."""
        found: set[str] = set()
        resources = self.document["Resources"]

        def visit(node: Any) -> None:
            if isinstance(node, dict):
                if "Ref" in node and node["Ref"] in resources:
                    found.add(node["Ref"])
                if "Fn::GetAtt" in node:
                    found.add(_getatt_parts(node["Fn::GetAtt"])[0])
                if "Fn::Sub" in node:
                    text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
                    for match in re.finditer(r"\$\{([^}!]+)\}", text):
                        name = match.group(1).split(".", 1)[0]
                        if name in resources:
                            found.add(name)
                for value in node.values():
                    visit(value)
            elif isinstance(node, list):
                for value in node:
                    visit(value)

        visit(self.resource(logical_id).get("Properties", {}))
        return found - {logical_id}

    def functions(self) -> list[FunctionSpec]:
        """Every AWS::Serverless::Function, with Globals.Function merged in (unresolved)."""
        defaults = self.document.get("Globals", {}).get("Function", {})
        return [
            FunctionSpec(logical_id, _merge_globals(defaults, resource.get("Properties", {})))
            for logical_id, resource in self.resources("AWS::Serverless::Function")
        ]

    def function(self, logical_id: str) -> FunctionSpec:
        """One function by logical id."""
        for spec in self.functions():
            if spec.logical_id == logical_id:
                return spec
        raise TemplateError(f"no function {logical_id} in the template")

    def invoked_function(self, reference: Any) -> str | None:
        """The function a Lambda target names (``!GetAtt F.Arn``, ``!Ref F`` or SAM's ``!Ref F.Alias``)."""
        if isinstance(reference, dict) and "Fn::GetAtt" in reference:
            name = str(reference["Fn::GetAtt"][0])
        elif isinstance(reference, dict) and "Ref" in reference:
            name = str(reference["Ref"]).removesuffix(".Alias")
        else:
            return None
        functions = {spec.logical_id for spec in self.functions()}
        return name if name in functions else None

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment variables, resolved against the provisioned resources."""
        spec = self.function(logical_id)
        variables = self.resolve(spec.properties.get("Environment", {}).get("Variables", {}))
        return {name: str(value) for name, value in variables.items()}

    # -- intrinsic functions ------------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic function evaluated; AWS::NoValue entries are dropped."""
        if isinstance(node, list):
            return [value for value in (self.resolve(item) for item in node) if value is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            function = self._functions().get(key)
            if function is not None:
                return function(argument)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._getatt,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::Equals": lambda args: self.resolve(args[0]) == self.resolve(args[1]),
            "Fn::Not": lambda args: not self.resolve(args[0]),
            "Fn::And": lambda args: all(self.resolve(arg) for arg in args),
            "Fn::Or": lambda args: any(self.resolve(arg) for arg in args),
            "Fn::Join": lambda args: str(self.resolve(args[0])).join(str(v) for v in self.resolve(args[1])),
            "Fn::Select": lambda args: self.resolve(args[1])[int(self.resolve(args[0]))],
            "Fn::Split": lambda args: str(self.resolve(args[1])).split(str(self.resolve(args[0]))),
            "Condition": self.condition,
        }

    def _pseudo(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name not in pseudo:
            raise TemplateError(f"unsupported pseudo parameter {name}")
        return pseudo[name]

    def _ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name.startswith("AWS::"):
            return self._pseudo(name)
        return self._physical(name).ref

    def _getatt(self, argument: Any) -> str:
        logical_id, attribute = _getatt_parts(argument)
        physical = self._physical(logical_id)
        if attribute not in physical.attributes:
            raise TemplateError(f"{logical_id} has no attribute {attribute} here")
        return physical.attributes[attribute]

    def _physical(self, logical_id: str) -> PhysicalResource:
        if logical_id not in self.physical:
            raise TemplateError(f"{logical_id} is not provisioned (yet)")
        return self.physical[logical_id]

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        local = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in local:
                return str(local[expression])
            if "." in expression:
                return self._getatt(expression.split(".", 1))
            return str(self._ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)


def _getatt_parts(argument: Any) -> tuple[str, str]:
    parts = argument.split(".", 1) if isinstance(argument, str) else argument
    return str(parts[0]), str(parts[1])


def _merge_globals(defaults: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge, lists concatenate (globals first), scalars are overridden."""
    merged: dict[str, Any] = copy.deepcopy(dict(defaults))
    for key, value in properties.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and not _is_intrinsic(value):
            merged[key] = _merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = current + copy.deepcopy(value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)) in set(_SHORT_TAGS.values())


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name} must be a number, not {value!r}") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name} must be at least {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name} must be at most {spec['MaxValue']}")
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(option) for option in allowed]:
        raise TemplateError(f"parameter {name} must be one of {', '.join(map(str, allowed))}")
