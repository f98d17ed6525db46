"""The OpenAPI 3.1 document, built from the route table and the models its
handlers return."""

from __future__ import annotations

from typing import Any

from node.api import models as m
from node.api.access import SESSION_COOKIE
from node.api.operation import (
    Operation,
)
from node.api.problems import PROBLEM_CONTENT_TYPE
from node.api.schema import JsonSchema, schema_of


def openapi_document(version: str, operations: tuple[Operation[Any], ...]) -> JsonSchema:
    """The document of ``operations`` (the route table and a node's extra routes)."""
    components: dict[str, JsonSchema] = {}
    problem_ref = schema_of(m.Problem, components)
    paths: dict[str, dict[str, object]] = {}
    for op in operations:
        responses: dict[str, object] = {}
        for code in (op.ok_status, *op.also_ok):
            content = {op.content_type: {"schema": _ok_schema(op, components)}}
            responses[str(code)] = {"description": op.summary, "content": content}
        for code in (*op.errors, 429):
            responses[str(code)] = {
                "description": "a problem document (RFC 9457)",
                "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}},
            }
        operation: dict[str, object] = {
            "operationId": op.handler.__name__,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required,
                    "description": p.description,
                    "schema": p.schema,
                }
                for p in op.params
            ],
            "responses": responses,
        }
        if op.description:
            operation["description"] = op.description
        if op.auth == "required":
            operation["security"] = [{"token": []}, {"cookie": []}]
        elif op.auth == "optional":
            operation["security"] = [{}, {"token": []}, {"cookie": []}]
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of(op.body, components)}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Relance node API",
            "version": version,
            "description": "A Relance validator or observer node. Amounts are integer euro "
            "cents, times Unix milliseconds of block time, keys and ids lowercase hex. "
            "History is private: send an API token made by `relance-wallet login`.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "bearerFormat": "relance-api-token"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
    }


def _ok_schema(op: Operation[Any], components: dict[str, JsonSchema]) -> JsonSchema:
    if op.ok is None:
        return {"type": "string"}
    schema = schema_of(op.ok, components)
    if op.ok_alternative is not None:
        return {"anyOf": [schema, schema_of(op.ok_alternative, components)]}
    return schema
