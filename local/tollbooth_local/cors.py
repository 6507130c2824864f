"""CORS as an HTTP API with a CorsConfiguration does it: API Gateway answers every preflight
itself (whether or not an OPTIONS route exists) and adds the configured headers to the
functions' answers when the request's Origin is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Response = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int = 0
    allow_credentials: bool = False

    @classmethod
    def from_configuration(cls, configuration: dict[str, Any] | None, parameters: dict[str, str]) -> Cors | None:
        """From a template's CorsConfiguration (its Fn::If already chosen); None: no CORS."""
        if not configuration or not configuration.get("AllowOrigins"):
            return None

        def strings(value: Any) -> tuple[str, ...]:
            if isinstance(value, dict) and "Fn::Split" in value:
                separator, source = value["Fn::Split"]
                text = parameters[source["Ref"]] if isinstance(source, dict) else source
                return tuple(part for part in text.split(separator) if part)
            return tuple(str(item) for item in value or ())

        return cls(
            allow_origins=strings(configuration["AllowOrigins"]),
            allow_methods=tuple(method.upper() for method in strings(configuration.get("AllowMethods"))),
            allow_headers=tuple(header.lower() for header in strings(configuration.get("AllowHeaders"))),
            expose_headers=strings(configuration.get("ExposeHeaders")),
            max_age=int(configuration.get("MaxAge", 0)),
            allow_credentials=bool(configuration.get("AllowCredentials", False)),
        )

    def allowed_origin(self, origin: str | None) -> str | None:
        """What Access-Control-Allow-Origin says to this Origin, or None when it is not allowed."""
        if not origin:
            return None
        if "*" in self.allow_origins and not self.allow_credentials:
            return "*"
        return origin if origin.lower() in {allowed.lower() for allowed in self.allow_origins} else None

    @staticmethod
    def is_preflight(method: str, headers: dict[str, str]) -> bool:
        return method == "OPTIONS" and "access-control-request-method" in headers

    def preflight(self, headers: dict[str, str]) -> Response:
        """204, with the allowances when the origin is allowed (without them the browser refuses)."""
        out: dict[str, str] = {}
        origin = self.allowed_origin(headers.get("origin"))
        if origin is not None:
            out["access-control-allow-origin"] = origin
            if self.allow_methods:
                out["access-control-allow-methods"] = ",".join(self.allow_methods)
            if self.allow_headers:
                out["access-control-allow-headers"] = ",".join(self.allow_headers)
            if self.max_age:
                out["access-control-max-age"] = str(self.max_age)
            if self.allow_credentials:
                out["access-control-allow-credentials"] = "true"
        return 204, out, b""

    def decorate(self, request_headers: dict[str, str], response: Response) -> Response:
        """An answer with the CORS headers for the request's Origin (API Gateway's replace the function's)."""
        status, headers, body = response
        headers = {key: value for key, value in headers.items() if not key.startswith("access-control-")}
        origin = self.allowed_origin(request_headers.get("origin"))
        if origin is not None:
            headers["access-control-allow-origin"] = origin
            if self.expose_headers:
                headers["access-control-expose-headers"] = ",".join(self.expose_headers)
            if self.allow_credentials:
                headers["access-control-allow-credentials"] = "true"
        return status, headers, body
