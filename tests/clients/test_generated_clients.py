"""Clients generated from our OpenAPI document compile: the contract the web and mobile teams build on.

- TypeScript: openapi-typescript turns the document into `api.d.ts`; docs/examples/web-client.ts (the
  example a web team copies) makes typed calls through openapi-fetch, and `tsc --strict` compiles both.
- Python: openapi-python-client generates a package, and mypy --strict checks it.

The document is docs/openapi.json (`make openapi`); without it, the one the routes build, in-process.
The tools are pinned (tests/clients/package-lock.json; PYTHON_TOOLS below) and installed once into
.local/cache/clients/; later runs find them there and need no network.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tollbooth_local.template import REPO_ROOT

pytestmark = pytest.mark.slow

WEB_CLIENT_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "web-client.ts"
HERE = Path(__file__).resolve().parent
DOCUMENT = REPO_ROOT / "docs" / "openapi.json"
CACHE = REPO_ROOT / ".local" / "cache" / "clients"
NPM_PREFIX = CACHE / "npm"  # package.json + package-lock.json + node_modules
NPM_CACHE = CACHE / "npm-cache"  # npm's tarball cache: a reinstall after a lockfile change starts from here
PYTHON_VENV = CACHE / "python"  # openapi-python-client pins its own dependencies: never in the project's .venv
MYPY_CACHE = CACHE / "mypy-cache"
# The generator, and what the generated package imports (httpx, attrs, python-dateutil), with mypy.
PYTHON_TOOLS = (
    "openapi-python-client==0.29.1",
    "ruff==0.17.6",
    "httpx==0.28.1",
    "attrs==26.1.0",
    "python-dateutil==4.0.0",
    "types-python-dateutil==2.9.0.20261116",
    "mypy==2.4.1",
)
# openapi-python-client's default post-hook (`ruff check --fix-only --extend-select=I`) lets ruff 0.17 rewrite
# `__exit__(self, *args: Any)` in the generated client.py to `*args: object`, which mypy then rejects: a clash
# of the two tools, not of our document. Only sort the imports, and format.
GENERATOR_CONFIG = """\
package_name_override: tollbooth_client
project_name_override: tollbooth-client
post_hooks:
  - ruff check . --fix-only --select=I
  - ruff format .
"""
INSTALL_TIMEOUT = 600  # seconds: the first install downloads the tools
STEP_TIMEOUT = 300  # seconds: generating or type-checking, from the local cache


def run(command: list[str | Path], what: str, cwd: Path, timeout: int, env: dict[str, str] | None = None) -> str:
    """Run a step; fail the test with the step's own output when it fails or overruns."""
    try:
        done = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as timed_out:
        output = timed_out.output.decode(errors="replace") if isinstance(timed_out.output, bytes) else ""
        pytest.fail(f"{what}: no answer within {timeout} s\n{output}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"{what} failed (exit {done.returncode}) in {cwd}:\n{done.stdout}", pytrace=False)
    return done.stdout


@contextmanager
def cache_lock() -> Iterator[None]:
    """One installer at a time: two test runs in the same checkout must not install over each other."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fingerprint(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def installed(stamp: Path, value: str, *needed: Path) -> bool:
    return stamp.is_file() and stamp.read_text() == value and all(path.exists() for path in needed)


@pytest.fixture(scope="session")
def openapi_document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if DOCUMENT.is_file():
        return DOCUMENT
    from tollbooth.api.catalog_routes import openapi_document  # what `make openapi` writes

    built = tmp_path_factory.mktemp("openapi") / "openapi.json"
    built.write_text(openapi_document(), encoding="utf-8")
    return built


@pytest.fixture(scope="session")
def node_bin() -> Path:
    """node_modules/.bin with the locked openapi-typescript, openapi-fetch and TypeScript."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH: the client contract needs Node 20 or later", pytrace=False)
    manifest, lockfile = (HERE / "package.json").read_bytes(), (HERE / "package-lock.json").read_bytes()
    node_version = run(["node", "--version"], "node --version", HERE, 30).strip()
    value = fingerprint(manifest, lockfile, node_version.encode())
    bin_dir = NPM_PREFIX / "node_modules" / ".bin"
    stamp = NPM_PREFIX / ".installed"
    with cache_lock():
        if not installed(stamp, value, bin_dir / "tsc", bin_dir / "openapi-typescript"):
            shutil.rmtree(NPM_PREFIX, ignore_errors=True)
            NPM_PREFIX.mkdir(parents=True)
            (NPM_PREFIX / "package.json").write_bytes(manifest)
            (NPM_PREFIX / "package-lock.json").write_bytes(lockfile)
            env = {**os.environ, "npm_config_update_notifier": "false"}
            command = [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--cache", NPM_CACHE]
            run(command, "npm ci", NPM_PREFIX, INSTALL_TIMEOUT, env)
            stamp.write_text(value)
    return bin_dir


@pytest.fixture(scope="session")
def python_tools() -> Path:
    """The bin/ of a virtualenv of its own with openapi-python-client, the generated code's imports and mypy."""
    value = fingerprint(*(tool.encode() for tool in PYTHON_TOOLS), sys.version.encode())
    bin_dir = PYTHON_VENV / "bin"
    stamp = PYTHON_VENV / ".installed"
    with cache_lock():
        if not installed(stamp, value, bin_dir / "openapi-python-client", bin_dir / "mypy"):
            shutil.rmtree(PYTHON_VENV, ignore_errors=True)
            run([sys.executable, "-m", "venv", PYTHON_VENV], "python -m venv", REPO_ROOT, STEP_TIMEOUT)
            pip = [bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            run([*pip, *PYTHON_TOOLS], "pip install " + " ".join(PYTHON_TOOLS), REPO_ROOT, INSTALL_TIMEOUT)
            stamp.write_text(value)
    return bin_dir


def test_typescript_client_compiles_with_typed_calls(openapi_document: Path, node_bin: Path, tmp_path: Path) -> None:
    run(
        [node_bin / "openapi-typescript", openapi_document, "--output", tmp_path / "api.d.ts"],
        "openapi-typescript",
        tmp_path,
        STEP_TIMEOUT,
    )
    # The web-client example in docs/ is what is compiled: it cannot drift from the API.
    shutil.copyfile(WEB_CLIENT_EXAMPLE, tmp_path / "example.ts")
    shutil.copyfile(HERE / "tsconfig.json", tmp_path / "tsconfig.json")
    (tmp_path / "node_modules").symlink_to(node_bin.parent, target_is_directory=True)
    run(
        [node_bin / "tsc", "--project", tmp_path / "tsconfig.json", "--strict", "--noEmit", "--pretty", "false"],
        f"tsc --strict over example.ts and the api.d.ts generated from {openapi_document}",
        tmp_path,
        STEP_TIMEOUT,
    )


def test_python_client_passes_mypy(openapi_document: Path, python_tools: Path, tmp_path: Path) -> None:
    (tmp_path / "generator.yaml").write_text(GENERATOR_CONFIG)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")  # nothing from the repository's own mypy settings
    env = {**os.environ, "PATH": f"{python_tools}{os.pathsep}{os.environ.get('PATH', '')}"}
    generate = [python_tools / "openapi-python-client", "generate", "--path", openapi_document, "--meta", "none"]
    generate += ["--config", tmp_path / "generator.yaml", "--output-path", tmp_path / "tollbooth_client"]
    # A warning means an operation or a schema was left out of the client: that fails the contract too.
    run([*generate, "--fail-on-warning"], "openapi-python-client generate", tmp_path, STEP_TIMEOUT, env)
    mypy = [python_tools / "mypy", "--config-file", tmp_path / "mypy.ini", "--cache-dir", MYPY_CACHE, "--strict"]
    checked = f"mypy --strict over the client generated from {openapi_document}"
    run([*mypy, tmp_path / "tollbooth_client"], checked, tmp_path, STEP_TIMEOUT, env)
