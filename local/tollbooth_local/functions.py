"""What the Lambda runtime does for one function: import its handler, and pass a context."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tollbooth_local.template import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


def load_function(spec: FunctionSpec) -> Handler:
    """Import a function's handler from its file, as the Lambda runtime would."""
    module_name = f"tollbooth_function_{spec.logical_id}"
    module_spec = importlib.util.spec_from_file_location(module_name, spec.module_path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {spec.module_path}")
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, spec.handler_name)


@dataclass
class LambdaContext:
    """What Lambda passes as ``context``, with the function's real timeout."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 512

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
