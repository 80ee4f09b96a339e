"""The park operator's HTTP API and web dashboard (FastAPI), with scoped Prometheus endpoints.

Public surface: `create_app`, `serve`, `HttpSettings`, and the token functions the CLI uses.
"""

from exporters.http.app import create_app
from exporters.http.server import HttpServer, serve
from exporters.http.settings import HttpSettings
from exporters.http.tokens import create_token, demo_tokens, list_tokens, revoke_token

__all__ = [
    "HttpServer",
    "HttpSettings",
    "create_app",
    "create_token",
    "demo_tokens",
    "list_tokens",
    "revoke_token",
    "serve",
]
