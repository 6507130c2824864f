"""Cold start of every function in template.yaml: import + init + the first invocation.

Each sample is a fresh interpreter in the Lambda-like site of ``bench.lambda_site``, with
the environment the template gives the function (resolved against resources created in an
embedded moto server), the variables Lambda sets (function name, region, fake credentials,
the X-Ray daemon address and a sampled trace header: tracing on, as deployed), and
``AWS_ENDPOINT_URL`` pointing at that moto server. It times the handler module's import
(with everything it runs at module level), then one invocation with the function's sample
event from ``events/``: every route the template gives it (API Gateway), the SQS event
(usage consumer) or the scheduled event (expiry sweep). The invocation does its real store
calls against moto on loopback: a consume debits a freshly funded account, a purchase
writes, a sweep queries every shard and writes off the one due lot in its table. Lazy
imports therefore cannot hide a cost: whatever the handler defers, the first request pays,
and is counted.

Baseline: ``import boto3`` in the same site, same environment, interleaved with the
functions' samples. Target: every function at most 1.5 times that.

What the functions send to the X-Ray daemon is caught on a local UDP port and summarised,
so a change to tracing shows what it keeps and what it drops.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.coldstart_events import fresh_event, fund, prepare, sample_events, seed_due
from bench.lambda_site import RUNNER, Site, build_site, layer_megabytes

RUNS = int(os.environ.get("BENCH_COLDSTART_RUNS", "7"))
TARGET = 1.5
# The account the sample events name, and the role they sign as (allowed to create credits here).
ISSUER_ROLE = "product-backend"


@dataclass
class Case:
    function_id: str
    event_file: str
    handler: str
    task: Path
    timeout: int
    memory: int
    environment: dict[str, str]
    init_ms: list[float] = field(default_factory=list)
    invoke_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    # With SnapStart: the after-restore hooks plus the first invocation, after init and the
    # before-snapshot hooks (the snapshot's restore itself is not measured).
    snapstart_ms: list[float] = field(default_factory=list)
    snapstart_cpu_ms: list[float] = field(default_factory=list)
    restore_hooks = 0
    scheduled = False  # a sweep: its first invocation writes off a due lot in a table of its own
    trace: Counter[str] = field(default_factory=Counter)

    @property
    def label(self) -> str:
        return f"{self.function_id} ({self.event_file})"


def _scheduled(template: Any, function_id: str) -> bool:
    events = template.resources[function_id]["Properties"].get("Events", {}).values()
    return any(e["Type"] in ("Schedule", "ScheduleV2") for e in events)


def _events_for(template: Any, function_id: str, samples: dict[str, dict[str, Any]]) -> list[str]:
    """The sample events that reach this function through the triggers the template gives it."""
    route_keys = {route.route_key for route in template.routes() if route.function_id == function_id}
    scheduled = _scheduled(template, function_id)
    queue_fed = any(m["FunctionId"] == function_id for m in template.event_source_mappings())
    chosen = []
    for name, sample in samples.items():
        records = sample.get("Records") or [{}]
        if (
            sample.get("routeKey") in route_keys
            or (scheduled and sample.get("detail-type") == "Scheduled Event")
            or (queue_fed and records[0].get("eventSource") == "aws:sqs")
        ):
            chosen.append(name)
    if not chosen:
        raise ValueError(f"{function_id}: no sample event in events/ reaches it")
    return chosen


def _lambda_environment(function_id: str, memory: int, daemon: str) -> dict[str, str]:
    """What Lambda sets for every function (credentials are fake: nothing can reach AWS)."""
    return {
        "PATH": os.environ["PATH"],
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_FUNCTION_NAME": function_id,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_XRAY_DAEMON_ADDRESS": daemon,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "PYTHONUNBUFFERED": "1",
    }


Resources = dict[str, dict[str, str]]


def _cases(template: Any, resources: Resources, sweep_resources: Resources, aws_url: str, daemon: str) -> list[Case]:
    """Every function and sample event. A scheduled function (the sweep) gets a table of
    its own (``sweep_resources``): moto answers an index Query by scanning the whole table,
    so in the table every other sample fills its first invocation would slow with each
    sample before it, which DynamoDB's Query, reading one key range of the index, does not."""
    from tollbooth_local.aws import resolve

    parameters = {**template.parameter_defaults(), "CreditIssuerRoles": ISSUER_ROLE}
    function_globals = template.document.get("Globals", {}).get("Function", {})
    samples = sample_events()
    cases = []
    for function_id, spec in template.functions().items():
        props = template.resources[function_id]["Properties"]
        memory = int(props.get("MemorySize", function_globals.get("MemorySize", 128)))
        own = sweep_resources if _scheduled(template, function_id) else resources
        env = {key: resolve(value, parameters, own) for key, value in spec.environment.items()}
        env.update(_lambda_environment(function_id, memory, daemon), AWS_ENDPOINT_URL=aws_url)
        env["LAMBDA_TASK_ROOT"] = str(spec.code_uri)
        for event_file in _events_for(template, function_id, samples):
            case = Case(function_id, event_file, spec.handler, spec.code_uri, spec.timeout, memory, env)
            case.scheduled = own is sweep_resources
            cases.append(case)
    return cases


def _trace_header() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=1"


def _drain(daemon: socket.socket) -> Counter[str]:
    """Name each X-Ray document sent since the last drain: 'name [annotation keys]'."""
    seen: Counter[str] = Counter()
    while True:
        try:
            datagram = daemon.recv(65536)
        except BlockingIOError:
            return seen
        for line in datagram.decode(errors="replace").splitlines()[1:]:
            document = json.loads(line)
            for doc in [document, *document.get("subsegments", [])]:
                annotations = ",".join(sorted(doc.get("annotations", {})))
                seen[doc.get("name", "?") + (f" [{annotations}]" if annotations else "")] += 1


def _run(site: Site, case: Case, event_path: Path, daemon: socket.socket, mode: str = "cold") -> dict[str, Any]:
    env = {**case.environment, "_X_AMZN_TRACE_ID": _trace_header(), "_HANDLER": case.handler}
    argv = [os.pathsep.join(site.paths(case.task)), case.handler, str(event_path), case.function_id]
    argv += [str(case.timeout), str(case.memory), mode]
    done = subprocess.run(
        [sys.executable, "-S", "-c", RUNNER, *argv], env=env, cwd=case.task, capture_output=True, text=True
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("COLDSTART ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{case.label} failed:\n{done.stdout}\n{done.stderr}")
    time.sleep(0.05)  # the X-Ray documents are UDP datagrams: let the last ones land
    case.trace = _drain(daemon)
    return json.loads(lines[-1].removeprefix("COLDSTART "))


def _check(case: Case, result: Any) -> None:
    """A cold start that failed its request measures nothing: every sample must succeed."""
    failed = (
        not isinstance(result, dict)
        or result.get("statusCode", 200) >= 300
        or result.get("batchItemFailures")
        or result.get("complete") is False
        or (case.scheduled and result.get("expired_lots") != 1)
    )
    if failed:
        raise RuntimeError(f"{case.label}: the first invocation did not succeed: {result}")


def _measure(site: Site, cases: list[Case], daemon: socket.socket, workdir: Path) -> Case:
    """Rounds of one fresh interpreter per function and event, plus one ``import boto3``,
    interleaved so drift hits all alike; the first round warms moto and the bytecode caches."""
    baseline = Case("import boto3", "-", "boto3", workdir, 3, 128, cases[0].environment)
    for round_number in range(RUNS + 1):
        for case in [baseline, *cases]:
            for mode in ["cold"] if case is baseline else ["cold", "snapstart"]:
                result = _run(site, case, _event_file(case, workdir), daemon, mode)
                if case is not baseline:
                    _check(case, result["result"])
                if not round_number:
                    continue
                if mode == "snapstart":
                    case.snapstart_ms.append(result["invoke_ms"])
                    case.snapstart_cpu_ms.append(result["invoke_cpu_ms"])
                    case.restore_hooks = result["hooks"]["after"]
                    continue
                case.init_ms.append(result["init_ms"])
                case.invoke_ms.append(result["invoke_ms"])
                case.cpu_ms.append(result["init_cpu_ms"] + result["invoke_cpu_ms"])
    return baseline


def _event_file(case: Case, workdir: Path) -> Path:
    """The case's sample event for a funded account of its own, written where the runner reads it."""
    run = uuid.uuid4().hex[:10]
    path = workdir / f"{run}.json"
    if case.event_file == "-":
        path.write_text("{}")
    elif case.scheduled:
        seed_due(case.environment, f"cold-{run}")
        path.write_text(json.dumps(sample_events()[case.event_file]))
    else:
        account = f"cold-{run}"
        fund(account)
        event = fresh_event(sample_events()[case.event_file], account, run)
        prepare(event, account)
        path.write_text(json.dumps(event))
    return path


def bench_coldstart() -> dict[str, Any]:
    from tollbooth.bootstrap import reset
    from tollbooth_local.aws import MotoServer, create_stateful_resources, use_offline_environment
    from tollbooth_local.template import Template

    site = build_site()
    template = Template()
    saved = dict(os.environ)
    moto = MotoServer().start()
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        use_offline_environment()
        daemon.bind(("127.0.0.1", 0))
        daemon.setblocking(False)
        stack = f"coldstart-{uuid.uuid4().hex[:6]}"
        parameters = {"CreditIssuerRoles": ISSUER_ROLE}
        resources = create_stateful_resources(template, stack, moto.url, parameters=parameters)
        sweep_resources = create_stateful_resources(template, f"{stack}-sweep", moto.url, parameters=parameters)
        address = f"127.0.0.1:{daemon.getsockname()[1]}"
        cases = _cases(template, resources, sweep_resources, moto.url, address)
        os.environ.update(TABLE_NAME=resources["LedgerTable"]["Ref"], AWS_ENDPOINT_URL=moto.url)
        reset()
        with tempfile.TemporaryDirectory() as workdir:
            baseline = _measure(site, cases, daemon, Path(workdir))
    finally:
        daemon.close()
        moto.stop()
        os.environ.clear()
        os.environ.update(saved)
        reset()
    return {
        "boto3_ms": statistics.median(baseline.init_ms),
        "boto3_cpu_ms": statistics.median(baseline.cpu_ms),
        "cases": cases,
        "layer_mb": layer_megabytes(site),
    }


def _row(case: Case, boto3_ms: float, boto3_cpu_ms: float) -> str:
    total = statistics.median([init + invoke for init, invoke in zip(case.init_ms, case.invoke_ms, strict=True)])
    cpu = statistics.median(case.cpu_ms)
    snapstart = statistics.median(case.snapstart_ms)
    snapstart_cpu = statistics.median(case.snapstart_cpu_ms)
    ratio = total / boto3_ms
    trace = ", ".join(f"{name} x{count}" if count > 1 else name for name, count in sorted(case.trace.items()))
    return (
        f"| {case.function_id} | {case.event_file} | {statistics.median(case.init_ms):.0f} "
        f"| {statistics.median(case.invoke_ms):.0f} | {total:.0f} | **{ratio:.2f}** "
        f"| {cpu:.0f} | {cpu / boto3_cpu_ms:.2f} | {'yes' if ratio <= TARGET else 'no'} "
        f"| {snapstart:.0f} ({snapstart / boto3_ms:.2f}) | {snapstart_cpu:.0f} ({snapstart_cpu / boto3_cpu_ms:.2f}) "
        f"| {case.restore_hooks} | {trace or 'nothing'} |"
    )


def render(result: dict[str, Any]) -> str:
    boto3_ms, boto3_cpu_ms = result["boto3_ms"], result["boto3_cpu_ms"]
    lines = [
        "### Cold start",
        "",
        "Import + init + first invocation of every function in template.yaml, each in fresh "
        "interpreters in a Lambda-like site: the dependencies layer as its Makefile builds it "
        f"(here for this machine: {result['layer_mb']:.1f} MB unzipped), the tollbooth layer, then boto3 and "
        "botocore as the runtime ships them; the template's environment; tracing on as deployed "
        f"(a sampled trace header, a local X-Ray daemon). Median of {RUNS} per row, interleaved with "
        "`import boto3` in the same site: "
        f"{boto3_ms:.0f} ms ({boto3_cpu_ms:.0f} ms of CPU). The first invocation makes its real calls "
        "(DynamoDB, and EventBridge or SQS where it publishes) against moto on loopback. CPU is the "
        "measured process's own: it ignores other load on the machine and moto's time. The SnapStart "
        "column plays the runtime's hooks in the same kind of interpreter: init and the before-snapshot "
        "hooks run untimed, then the after-restore hooks and the first invocation are timed; the "
        "platform's restore of the snapshot is not included (it is not measurable here). The sweep "
        "runs in a table of its own holding one account with a lot due, so its first invocation writes "
        "it off and publishes: moto answers an index Query by scanning the whole table, and in the "
        "table the other samples fill, its time would grow with each of them, which DynamoDB's would not.",
        "",
        f"| function | sample event | import + init ms | first invocation ms | total ms "
        f"| ratio to `import boto3` (target <= {TARGET}) | CPU ms | CPU ratio | within "
        "| SnapStart: after-restore hooks + first invocation ms (ratio) | ... CPU ms (CPU ratio) "
        "| after-restore hooks | sent to the X-Ray daemon |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(case, boto3_ms, boto3_cpu_ms) for case in result["cases"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(bench_coldstart()))
