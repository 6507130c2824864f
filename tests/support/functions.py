"""Running the functions of template.yaml in-process, as Lambda would, on a test engine."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.engines import Engine, event
from tollbooth.bootstrap import reset
from tollbooth_local.aws import MotoServer, client
from tollbooth_local.functions import LambdaContext, load_function
from tollbooth_local.template import Template

TEMPLATE = Template()
FUNCTIONS = TEMPLATE.functions()


@contextmanager
def deployed_environment(engine: Engine, table_name: str, moto_server: MotoServer) -> Iterator[None]:
    """The environment template.yaml gives the functions, pointed at this engine's table
    (and at moto for everything else: the event bus, the dead-letter queue)."""
    saved = dict(os.environ)
    bus = f"bus-{table_name}"
    client("events", moto_server.url).create_event_bus(Name=bus)
    dead_letters = client("sqs", moto_server.url).create_queue(QueueName=f"dlq-{table_name}")["QueueUrl"]
    os.environ.update(
        TABLE_NAME=table_name,
        EVENT_BUS_NAME=bus,
        USAGE_DLQ_URL=dead_letters,
        AWS_ENDPOINT_URL=moto_server.url,
        AWS_ENDPOINT_URL_DYNAMODB=engine.dynamodb_url,
        MAX_TRANSACTION_ITEMS=str(engine.max_transaction_items),
        POWERTOOLS_SERVICE_NAME="tollbooth",
        # The role the sample events sign as, allowed to create credits as a deployment would.
        CREDIT_ISSUER_ROLES="product-backend",
    )
    reset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset()


def invoke(function_id: str, event_file: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An API function's answer to its sample event (``body`` replaces the event's), with its JSON."""
    handler = load_function(FUNCTIONS[function_id])
    sample = event(event_file)
    if body is not None:
        sample["body"] = json.dumps(body)
    response = handler(sample, LambdaContext(function_id, FUNCTIONS[function_id].timeout))
    return {**response, "json": json.loads(response["body"]) if response["body"].startswith("{") else None}


def invoke_scheduled(function_id: str, event_file: str) -> Any:
    """A queue- or schedule-fed function's result for its sample event."""
    handler = load_function(FUNCTIONS[function_id])
    return handler(event(event_file), LambdaContext(function_id, FUNCTIONS[function_id].timeout))
