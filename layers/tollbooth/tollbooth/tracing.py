"""X-Ray subsegments without the X-Ray SDK.

Lambda's active tracing (``Tracing: Active``) records every invocation's segment, with its
Initialization, Invocation and Overhead subsegments, and botocore passes the trace header on
to the AWS services it calls. This module adds what Powertools Tracer added on top, without
importing the SDK (a quarter of a second of cold start) or wrapt:

* a ``## <handler>`` subsegment per invocation, annotated ``ColdStart`` and ``Service``, marked
  as a fault with the exception's type and message when the handler raises;
* a subsegment per AWS call made through botocore (boto3 and PynamoDB alike), named and shaped
  as the SDK names them (``dynamodb``, ``events``, ``sqs``; namespace ``aws``): operation,
  region, request id, table name or queue URL, HTTP status, retries; error, throttle or fault.

Documents go over UDP to the daemon Lambda runs (``AWS_XRAY_DAEMON_ADDRESS``), as the SDK sends
them, and only for a sampled invocation (``_X_AMZN_TRACE_ID`` with ``Sampled=1``) inside Lambda,
unless ``POWERTOOLS_TRACE_DISABLED`` is set. A tracing failure never fails the work.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

_HEADER = b'{"format": "json", "version": 1}\n'
_TRUTHY = {"1", "y", "yes", "t", "true", "on"}
# What the botocore patch records per service: the request parameter X-Ray shows as an attribute.
_RESOURCE_PARAMETERS = {"dynamodb": ("TableName", "table_name"), "sqs": ("QueueUrl", "queue_url")}

Handler = TypeVar("Handler", bound=Callable[..., Any])


class _State:
    cold_start = True
    # (trace id, id of the handler's subsegment) while a sampled invocation runs.
    current: tuple[str, str] | None = None
    socket: socket.socket | None = None


def enabled() -> bool:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in _TRUTHY:
        return False
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL")


def _sampled_trace() -> tuple[str, str] | None:
    """(root, parent) of the invocation Lambda is tracing, if it is sampled."""
    fields = dict(part.split("=", 1) for part in os.environ.get("_X_AMZN_TRACE_ID", "").split(";") if "=" in part)
    if fields.get("Sampled") != "1" or not fields.get("Root") or not fields.get("Parent"):
        return None
    return fields["Root"], fields["Parent"]


def _daemon() -> tuple[str, int]:
    address = os.environ.get("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000")
    # Either "host:port" or "tcp:host:port udp:host:port"; segments go over UDP.
    chosen = next((part for part in address.split() if part.startswith("udp:")), address.split()[0])
    host, _, port = chosen.removeprefix("udp:").rpartition(":")
    return host, int(port)


def _send(document: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):  # a trace not sent must never fail the work
        if _State.socket is None:
            _State.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        _State.socket.sendto(_HEADER + json.dumps(document, default=str).encode(), _daemon())


def _subsegment(name: str, trace_id: str, parent_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "subsegment",
        "id": secrets.token_hex(8),
        "name": name,
        "trace_id": trace_id,
        "parent_id": parent_id,
        "start_time": time.time(),
        **fields,
    }


def _cause(error: BaseException) -> dict[str, Any]:
    return {"exceptions": [{"id": secrets.token_hex(8), "type": type(error).__name__, "message": str(error)}]}


def capture_lambda_handler(handler: Handler) -> Handler:
    """Trace each invocation of ``handler`` as Powertools Tracer's decorator of that name did."""
    name = f"## {handler.__name__}"

    @functools.wraps(handler)
    def traced(event: Any, context: Any) -> Any:
        cold_start, _State.cold_start = _State.cold_start, False
        trace = _sampled_trace() if enabled() else None
        if trace is None:
            return handler(event, context)
        service = os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
        document = _subsegment(name, *trace, annotations={"ColdStart": cold_start, "Service": service})
        _State.current = (trace[0], document["id"])
        try:
            return handler(event, context)
        except Exception as error:
            document.update(fault=True, cause=_cause(error))
            raise
        finally:
            _State.current = None
            document["end_time"] = time.time()
            _send(document)

    return traced  # type: ignore[return-value]


def _aws_call(client: Any, operation: str, params: dict[str, Any], call: Callable[[], Any]) -> Any:
    assert _State.current is not None
    service = client.meta.service_model.metadata.get("endpointPrefix", client.meta.service_model.service_name)
    aws: dict[str, Any] = {"operation": operation, "region": client.meta.region_name}
    parameter, attribute = _RESOURCE_PARAMETERS.get(service, ("", ""))
    if parameter in params:
        aws[attribute] = params[parameter]
    document = _subsegment(service, *_State.current, namespace="aws", aws=aws)
    try:
        result = call()
    except Exception as error:
        response = getattr(error, "response", None) or {}
        _record_response(document, response)
        status = document.get("http", {}).get("response", {}).get("status", 500)
        flag = "fault" if status >= 500 else "throttle" if status == 429 else "error"
        document.update({flag: True, "cause": _cause(error)})
        if flag == "throttle":
            document["error"] = True
        raise
    else:
        _record_response(document, result)
        return result
    finally:
        document["end_time"] = time.time()
        _send(document)


def _record_response(document: dict[str, Any], response: dict[str, Any]) -> None:
    metadata = response.get("ResponseMetadata") or {}
    if "RequestId" in metadata:
        document["aws"]["request_id"] = metadata["RequestId"]
    if "RetryAttempts" in metadata:
        document["aws"]["retries"] = metadata["RetryAttempts"]
    if "HTTPStatusCode" in metadata:
        document["http"] = {"response": {"status": metadata["HTTPStatusCode"]}}


def instrument_botocore(base_client: type) -> None:
    """Record every call botocore's ``BaseClient`` makes during a traced invocation (idempotent).
    The composition root passes the class where it builds the first client: importing
    botocore is its business, and never happens at import."""
    original = base_client._make_api_call  # type: ignore[attr-defined]
    if getattr(original, "tollbooth_traced", False):
        return

    def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if _State.current is None:
            return original(self, operation_name, api_params)
        return _aws_call(self, operation_name, api_params, lambda: original(self, operation_name, api_params))

    _make_api_call.tollbooth_traced = True  # type: ignore[attr-defined]
    base_client._make_api_call = _make_api_call  # type: ignore[attr-defined]
