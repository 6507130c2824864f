"""Faults injected where Tollbooth meets AWS: botocore's ``before-send`` event, on the
sessions every client of the process comes from (``tollbooth.bootstrap.botocore_session``,
one per thread).

Kinds, as a caller sees them:
- ``throttle``: DynamoDB's ThrottlingException (HTTP 400), or EventBridge's;
- ``server_error``: HTTP 500 InternalServerError;
- ``timeout``: the read timed out (botocore's ReadTimeoutError);
- ``reset``: the connection was closed mid-request (ConnectionClosedError);
- ``lost``: the request reached the service and took effect, and the answer was lost
  (it is sent, then the caller sees a read timeout).

botocore retries each of these as it would on AWS, so a fault injected ``times`` times
fewer than botocore's attempts is one a client never notices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from tollbooth import bootstrap

KINDS = ("throttle", "server_error", "timeout", "reset", "lost")
_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    "server_error": (500, "InternalServerError", "Internal server error"),
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class Injector:
    """Answers ``times`` calls of ``operations`` (e.g. "dynamodb.TransactWriteItems") with ``kind``."""

    def __init__(self, kind: str, operations: tuple[str, ...], times: int = 1_000) -> None:
        assert kind in KINDS, kind
        self.kind = kind
        self.operations = operations
        self.left = times
        self.injected = 0
        self._http = urllib3.PoolManager()

    def __call__(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.removeprefix("before-send.")
        if self.left <= 0 or not any(operation == wanted or operation.startswith(wanted) for wanted in self.operations):
            return None
        self.left -= 1
        self.injected += 1
        if self.kind in _ERRORS:
            status, code, message = _ERRORS[self.kind]
            body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
            headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
            return AWSResponse(request.url, status, headers, _Body(body))
        if self.kind == "lost":  # it takes effect; the caller never hears
            self._http.request(request.method, request.url, body=request.body, headers=dict(request.headers))
            raise ReadTimeoutError(endpoint_url=request.url)
        if self.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        raise ConnectionClosedError(endpoint_url=request.url)


@contextmanager
def injected(kind: str, *operations: str, times: int = 1_000) -> Iterator[Injector]:
    """Inject ``kind`` into the AWS calls of ``operations`` while the block runs, from any
    thread (the sweep works a thread per shard): each thread's session, this one's and those
    made meanwhile, sends them to the injector. Build the clients inside the block
    (bootstrap.reset() first): they copy their session's events."""
    import pynamodb.connection.base as pynamodb_connection

    injector = Injector(kind, operations, times)
    sessions = [bootstrap.botocore_session()]  # this thread's (and the shared sessions put in place)
    sessions[0].register("before-send", injector)
    per_thread = pynamodb_connection.get_session

    def with_faults() -> Any:
        session = per_thread()
        if all(session is not known for known in sessions):
            session.register("before-send", injector)
            sessions.append(session)
        return session

    with_faults.tollbooth_shared = True  # type: ignore[attr-defined]  # bootstrap: already shared
    pynamodb_connection.get_session = with_faults  # type: ignore[assignment]
    try:
        yield injector
    finally:
        pynamodb_connection.get_session = per_thread  # type: ignore[assignment]
        for session in sessions:
            session.unregister("before-send", injector)
