"""Per-process caches for the factories that build settings, clients and services on first use.

Every factory decorated with ``per_process`` is remembered, so ``clear_all`` forgets every cached
value at once (tests switch environments with it) and no module has to list another's caches.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Protocol, TypeVar

T = TypeVar("T")


class _Clearable(Protocol):
    def cache_clear(self) -> None: ...


_FACTORIES: list[_Clearable] = []


def per_process(factory: Callable[[], T]) -> Callable[[], T]:
    """``factory``, called once per process (until ``clear_all``)."""
    cached = cache(factory)
    _FACTORIES.append(cached)
    return cached


def clear_all() -> None:
    """Forget every cached setting, client and service."""
    for factory in _FACTORIES:
        factory.cache_clear()
