"""A Lambda-like site for cold-start measurements, and the program a fresh interpreter runs in it.

The site holds exactly what a deployed function can import, in Lambda's order:

* ``task``: the function's own code (``/var/task``, first on the path);
* ``dependencies/python``: what ``layers/dependencies/Makefile`` installs, built by that
  Makefile for this machine instead of arm64 (``/opt/python``);
* ``tollbooth/python``: what ``layers/tollbooth/Makefile`` copies (``/opt/python`` too);
* ``runtime``: boto3 and botocore with their dependencies, as the python runtime ships them
  (``/var/runtime``, after the layers, so a layer that carried its own botocore would win).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO, STATE

SITE = STATE / "coldstart-site"
# pip picks this machine's wheels when the Makefile's target flags are emptied.
HOST_TARGET = "TARGET_FLAGS="


@dataclass(frozen=True)
class Site:
    dependencies: Path
    tollbooth: Path
    runtime: Path

    def paths(self, task: Path) -> list[str]:
        return [str(task), str(self.dependencies), str(self.tollbooth), str(self.runtime)]


def _make(layer: str, target: str, artifacts: Path) -> None:
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    make = ["make", "--silent", "-C", str(REPO / "layers" / layer), target]
    subprocess.run([*make, f"ARTIFACTS_DIR={artifacts}", HOST_TARGET, f"PYTHON={sys.executable}"], check=True)


def _fingerprint(*files: Path, extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def build_site() -> Site:
    """Build (or reuse) the site. The tollbooth layer is copied afresh every time: it is the code under test."""
    import boto3

    dependencies = SITE / "dependencies"
    layer_dir = REPO / "layers" / "dependencies"
    wanted = _fingerprint(layer_dir / "requirements.txt", layer_dir / "Makefile", extra=sys.version)
    stamp = dependencies / ".stamp"
    if not stamp.exists() or stamp.read_text() != wanted:
        _make("dependencies", "build-DependenciesLayer", dependencies)
        stamp.write_text(wanted)
    runtime = SITE / "runtime"
    stamp = runtime / ".stamp"
    if not stamp.exists() or stamp.read_text() != boto3.__version__:
        shutil.rmtree(runtime, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--target", str(runtime), f"boto3=={boto3.__version__}"], check=True)
        stamp.write_text(boto3.__version__)
    _make("tollbooth", "build-TollboothLayer", SITE / "tollbooth")
    return Site(dependencies / "python", SITE / "tollbooth" / "python", runtime)


def layer_megabytes(site: Site) -> float:
    """The dependencies layer's size unzipped, as built for this machine."""
    return sum(path.stat().st_size for path in site.dependencies.rglob("*") if path.is_file()) / 1e6


# What a fresh interpreter runs: Lambda's path, then (timed) the handler's import and
# module-level init, then (timed) one invocation. argv: paths (os.pathsep-joined), handler,
# event file, function name, timeout seconds, memory MB, and "snapstart" to play SnapStart:
# a stand-in for the runtime's snapshot_restore_py collects the hooks the code registers; the
# before-snapshot hooks run untimed after init, and the invocation's time starts with the
# after-restore hooks (the restore itself is the platform's, not measurable here).
# The last line printed is the result.
RUNNER = """
import sys, time
paths, handler_spec, event_path, function_name, timeout, memory, mode = sys.argv[1:8]
sys.path[:0] = paths.split(__import__("os").pathsep)
import importlib, json, types, uuid

hooks = {"before": [], "after": []}
if mode == "snapstart":
    runtime_hooks = types.ModuleType("snapshot_restore_py")
    runtime_hooks.register_before_snapshot = lambda hook, *a, **k: hooks["before"].append(lambda: hook(*a, **k))
    runtime_hooks.register_after_restore = lambda hook, *a, **k: hooks["after"].append(lambda: hook(*a, **k))
    sys.modules["snapshot_restore_py"] = runtime_hooks

class Context:
    function_name = function_name
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = int(memory)
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "coldstart"
    deadline = time.monotonic() + int(timeout)
    def get_remaining_time_in_millis(self):
        return max(0, int((self.deadline - time.monotonic()) * 1000))

with open(event_path) as file:
    event = json.load(file)
module_name, _, attribute = handler_spec.rpartition(".")
started, started_cpu = time.perf_counter(), time.process_time()
if module_name:
    handler = getattr(importlib.import_module(module_name), attribute)
else:
    importlib.import_module(attribute)
imported, imported_cpu = time.perf_counter(), time.process_time()
for hook in hooks["before"]:
    hook()
restored, restored_cpu = time.perf_counter(), time.process_time()
if mode != "snapstart":
    restored, restored_cpu = imported, imported_cpu
for hook in hooks["after"]:
    hook()
result = handler(event, Context()) if module_name else None
invoked, invoked_cpu = time.perf_counter(), time.process_time()
print("COLDSTART " + json.dumps({"init_ms": (imported - started) * 1000, "invoke_ms": (invoked - restored) * 1000,
      "init_cpu_ms": (imported_cpu - started_cpu) * 1000, "invoke_cpu_ms": (invoked_cpu - restored_cpu) * 1000,
      "hooks": {name: len(registered) for name, registered in hooks.items()}, "result": result}, default=str))
"""
