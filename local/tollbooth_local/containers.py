"""Lambda containers for the local stack: worker processes that each load every function.

Lambda never runs two invocations in one container at once, and Powertools' resolver,
Logger and Metrics rely on that (they keep per-invocation state on module-level objects).
So the gateway does not call handlers from its request threads; it hands each invocation
to one of a few single-threaded worker processes, which gives real concurrency between
"containers" and none inside one, as on AWS.

As on Lambda, an invocation gets the function's ``Timeout``: a container that has not
answered by then is killed and replaced (``FunctionTimedOut``), and one that dies
mid-invocation (``os._exit``, a segfault, the OOM killer) is replaced too
(``FunctionCrashed``). Either way the caller hears at once, never hangs.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tollbooth_local.functions import LambdaContext, load_function
from tollbooth_local.template import Template

# Lambda's init phase has its own limit (10 s on AWS); a local import of every handler may
# take longer on a slow machine, and it is not the function's time.
INIT_TIMEOUT_SECONDS = 120.0
_READY = "ready"


class FunctionCrashed(Exception):
    """The function raised, or its container died, or it answered what Lambda cannot pass on."""


class FunctionTimedOut(Exception):
    """The function ran past its Timeout; its container was killed."""


def _serve(connection: Connection, template_path: str) -> None:
    """A container's life: import every handler once, then one invocation at a time."""
    # Ctrl-C reaches the whole process group; the stack, not each container, shuts down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    specs = Template(Path(template_path)).functions()
    handlers = {name: load_function(spec) for name, spec in specs.items()}
    connection.send(_READY)
    while True:
        try:
            function_id, event = connection.recv()
        except (EOFError, OSError):  # the stack went away: so does the container
            return
        try:
            result: tuple[bool, Any] = (
                True,
                handlers[function_id](event, LambdaContext(function_id, specs[function_id].timeout)),
            )
        except Exception:  # the function raised: the log shows why, the caller gets a function error
            traceback.print_exc()
            result = (False, None)
        try:
            connection.send(result)
        except Exception:  # the result does not pickle: Lambda could not serialise it either
            traceback.print_exc()
            connection.send((False, None))


class _Container:
    def __init__(self, context: Any, template_path: str) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, template_path), daemon=True)
        self.process.start()
        child.close()
        self.ready = False

    def invoke(self, function_id: str, event: dict[str, Any], timeout: float) -> Any:
        if not self.ready:
            if not self.connection.poll(INIT_TIMEOUT_SECONDS) or self.connection.recv() != _READY:
                raise FunctionCrashed(f"{function_id}: the container did not start")
            self.ready = True
        self.connection.send((function_id, event))
        if not self.connection.poll(timeout):
            raise FunctionTimedOut(f"{function_id} timed out after {timeout:g} s")
        succeeded, result = self.connection.recv()  # EOFError if the container died
        if not succeeded:
            raise FunctionCrashed(f"{function_id} raised")
        return result

    def kill(self) -> None:
        self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


class Containers:
    def __init__(self, template: Template, count: int) -> None:
        # spawn, not fork: the parent runs server threads that a fork would copy half-way.
        self._context = multiprocessing.get_context("spawn")
        self._template_path = str(template.path)
        self._timeouts = {name: spec.timeout for name, spec in template.functions().items()}
        self._idle: queue.Queue[_Container] = queue.Queue()
        self._all: set[_Container] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(count):
            self._idle.put(self._start())

    def _start(self) -> _Container:
        container = _Container(self._context, self._template_path)
        with self._lock:
            self._all.add(container)
        return container

    def _replace(self, container: _Container) -> None:
        with self._lock:
            self._all.discard(container)
        container.kill()
        if not self._closed:
            self._idle.put(self._start())

    def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        if self._closed:
            raise FunctionCrashed("the local stack is stopping")
        container = self._idle.get()
        try:
            result = container.invoke(function_id, event, self._timeouts.get(function_id, 3))
        except (FunctionTimedOut, FunctionCrashed) as error:
            if isinstance(error, FunctionTimedOut) or not container.ready or not container.process.is_alive():
                self._replace(container)
            else:
                self._idle.put(container)
            raise
        except (EOFError, OSError) as error:  # the container died mid-invocation
            self._replace(container)
            raise FunctionCrashed(f"{function_id}: the container exited") from error
        self._idle.put(container)
        return result

    def close(self) -> None:
        self._closed = True
        with self._lock:
            containers = list(self._all)
            self._all.clear()
        for container in containers:
            container.process.terminate()
        for container in containers:
            container.kill()
