"""The whole local stack: embedded AWS, resources and functions from template.yaml, and the gateway."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tollbooth_local import tokens
from tollbooth_local.aws import (
    ACCOUNT,
    REGION,
    MotoServer,
    client,
    create_stateful_resources,
    resolve,
    use_offline_environment,
)
from tollbooth_local.containers import Containers
from tollbooth_local.cors import Cors
from tollbooth_local.gateway import SERVICE_ROLE, Gateway, serve
from tollbooth_local.intrinsics import evaluate_conditions, pseudo_parameters, select
from tollbooth_local.pollers import QueuePoller, QueueSource
from tollbooth_local.schedules import Scheduler, rate_seconds
from tollbooth_local.template import Template

STACK_NAME = "tollbooth-local"
EVENTS_TAP = "tollbooth-local-events"
# Local differences from a deployment, all of them about the host, none about behaviour.
# As `sam deploy --parameter-overrides` would set them for a developer's stack. The local
# gateway checks dev tokens itself (tollbooth_local.tokens); the issuer is only named.
LOCAL_PARAMETERS = {
    "EnableSwagger": "true",
    "CreditIssuerRoles": SERVICE_ROLE,
    "JwtIssuer": f"https://{tokens.ISSUER}.localhost",
    "JwtAudience": tokens.AUDIENCE,
}


def local_parameters() -> dict[str, str]:
    """LOCAL_PARAMETERS, and CORS for any origin (a web app on another port) unless
    CORS_ALLOWED_ORIGINS names the origins, as the CorsAllowedOrigins parameter would."""
    return {**LOCAL_PARAMETERS, "CorsAllowedOrigins": os.environ.get("CORS_ALLOWED_ORIGINS", "*")}


def function_environment(
    template: Template,
    parameters: dict[str, str],
    resources: dict[str, dict[str, str]],
    conditions: dict[str, bool] | None = None,
) -> dict[str, str]:
    """The union of every function's resolved environment (each local container hosts them all)."""
    merged: dict[str, str] = {}
    for spec in template.functions().values():
        for key, raw in spec.environment.items():
            value = resolve(select(raw, conditions or {}), parameters, resources)
            if merged.get(key, value) != value:
                raise ValueError(f"functions disagree on {key}; the local stack runs them in one process")
            merged[key] = value
    return merged


def _seconds(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def queue_sources(
    template: Template, parameters: dict[str, str], resources: dict[str, dict[str, str]]
) -> list[QueueSource]:
    """The template's SQS event source mappings, resolved against the created queues."""
    sources = []
    for mapping in template.event_source_mappings():
        source_arn = mapping["EventSourceArn"]
        queue_id = source_arn["Fn::GetAtt"][0] if isinstance(source_arn, dict) else None
        if queue_id not in resources or "QueueUrl" not in resources[queue_id]:
            continue
        sources.append(
            QueueSource(
                function_id=mapping["FunctionId"],
                queue_url=resources[queue_id]["QueueUrl"],
                queue_arn=resources[queue_id]["Arn"],
                batch_size=int(resolve(mapping.get("BatchSize", 10), parameters, resources)),
                window_seconds=int(resolve(mapping.get("MaximumBatchingWindowInSeconds", 0), parameters, resources)),
                report_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
            )
        )
    return sources


@dataclass
class LocalStack:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 3000
    dynamodb_url: str | None = None
    concurrency: int = 4  # Lambda containers, each running one invocation at a time
    template: Template = field(default_factory=Template)
    endpoints: dict[str, Any] = field(default_factory=dict)

    def start(self) -> LocalStack:
        self.moto = MotoServer(self.host).start()
        use_offline_environment()
        os.environ["AWS_ENDPOINT_URL"] = self.moto.url
        if self.dynamodb_url:
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_url
            # The DynamoDB Local build we run takes 10 items per transaction (DynamoDB takes 100).
            os.environ.setdefault("MAX_TRANSACTION_ITEMS", "10")
        overrides = local_parameters()
        parameters = {**self.template.parameter_defaults(), **overrides, **pseudo_parameters(STACK_NAME)}
        conditions = evaluate_conditions(self.template.document.get("Conditions", {}), parameters)
        resources = create_stateful_resources(self.template, STACK_NAME, self.moto.url, self.dynamodb_url, overrides)
        os.environ.update(function_environment(self.template, parameters, resources, conditions))
        self.containers = Containers(self.template, self.concurrency)
        # moto never fires scheduled rules: run them here, faster when EXPIRY_RATE_SECONDS is set.
        override = os.environ.get("EXPIRY_RATE_SECONDS")
        schedules = [
            (spec, int(override) if override else rate_seconds(resolve(spec.expression, parameters, resources)))
            for spec in self.template.schedules()
        ]
        self.scheduler = Scheduler(schedules, self.containers.invoke).start()
        self.pollers = [
            QueuePoller(source, self.moto.url, self.containers.invoke, _seconds("USAGE_RETRY_SECONDS")).start()
            for source in queue_sources(self.template, parameters, resources)
        ]
        self._tap_events(resources)
        # One port serves every HttpApi; the one with a CorsConfiguration (PublicApi) sets CORS.
        configured = (
            Cors.from_configuration(select(api.get("Properties", {}).get("CorsConfiguration"), conditions), parameters)
            for api in self.template.resources_of("AWS::Serverless::HttpApi").values()
        )
        cors = next((found for found in configured if found is not None), None)
        gateway = Gateway(self.template.routes(), self.containers.invoke, self.state_dir, self.scheduler.run_now, cors)
        self.server = serve(gateway, self.host, self.port)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        self.endpoints = {
            "api_url": f"http://{self.host}:{self.port}",
            "aws_endpoint_url": self.moto.url,
            "dynamodb_endpoint_url": self.dynamodb_url or self.moto.url,
            "region": REGION,
            "tables": {name: r["Ref"] for name, r in resources.items() if r["Arn"].startswith("arn:aws:dynamodb")},
            "event_buses": {name: r["Name"] for name, r in resources.items() if r["Arn"].startswith("arn:aws:events")},
            "events_tap_queue_url": self.events_tap_url,
            "queues": {
                name: {"name": r["QueueName"], "url": r["QueueUrl"]} for name, r in resources.items() if "QueueUrl" in r
            },
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "endpoints.json").write_text(json.dumps(self.endpoints, indent=2) + "\n")
        return self

    def _tap_events(self, resources: dict[str, dict[str, str]]) -> None:
        """Copy everything published on the template's buses to one local queue, to look at
        (a developer convenience, not a resource of the application)."""
        sqs, events = client("sqs", self.moto.url), client("events", self.moto.url)
        queue_url = sqs.create_queue(QueueName=EVENTS_TAP)["QueueUrl"]
        self.events_tap_url = queue_url
        for resource in resources.values():
            if not resource["Arn"].startswith("arn:aws:events"):
                continue
            events.put_rule(
                Name=EVENTS_TAP, EventBusName=resource["Name"], EventPattern=json.dumps({"source": ["tollbooth"]})
            )
            target = {"Id": "tap", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{EVENTS_TAP}"}
            events.put_targets(Rule=EVENTS_TAP, EventBusName=resource["Name"], Targets=[target])

    def stop(self) -> None:
        """Stop taking requests, then end every container and the embedded AWS; nothing is
        left running and no port stays bound."""
        self.scheduler.stop()
        for poller in self.pollers:
            poller.stop()
        self.server.shutdown()
        self.server.server_close()
        self.containers.close()
        self.moto.stop()
