"""The OpenAPI 3.1 document, generated from the contract's tables (served at /openapi.json).

Endpoints, fields, presence rules and codes come from `fields.py` and `codes.py`; the limits
from the running server's settings, so the document states what this server enforces.
"""

from __future__ import annotations

from typing import Any

from frontend.contract.codes import HTTP_ERRORS, Code
from frontend.contract.fields import Endpoint, FieldKind, ResponseField
from preprocessing.image import PhotoLimits
from preprocessing.video import VideoLimits

VERSION = "1.0.0"

_FIELD_SCHEMA = {
    FieldKind.ENCRYPTED: {"type": "string"},
    FieldKind.BOOLEAN: {"type": "string", "pattern": "^(?i:true|false|1|0)$"},
    FieldKind.FILE: {"type": "string", "contentMediaType": "application/octet-stream"},
    FieldKind.TEXT: {"type": "string"},
}
_JSON_FIELD_SCHEMA = {
    FieldKind.ENCRYPTED: {"type": "string"},
    FieldKind.BOOLEAN: {"oneOf": [{"type": "boolean"}, _FIELD_SCHEMA[FieldKind.BOOLEAN]]},
    FieldKind.FILE: {"type": "string"},
    FieldKind.TEXT: {"type": "string"},
}


def _request_schema(endpoint: Endpoint, kinds: dict[FieldKind, dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            f.name: {**kinds[f.kind], "description": f.description} for f in endpoint.request
        },
        "required": [f.name for f in endpoint.request if f.required],
    }


def _presence(field: ResponseField) -> str:
    if not field.present_when:
        return ""
    return " Present only when " + " and ".join(f"{flag}=true" for flag in field.present_when) + "."


def _success_schema(endpoint: Endpoint) -> dict[str, Any]:
    properties: dict[str, Any] = {"code": {"type": "integer", "const": Code.OK.info.code}}
    for field in endpoint.response:
        properties[field.name] = {
            **field.schema,
            "description": field.description + _presence(field),
        }
    properties["request_id"] = {"type": "string"}
    required = ["code", *(f.name for f in endpoint.response if not f.present_when), "request_id"]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _error_schema(codes: tuple[Code, ...], fields: tuple[str, ...] = (),
                  extra: tuple[ResponseField, ...] = ()) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "code": {"type": "integer", "enum": [c.info.code for c in codes]},
        "message": {"type": "string", "enum": [c.info.message for c in codes]},
        "request_id": {"type": "string"},
    }
    if fields:
        properties["field"] = {
            "type": "string",
            "enum": list(fields),
            "description": "The request field the error concerns, when it concerns one (e.g. "
            "the photo without a face, the field that does not decrypt).",
        }
    for field in extra:
        properties[field.name] = {**field.schema,
                                  "description": field.description + _presence(field)}
    return {
        "type": "object",
        "properties": properties,
        "required": ["code", "message", "request_id"],
        "additionalProperties": False,
    }


def _code_table(codes: tuple[Code, ...]) -> str:
    rows = "\n".join(f"| {c.info.code} | {c.info.message} | {c.info.when} |" for c in codes)
    return "| code | message | when |\n|---|---|---|\n" + rows


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    form = _request_schema(endpoint, _FIELD_SCHEMA)
    json_schema = _request_schema(endpoint, _JSON_FIELD_SCHEMA)
    responses: dict[str, Any] = {
        "200": {
            "description": "Success (code 1000).",
            "content": {"application/json": {"schema": _success_schema(endpoint)}},
        },
        "400": {
            "description": "A contract error:\n\n" + _code_table(endpoint.codes),
            "content": {
                "application/json": {
                    "schema": _error_schema(endpoint.codes,
                                            tuple(f.name for f in endpoint.request),
                                            endpoint.error_fields)
                }
            },
        },
    }
    for code in HTTP_ERRORS:
        if code in (Code.NOT_FOUND, Code.METHOD_NOT_ALLOWED):
            continue
        responses[str(code.info.http_status)] = {
            "$ref": f"#/components/responses/http{code.info.http_status}"
        }
    # The browser page's endpoints carry their session token instead of an API key.
    security = {"security": []} if endpoint.public else {}
    return {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        **security,
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": form},
                "multipart/form-data": {"schema": form},
                "application/json": {"schema": json_schema},
            },
        },
        "responses": responses,
    }


def _limits_text(photo: PhotoLimits, video: VideoLimits, max_body_bytes: int) -> str:
    return (
        f"Photos: {', '.join(photo.formats)}; {photo.min_bytes}..{photo.max_bytes} bytes; "
        f"{photo.min_side}..{photo.max_side} px per side and at most {photo.max_pixels} px "
        f"(checked from the header, before decoding). Videos: containers "
        f"{', '.join(video.formats)}, codecs {', '.join(video.codecs)}; "
        f"{video.min_bytes}..{video.max_bytes} bytes; {video.min_duration_s:g}.."
        f"{video.max_duration_s:g} s; at most {video.max_side} px per side and "
        f"{video.max_frame_rate:g} frames/s. Request body: at most {max_body_bytes} bytes, "
        "with Content-Length."
    )


def build_openapi(
    endpoints: tuple[Endpoint, ...],
    limits: PhotoLimits,
    video_limits: VideoLimits,
    max_body_bytes: int,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these endpoints under these limits."""
    paths: dict[str, Any] = {e.path: {"post": _operation(e)} for e in endpoints}
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "The process is up.",
            "responses": {
                "200": {
                    "description": "Up.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"status": {"const": "ok"}},
                                "required": ["status"],
                            }
                        }
                    },
                }
            },
        }
    }
    paths["/readyz"] = {
        "get": {
            "operationId": "readyz",
            "summary": "Triton and every model are ready.",
            "responses": {
                status: {
                    "description": text,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"ready": {"type": "boolean"}},
                                "required": ["ready"],
                            }
                        }
                    },
                }
                for status, text in (("200", "Ready."), ("503", "Not ready."))
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "facegate",
            "version": VERSION,
            "description": "Face verification and silent liveness, SenseID on-prem REST contract. "
            + _limits_text(limits, video_limits, max_body_bytes)
            + " Every answer carries request_id and an X-Request-Id header.",
        },
        "paths": paths,
        "security": [{"ApiKey": []}, {"Bearer": []}, {}],
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
            "responses": {
                f"http{c.info.http_status}": {
                    "description": f"{c.info.message}: {c.info.when}.",
                    "content": {"application/json": {"schema": _error_schema((c,))}},
                }
                for c in HTTP_ERRORS
            },
        },
    }
