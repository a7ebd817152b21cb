"""Shared fixtures: a moto-backed stack provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.support.callers import ADMIN
from tests.support.stack import Stack, moto_stack


@pytest.fixture
def make_stack() -> Iterator[Callable[..., Stack]]:
    """``make_stack(MaxAttempts="3", ...)``: the stack with template parameters overridden."""
    with ExitStack() as stack:

        def make(**parameters: str) -> Stack:
            return stack.enter_context(moto_stack(parameters))

        yield make


@pytest.fixture
def aws_stack(make_stack: Callable[..., Stack]) -> Stack:
    """The stack with template defaults, except retries without delay (backoff is tested on its own)."""
    return make_stack(RetryBaseSeconds="0", RetryMaxSeconds="1", AdminPrincipals=ADMIN)
