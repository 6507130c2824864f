"""Lambda containers for the local stack: worker processes that each load every function.

Lambda never runs two invocations in one container at once, and Powertools' resolver,
Logger and Metrics rely on that (they keep per-invocation state on module-level objects).
So the gateway does not call handlers from its request threads; it hands each invocation
to a pool of single-threaded worker processes, which gives real concurrency between
"containers" and none inside one, as on AWS.
"""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path
from typing import Any

from tollbooth_local.functions import LambdaContext, load_function
from tollbooth_local.template import Template

_handlers: dict[str, Any] = {}
_timeouts: dict[str, int] = {}


def _start_container(template_path: str) -> None:
    for name, spec in Template(Path(template_path)).functions().items():
        _handlers[name] = load_function(spec)
        _timeouts[name] = spec.timeout


def _invoke(function_id: str, event: dict[str, Any]) -> tuple[bool, Any]:
    try:
        return True, _handlers[function_id](event, LambdaContext(function_id, _timeouts[function_id]))
    except Exception:  # the function crashed: API Gateway answers 500, the log shows why
        traceback.print_exc()
        return False, None


class FunctionCrashed(Exception):
    pass


class Containers:
    def __init__(self, template: Template, count: int) -> None:
        # spawn, not fork: the parent runs server threads that a fork would copy half-way.
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(count, initializer=_start_container, initargs=(str(template.path),))

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        succeeded, result = self._pool.apply(_invoke, (function_id, event))
        if not succeeded:
            raise FunctionCrashed(function_id)
        return result

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
