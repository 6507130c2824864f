"""A local stand-in for API Gateway (HTTP API, payload format 2.0).

Routes and their authorization come from template.yaml. The deployed stack has
two APIs on the same paths, PublicApi (JWT) and ServiceApi (AWS_IAM); locally one
port serves both: a service token is routed as an IAM caller to ServiceApi's
routes, anything else to PublicApi's.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt

from tollbooth_local import tokens
from tollbooth_local.cors import Cors
from tollbooth_local.template import Route

Invoke = Callable[[str, dict[str, Any]], Any]
# How a SigV4 request signed with a role's credentials arrives: the role's session.
SERVICE_ROLE = "tollbooth-local-service"
SERVICE_ARN = f"arn:aws:sts::123456789012:assumed-role/{SERVICE_ROLE}/local-session"


@dataclass
class Caller:
    kind: str  # "none", "jwt" or "iam"
    claims: dict[str, Any]


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, {"content-type": "application/json"}, body


# What an HTTP API answers when the integration fails: the function raised, timed out (Lambda
# reports both as a function error) or returned what is not a valid payload-v2 response.
# (A REST API would answer 502; an HTTP API answers 500.)
INTEGRATION_FAILED = (500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
# Local tooling only (not API routes), for a service token: POST /_local/schedules/<function>
# runs a scheduled function now (make expire-now).
LOCAL_PREFIX = "/_local/"
SCHEDULES_PREFIX = LOCAL_PREFIX + "schedules/"


class Gateway:
    def __init__(
        self,
        routes: list[Route],
        invoke: Invoke,
        state_dir: Path,
        run_schedule: Callable[[str], Any] | None = None,
        cors: Cors | None = None,
    ) -> None:
        self.routes = routes
        self.invoke = invoke
        self.state_dir = state_dir
        self.run_schedule = run_schedule
        self.cors = cors

    def caller(self, authorization: str | None) -> Caller | None:
        """None means the token was presented and is not valid."""
        if not authorization:
            return Caller("none", {})
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = tokens.verify(self.state_dir, token.strip())
        except jwt.InvalidTokenError:
            return None
        return Caller("iam" if claims.get("role") == "service" else "jwt", claims)

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        if self.cors is None:
            return self._route(method, target, headers, body, source_ip)
        if Cors.is_preflight(method, headers):
            return self.cors.preflight(headers)
        return self.cors.decorate(headers, self._route(method, target, headers, body, source_ip))

    def _route(
        self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(target)
        path = url.path
        if path.startswith(LOCAL_PREFIX):
            return self._tooling(method, path, headers)
        candidates = [(route, params) for route in self.routes if (params := route.match(method, path)) is not None]
        if not candidates:
            return _error(404, "not_found", "no such route")
        caller = self.caller(headers.get("authorization"))
        if caller is None:
            return _error(401, "unauthenticated", "the bearer token is not valid")
        wanted = {"iam": ("iam", "none"), "jwt": ("jwt", "none"), "none": ("none", "jwt", "iam")}[caller.kind]
        chosen = next(((r, p) for kind in wanted for r, p in candidates if r.auth == kind), None)
        if chosen is None:
            return _error(403, "forbidden", "this route is not open to this kind of caller")
        route, params = chosen
        if route.auth != "none" and caller.kind == "none":
            return _error(401, "unauthenticated", "send a bearer token")
        event = self._event(route, params, method, url.path, url.query, headers, body, caller, source_ip)
        try:
            result = self.invoke(route.function_id, event)
        except Exception as error:  # crashed or timed out: the container has been replaced
            print(f"{route.function_id}: {error!r}", file=sys.stderr, flush=True)
            return INTEGRATION_FAILED
        return self._response(route.function_id, result)

    def _tooling(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """The local-only routes: for a service token, as a deployment's operations would be."""
        caller = self.caller(headers.get("authorization"))
        if caller is None or caller.kind == "none":
            return _error(401, "unauthenticated", "local tooling needs a service token (make -s token ROLE=service)")
        if caller.kind != "iam":
            return _error(403, "forbidden", "local tooling is for a service token")
        if method == "POST" and path.startswith(SCHEDULES_PREFIX) and self.run_schedule is not None:
            return self._run_schedule(path.removeprefix(SCHEDULES_PREFIX))
        return _error(404, "not_found", "no such route")

    def _run_schedule(self, function_id: str) -> tuple[int, dict[str, str], bytes]:
        assert self.run_schedule is not None
        try:
            result = self.run_schedule(function_id)
        except KeyError:
            return _error(404, "not_found", f"no schedule invokes {function_id!r}")
        except Exception as error:
            traceback.print_exc()
            return _error(500, "function_failed", f"{function_id} failed: {error!r}")
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()

    @staticmethod
    def _event(
        route: Route,
        params: dict[str, str],
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        caller: Caller,
        source_ip: str,
    ) -> dict[str, Any]:
        query_params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            query_params[key] = f"{query_params[key]},{value}" if key in query_params else value
        authorizer: dict[str, Any] | None = None
        if route.auth == "jwt":
            authorizer = {"jwt": {"claims": {k: str(v) for k, v in caller.claims.items()}, "scopes": None}}
        elif route.auth == "iam":
            authorizer = {"iam": {"accountId": "123456789012", "userArn": SERVICE_ARN, "userId": "AROALOCAL"}}
        now = time.time_ns() // 1_000_000
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": route.api_id,
                "domainName": headers.get("host", "127.0.0.1"),
                "domainPrefix": route.api_id,
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route.route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now // 1000)),
                "timeEpoch": now,
            },
            "isBase64Encoded": encoded,
        }
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
        if query_params:
            event["queryStringParameters"] = query_params
        if params:
            event["pathParameters"] = params
        if body:
            event["body"] = text
        return event

    @staticmethod
    def _response(function_id: str, result: Any) -> tuple[int, dict[str, str], bytes]:
        """A payload-v2 answer as API Gateway reads it: a dict with statusCode is a response,
        anything else is a JSON body with 200; a response API Gateway cannot read is a 500."""
        if not isinstance(result, dict) or "statusCode" not in result:
            return 200, {"content-type": "application/json"}, json.dumps(result).encode()
        try:
            status = int(result["statusCode"])
            if not 100 <= status <= 599:
                raise ValueError(f"statusCode {status}")
            headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
            for key, values in (result.get("multiValueHeaders") or {}).items():
                headers[str(key).lower()] = ",".join(str(v) for v in values)
            raw = result.get("body") or ""
            if not isinstance(raw, str):
                raise ValueError("body is not a string")
            body = base64.b64decode(raw, validate=True) if result.get("isBase64Encoded") else raw.encode()
        except (TypeError, ValueError, AttributeError, binascii.Error) as error:
            print(f"{function_id}: malformed Lambda response ({error})", file=sys.stderr, flush=True)
            return INTEGRATION_FAILED
        return status, headers, body


def serve(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _dispatch(self) -> None:
            started = time.monotonic()
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, out_headers, payload = gateway.handle(
                self.command, self.path, headers, body, self.client_address[0]
            )
            self.send_response_only(status)
            self.send_header("date", self.date_time_string())
            for key, value in out_headers.items():
                if key not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
            # One line per request, as `sam local start-api` prints it, with the time taken.
            elapsed_ms = (time.monotonic() - started) * 1000
            self.log_message('"%s %s" %d %.0f ms', self.command, urlsplit(self.path).path, status, elapsed_ms)

        def __getattr__(self, name: str) -> Any:
            # Every method reaches the routes, as on API Gateway: one no route declares gets
            # its JSON 404 there, never http.server's HTML 501.
            if name.startswith("do_"):
                return self._dispatch
            raise AttributeError(name)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return  # _dispatch logs once the answer is out, with its duration

        def log_message(self, format: str, *args: Any) -> None:
            line = f"{self.client_address[0]} - - [{self.log_date_time_string()}] {format % args}"
            print(line, file=sys.stderr, flush=True)

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # bursts of concurrent clients must queue, not be reset

    server = Server((host, port), RequestHandler)
    server.daemon_threads = True
    return server
