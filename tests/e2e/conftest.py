"""The local stack as a developer runs it (``python -m tollbooth_local run``), once per engine."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.engines import Engine
from tests.support.http import Api, start_local_stack
from tollbooth_local.dynamodb_local import free_port


@pytest.fixture(scope="session")
def api(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    state_dir = tmp_path_factory.mktemp(f"stack-{engine.name}")
    port = free_port()
    # The expiry schedule runs every 2 seconds here, so tests can watch lots expire.
    env = {**os.environ, "PORT": str(port), "ENGINE": "moto", "EXPIRY_RATE_SECONDS": "2", "USAGE_RETRY_SECONDS": "1"}
    if engine.name == "dynamodb-local":
        env.update(ENGINE="dynamodb-local", DYNAMODB_ENDPOINT=engine.dynamodb_url)
    process, api = start_local_stack(state_dir, env, timeout=60)
    try:
        assert api.base_url == f"http://127.0.0.1:{port}"
        yield api
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
