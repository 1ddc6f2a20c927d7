"""The OpenAPI 3.1 document of the HTTP API, generated from its route table and pydantic models.

Nothing here is written by hand: paths and methods come from `api.OPERATIONS` and the public feed's
`public.OPERATIONS`, parameters and bodies from the input models (`apimodels.py`), answers from the views
every `--json` prints (`app/views.py`); a body that is not JSON (a CAP alert, RSS) is a `Text` row.
`speakerctl api openapi` prints it; docs/openapi.json is that output, and a test keeps the two equal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from speakerctl.web.apimodels import ErrorBody
from speakerctl.web.operations import API_VERSION, Operation, Text

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "A value is invalid (the error says which, the hint how to fix it).",
    401: "No API token, or it is unknown, revoked or its user disabled.",
    403: "The token's user may not do this, or not in this zone.",
    404: "No such record (or none the user may see).",
}
WRITE_ERRORS = {409: "Needs confirmation: send again with `confirmed: true`."}
TEXT_ERRORS = {415: "The body is not of a media type listed for it."}
JSON = "application/json"


def document(operations: Sequence[Operation]) -> dict[str, Any]:
    """The whole document."""
    schemas = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "speakerctl HTTP API",
            "version": API_VERSION,
            "description": (
                "The controller's HTTP API, served by `speakerctl serve --http` under /api/v1/, and "
                "the public feed of what aired under /public/v1/. Every operation but this document "
                "and the public feed needs `Authorization: Bearer <token>` "
                "(`speakerctl user token create USER`); the token acts as its user, with the same "
                "role and zone as on the operator console."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def dumps(doc: dict[str, Any]) -> str:
    """The document as the committed file holds it: sorted keys, two-space indent, a final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _models(operations: Iterable[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[type[BaseModel], JsonSchemaMode] = {ErrorBody: "serialization"}
    for op in operations:
        for answer in op.answers.values():
            model = _model(answer)
            if model is not None:
                found[model] = "serialization"
        if op.body is not None:
            found[op.body] = "validation"
    return sorted(found.items(), key=lambda kv: kv[0].__name__)


def _schemas(operations: Iterable[Operation]) -> dict[str, Any]:
    _, top = models_json_schema(_models(operations), ref_template=REF)
    return dict(top.get("$defs", {}))


def _model(answer: Any) -> type[BaseModel] | None:
    """The model an answer holds (a model, a list of one, or None for no body)."""
    if get_origin(answer) is list:
        return _model(get_args(answer)[0])
    return answer if isinstance(answer, type) and issubclass(answer, BaseModel) else None


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(answer: Any) -> dict[str, Any]:
    if isinstance(answer, Text):
        return {media: {"schema": {"type": "string"}} for media in answer.media_types}
    if answer is dict:
        return {JSON: {"schema": {"type": "object"}}}
    model = _model(answer)
    assert model is not None
    schema = {"type": "array", "items": _ref(model)} if get_origin(answer) is list else _ref(model)
    return {JSON: {"schema": schema}}


def _operation(op: Operation) -> dict[str, Any]:
    summary, _, description = (op.handler.__doc__ or "").strip().partition("\n")
    out: dict[str, Any] = {"operationId": op.name, "summary": summary.strip(), "tags": [op.tag]}
    if description.strip():
        out["description"] = " ".join(description.split())
    params = _parameters(op.path_model, "path") + _parameters(op.query, "query")
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(op.body)}}}
    if op.text is not None:
        out["requestBody"] = {"required": True, "content": _content(op.text)}
    out["responses"] = _responses(op)
    if op.public:
        out["security"] = []
    return out


def _responses(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, answer in op.answers.items():
        text = op.answer_text.get(status, "OK")
        out[str(status)] = {"description": text} | ({} if answer is None else {"content": _content(answer)})
    if not op.public:
        errors = ERRORS | (WRITE_ERRORS if op.method != "GET" else {}) | (TEXT_ERRORS if op.text else {})
        for status, text in errors.items():
            out.setdefault(str(status), {"description": text, "content": _content(ErrorBody)})
    return dict(sorted(out.items()))


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    return [
        _parameter(
            name, where, where == "path" or name in required, field, model.model_fields[name].description
        )
        for name, field in schema["properties"].items()
    ]


def _parameter(
    name: str, where: str, required: bool, schema: dict[str, Any], text: str | None
) -> dict[str, Any]:
    """One parameter; its schema without the titles pydantic adds."""
    clean = {k: v for k, v in schema.items() if k not in ("title", "description")}
    out = {"name": name, "in": where, "required": required, "schema": clean}
    return out | ({"description": text} if text else {})
