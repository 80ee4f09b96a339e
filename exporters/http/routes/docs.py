"""/api/v1/docs: the OpenAPI document as a plain page (Swagger UI would load from a CDN)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from exporters.http.templates import render

router = APIRouter(include_in_schema=False)
METHODS = ("get", "post", "put", "patch", "delete")


def _type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    return str(schema.get("format") or schema.get("type") or "any")


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation with its parameters and answers, in document order."""
    out = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [
                {
                    "name": p["name"],
                    "in": p["in"],
                    "required": p.get("required", False),
                    "type": _type(p.get("schema", {})),
                    "description": p.get("description", "") or p.get("schema", {}).get("description", ""),
                }
                for p in op.get("parameters", [])
            ]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "tags": op.get("tags", []),
                    "params": params,
                    "body": _type(body) if body else None,
                    "responses": {
                        code: r.get("description", "") for code, r in op.get("responses", {}).items()
                    },
                }
            )
    return out


@router.get("/api/v1/docs")
async def docs(request: Request) -> Response:
    """The API reference, generated from the OpenAPI document."""
    document = request.app.openapi()
    return render("docs.html", who=None, info=document.get("info", {}), operations=operations(document))
