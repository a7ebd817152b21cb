"""The embedded store: moto's server (``python -m moto.server``) with its per-request costs cut.

``python -m jobq_local.store --host 127.0.0.1 --port 4566`` serves exactly what moto's server serves, the same
backends and the same ``/moto-api``, but:

- it finds a request's backend once per host name, not by matching the name against every service's URL
  patterns on every request (about a tenth of moto's time under load, measured with py-spy);
- it runs on granian, a WSGI server whose HTTP side is Rust's (hyper), with keep-alive and a pool of threads
  for the application, where werkzeug's development server closes every connection (``Connection: close``)
  and starts a thread per request: every AWS call paid a TCP connect and a thread start on both sides (and
  where waitress, this store's server before, parsed every request in Python: about a quarter of the store's
  time, measured with py-spy);
- a queue's attributes are computed when read, one by one: moto builds all of them, the approximate
  message counts included (a scan of every message in the queue), on every SendMessage just to read
  ``ContentBasedDeduplication``, so sending got slower the deeper the queue (2 ms a message at 100
  messages, 23 ms at 1,000, measured in-process);
- DynamoDB responses skip moto's generic serializer for attribute values that it would copy unchanged
  (strings, numbers, booleans, nulls, lists and maps of them), which walked every member of the
  ``AttributeValue`` shape for every attribute of every item: about a sixth of the store's time;
- an UpdateExpression is parsed once per distinct text, not twice per request (moto validates a deep copy of
  the parsed tree, never the tree itself); its validators walk the tree with per-type answers instead of
  rebuilding their maps at every node, the two checks of the whole expression (clause counts, overlapping
  paths) run at its root instead of at each of its nodes, and the tree is copied without the generic
  ``__reduce_ex__`` round trip per node;
- a ConditionExpression is lexed once per distinct text (names and values are applied after lexing), and
  each response class's action names are listed once, not with ``inspect.getmembers`` on every request;
- an UpdateExpression of the simplest kind (top-level named attributes set to a value, an attribute, or an
  attribute plus or minus a number, or removed), jobq's own, is applied without moto's ten walks of its tree,
  after the checks those walks make (``jobq_local.simple_updates``; moto's own method for anything else);
- it writes no access log line per request.

And it runs one thing moto cannot: the PartiQL UPDATEs of the worker's ``BatchExecuteStatement`` (a batch's
first attempts claimed in one request), each as moto's own UpdateItem (``jobq_local.partiql``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError
from flask import Response
from moto.core.utils import convert_to_flask_response
from moto.moto_api import recorder
from moto.moto_server.werkzeug_app import BackendRequest, DomainDispatcherApplication, create_backend_app
from moto.settings import DISABLE_GLOBAL_CORS
from werkzeug.exceptions import HTTPException

from jobq_local import partiql, simple_updates
from jobq_local.process import die_with_parent


class QueueAttributes(Mapping[str, Any]):
    """``Queue.attributes`` as moto computes it, each value on first read instead of all of them up front."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        if queue.policy:
            names.append("Policy")
        if queue.redrive_policy:
            names.append("RedrivePolicy")
        self._names = list(dict.fromkeys(names))
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            if name not in self._names:
                raise KeyError(name)
            self._values[name] = self._compute(name)
        return self._values[name]

    def _compute(self, name: str) -> Any:
        from moto.core.utils import camelcase_to_underscores

        if name == "Policy":
            value = self._queue.policy
        elif name == "RedrivePolicy" and self._queue.redrive_policy:
            value = json.dumps(self._queue.redrive_policy)
        else:
            value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def lazy_queue_attributes() -> None:
    """Make moto's ``Queue.attributes`` a QueueAttributes (the same keys and values, computed when read)."""
    from moto.sqs.models import Queue

    Queue.attributes = property(QueueAttributes)  # type: ignore[assignment,method-assign]


_PLAIN_SCALARS = {"S": str, "N": str, "BOOL": bool}


def plain_attribute_value(value: Any) -> bool:
    """Whether ``value`` is an AttributeValue as DynamoDB's JSON writes it and moto's serializer would copy it
    unchanged: no binary (which it base64-encodes), nothing but plain dicts, lists, strings and booleans."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in _PLAIN_SCALARS:
        return type(inner) is _PLAIN_SCALARS[kind]
    if kind == "NULL":
        return inner is True
    if kind in {"SS", "NS"}:
        return type(inner) is list and all(type(member) is str for member in inner)
    if kind == "L":
        return type(inner) is list and all(plain_attribute_value(member) for member in inner)
    if kind == "M":
        return type(inner) is dict and all(plain_attribute_value(member) for member in inner.values())
    return False


def fast_attribute_values() -> None:
    """Serialize plain AttributeValues (``plain_attribute_value``) as they are, everything else as moto does."""
    from moto.core.serialize import BaseJSONSerializer

    generic = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and plain_attribute_value(value):
            serialized[self.get_serialized_name(shape, key)] = value
            return
        generic(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]


def parse_update_expressions_once() -> None:
    """Keep moto's parsed UpdateExpressions by their text (moto deep-copies the tree before it validates it)."""
    from moto.dynamodb.parsing import expressions

    parser: Any = expressions.UpdateExpressionParser  # type: ignore[attr-defined]
    parse: Callable[[str], Any] = parser.make
    parser.make = staticmethod(lru_cache(maxsize=512)(parse))


def lex_condition_expressions_once() -> None:
    """Keep moto's lexed ConditionExpressions by their text: lexing reads the text alone (names and values are
    applied after, to new nodes), and its nodes are tuples no later step changes, so each parse gets a fresh
    deque of the same nodes."""
    from collections import deque

    from moto.dynamodb.comparisons import ConditionExpressionParser

    parser: Any = ConditionExpressionParser
    lex: Callable[[Any], Any] = parser._lex_condition_expression

    @lru_cache(maxsize=512)
    def lexed(expression: str) -> tuple[Any, ...]:
        return tuple(lex(parser(expression, {}, {})))

    def lex_once(self: Any) -> Any:
        return deque(lexed(self.condition_expression))

    parser._lex_condition_expression = lex_once


def action_names_once() -> None:
    """Keep each moto response class's method names (moto lists them with inspect.getmembers per request)."""
    from moto.core import responses

    module: Any = responses
    module.method_names_from_class = lru_cache(maxsize=None)(module.method_names_from_class)


def quick_tree_walks() -> None:
    """moto's expression validators walk the tree once per validator (ten for an UpdateExpression) and, at every
    node, rebuilt the validator's map of node types to processing functions twice (a dict of bound methods),
    asked the ABC machinery whether the node is a node and whether the validator processes its type, and
    called a hook that almost no validator has. Each validator now builds its map once, the answers are kept per
    node type (moto registers no virtual subclasses, so a type's answer never changes), and the hook is called
    where a validator has one: the same walk, in the same order, with the same results."""
    from moto.dynamodb.parsing import ast_nodes

    traverser: Any = ast_nodes.DepthFirstTraverser  # type: ignore[attr-defined]
    node_class: Any = ast_nodes.Node  # type: ignore[attr-defined]
    no_hook = traverser.pre_processing_of_child
    is_node: dict[type, bool] = {}

    def processing(self: Any) -> Mapping[type, Callable[[Any], Any]]:
        found: Mapping[type, Callable[[Any], Any]] | None = self.__dict__.get("_processing")
        if found is None:
            found = self.__dict__["_processing"] = self._processing_map()
        return found

    def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
        found: tuple[type, ...] | None = self.__dict__.get("_processed_types")
        if found is None:
            found = self.__dict__["_processed_types"] = tuple(processing(self))
        return found

    def process(self: Any, node: Any) -> Any:
        for class_key, processor in processing(self).items():
            if isinstance(node, class_key):
                return processor(node)
        return None

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        known = is_node.get(kind)
        if known is None:
            known = is_node[kind] = issubclass(kind, node_class)
        if not known:
            return node
        parent_node = node.parent
        if node.children is not None:
            hook = None if type(self).pre_processing_of_child is no_hook else self.pre_processing_of_child
            for i, child_node in enumerate(node.children):
                if hook is not None:
                    hook(node, i)
                self.traverse_node_recursively(child_node, i)
        processes: dict[type, bool] | None = self.__dict__.get("_processes")
        if processes is None:
            processes = self.__dict__["_processes"] = {}
        wanted = processes.get(kind)
        if wanted is None:
            wanted = processes[kind] = issubclass(kind, self.nodes_to_be_processed())
        if wanted:
            node = self.process(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    traverser.nodes_to_be_processed = nodes_to_be_processed
    traverser.process = process
    traverser.traverse_node_recursively = traverse_node_recursively


def whole_expression_checks_at_the_root() -> None:
    """moto's ActionCountValidator and OverlappingPathsValidator check every node that is an UpdateExpression,
    and most nodes of a parsed tree are one (clauses, actions, paths, values): each check searches that node's
    subtree for clauses or actions, so a tree of n nodes cost about n² steps (a third of an UpdateItem's time
    in the store for the worker's claim). A check counts clauses and compares the paths of the actions found
    below a node, and a subtree's are a part of the root's: where the root passes, every node passes. So the
    root is checked alone, and only if it fails does moto's own walk run, to raise the same error from the same
    node. Neither check changes the tree."""
    from moto.dynamodb.parsing import ast_nodes, validators

    root_type: Any = ast_nodes.UpdateExpression  # type: ignore[attr-defined]
    for name in ("ActionCountValidator", "OverlappingPathsValidator"):
        validator: Any = getattr(validators, name)
        walk: Callable[[Any, Any], Any] = validator.traverse

        def traverse(self: Any, node: Any, walk: Callable[[Any, Any], Any] = walk) -> Any:
            if type(node) is not root_type:
                return walk(self, node)
            try:
                self.process(node)
            except Exception:  # noqa: BLE001 - moto's walk raises it again, from where it first finds it
                return walk(self, node)
            return node

        validator.traverse = traverse


def quick_tree_copies() -> None:
    """A deep copy of a parsed expression tree (moto copies one for every UpdateItem) without the generic
    ``__reduce_ex__`` round trip per node: the same copy, node by node (type, children, parent)."""
    import copy

    from moto.dynamodb.parsing import ast_nodes

    def node_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    node: Any = ast_nodes.Node  # type: ignore[attr-defined]
    node.__deepcopy__ = node_deepcopy


def speed_up_moto() -> None:
    """Every change above, in this process (the same answers as moto's own, sooner)."""
    lazy_queue_attributes()
    fast_attribute_values()
    parse_update_expressions_once()
    lex_condition_expressions_once()
    action_names_once()
    quick_tree_walks()
    whole_expression_checks_at_the_root()
    quick_tree_copies()
    simple_updates.install()


class CachedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend each host name maps to (the mapping never changes), and
    calling moto's handler itself for the JSON-protocol calls (``X-Amz-Target``: DynamoDB's, SQS's) instead of
    through Flask, whose request context, form parsing, routing and response hooks cost about a third of a
    GetItem's time in the store."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backends: dict[str, Any] = {}
        self._handlers: dict[tuple[int, str], Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host is None:
            return None
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        app = self.get_application(environ)
        if environ.get("REQUEST_METHOD") == "POST" and "HTTP_X_AMZ_TARGET" in environ and "HTTP_ORIGIN" not in environ:
            handler = self._handler(app, environ)
            if handler is not None:
                return serve(handler, environ, start_response)
        return app(environ, start_response)

    def _handler(self, app: Any, environ: dict[str, Any]) -> Any:
        """The moto handler Flask would route this request to (None: not one of moto's), looked up once per
        app and path (JSON-protocol paths are few: ``/`` and a queue's)."""
        key = (id(app), str(environ.get("PATH_INFO", "")))
        if key not in self._handlers:
            try:
                endpoint, _ = app.url_map.bind_to_environ(environ).match()
            except HTTPException:
                view = None
            else:
                view = app.view_functions.get(endpoint)
            handler = view.callback if isinstance(view, convert_to_flask_response) else None
            if len(self._handlers) < 256:
                self._handlers[key] = handler
            return handler
        return self._handlers[key]


def serve(handler: Callable[..., Any], environ: dict[str, Any], start_response: Any) -> Any:
    """What ``moto.core.utils.convert_to_flask_response`` does for one request, without a Flask app around it:
    the same request class, the same call, the same response class, and the one header Flask-CORS adds to a
    request without an ``Origin`` (requests with one go through Flask)."""
    request = BackendRequest(environ)
    recorder._record_request(request)
    try:
        result = handler(request, request.raw_url, dict(request.headers))
    except ClientError as exc:
        result = 400, {}, exc.response["Error"]["Message"]
    status, headers, content = result if len(result) == 3 else (200, {}, result)
    response = Response(response=content, status=status, headers=headers)
    if not DISABLE_GLOBAL_CORS:
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response(environ, start_response)


def app() -> CachedDispatcher:
    """The store's WSGI application, built in granian's worker process: moto sped up, and the worker ended
    with its parent (the process the runtime started and stops), however that one ends."""
    die_with_parent()
    speed_up_moto()
    partiql.install()
    return CachedDispatcher()


def main(argv: list[str] | None = None) -> None:
    """Serve the store until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's server sets it (URLs it builds)
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces

    server = Granian(
        "jobq_local.store:app",
        factory=True,
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,
        websockets=False,
        workers=1,  # one process: moto's state is in its memory
        # Threads: enough for every long-polling SQS receive (they wait up to 20 s) plus the calls behind them.
        blocking_threads=64,
        log_enabled=False,
    )
    server.serve()  # SIGINT and SIGTERM stop it and its worker


if __name__ == "__main__":
    main()
