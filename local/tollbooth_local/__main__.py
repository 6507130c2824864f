"""``python -m tollbooth_local run|token|run-schedule``: the local stack, its dev tokens, and
running a scheduled function (the expiry sweep) on demand."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.request
from pathlib import Path

from tollbooth_local import tokens
from tollbooth_local.template import REPO_ROOT

DEFAULT_STATE_DIR = REPO_ROOT / ".local"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the stack the way Ctrl-C does


def _run(args: argparse.Namespace) -> int:
    from tollbooth_local.dynamodb_local import DynamoDBLocal
    from tollbooth_local.stack import LocalStack

    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C too, even when started with SIGINT ignored (as a non-interactive shell starts a
    # background job, and its children inherit): Python only handles SIGINT it finds unset.
    signal.signal(signal.SIGINT, _interrupt)
    dynamodb = stack = None
    try:
        dynamodb_url = os.environ.get("DYNAMODB_ENDPOINT") or None
        if args.engine == "dynamodb-local" and not dynamodb_url:
            data_dir = args.state_dir / "dynamodb" if args.persist else None
            dynamodb = DynamoDBLocal(args.state_dir / "cache", data_dir=data_dir).start()
            dynamodb_url = dynamodb.url
        stack = LocalStack(args.state_dir, host=args.host, port=args.port, dynamodb_url=dynamodb_url).start()
        endpoints_file = (args.state_dir / "endpoints.json").resolve()
        shown = endpoints_file.relative_to(Path.cwd()) if endpoints_file.is_relative_to(Path.cwd()) else endpoints_file
        kept = f"; tables kept in {args.state_dir / 'dynamodb'}" if args.persist else ""
        url = stack.endpoints["api_url"]
        print(f"Tollbooth local stack ready at {url} (engine: {args.engine}{kept}; endpoints in {shown})")
        sys.stdout.flush()
        threading.Event().wait()  # until SIGINT or SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        # A second signal must not interrupt the clean-up: it is what frees the port.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
        if dynamodb is not None:
            dynamodb.stop()
    return 0


def _token(args: argparse.Namespace) -> int:
    try:
        print(tokens.mint(args.state_dir, account=args.account or None, role=args.role or None))
    except ValueError as error:
        print(f"token: {error}", file=sys.stderr)
        return 2
    return 0


def _run_schedule(args: argparse.Namespace) -> int:
    """Invoke a scheduled function once on the running local stack (make expire-now)."""
    endpoints_file = args.state_dir / "endpoints.json"
    try:
        api_url = json.loads(endpoints_file.read_text())["api_url"]
        request = urllib.request.Request(
            f"{api_url}/_local/schedules/{args.function}",
            method="POST",
            data=b"",
            headers={"Authorization": f"Bearer {tokens.mint(args.state_dir, role='service')}"},
        )
        with urllib.request.urlopen(request, timeout=900) as response:
            print(response.read().decode())
    except (OSError, KeyError, ValueError) as error:
        print(f"is the local stack running (make run)? {error}", file=sys.stderr)
        return 1
    return 0


def _deploy_parameters(args: argparse.Namespace) -> int:
    from tollbooth_local import deploy

    try:
        print(deploy.render(deploy.merged(args.env, args.overrides)))
    except ValueError as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tollbooth_local")
    parser.add_argument(
        "--state-dir", type=Path, default=Path(os.environ.get("TOLLBOOTH_STATE_DIR", DEFAULT_STATE_DIR))
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the local stack")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    run.add_argument("--engine", choices=["moto", "dynamodb-local"], default=os.environ.get("ENGINE") or None)
    run.add_argument(
        "--persist",
        action="store_true",
        default=os.environ.get("PERSIST", "") not in ("", "0"),
        help="keep DynamoDB Local's tables in <state-dir>/dynamodb across restarts (PERSIST=1)",
    )
    run.set_defaults(func=_run)
    token = commands.add_parser("token", help="print a dev bearer token")
    token.add_argument("--account")
    token.add_argument("--role")
    token.set_defaults(func=_token)
    schedule = commands.add_parser("run-schedule", help="invoke a scheduled function now on the running stack")
    schedule.add_argument("function", nargs="?", default="ExpiryFunction")
    schedule.set_defaults(func=_run_schedule)
    parameters = commands.add_parser(
        "deploy-parameters", help="samconfig's parameter overrides for an environment, with these merged over them"
    )
    parameters.add_argument("--env", default="dev")
    parameters.add_argument("overrides", nargs="*", help="Key=Value")
    parameters.set_defaults(func=_deploy_parameters)
    args = parser.parse_args(argv)
    if args.command == "run":
        # Only DynamoDB Local keeps its data on disk: PERSIST=1 picks it unless told otherwise.
        args.engine = args.engine or ("dynamodb-local" if args.persist else "moto")
        if args.persist and args.engine != "dynamodb-local":
            parser.error("PERSIST=1 keeps DynamoDB Local's tables; moto keeps nothing (use ENGINE=dynamodb-local)")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
