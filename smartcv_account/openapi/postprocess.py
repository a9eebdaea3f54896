"""Completing the document once the routes are walked: required fields and examples.

Fields of schemas only responses use are marked `required` (unless their metadata says
`x-omittedWhen`): a response always carries every field of its schema. Every JSON body gets an
example built from its fields' examples (`schemas.base.about`), and each error answer one
example per code it may carry, from `errors.ERRORS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..error_codes import ERRORS


def operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every operation object of the document."""
    for item in document["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                yield operation


def _bodies(operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (kind, media type object) for the operation's JSON request and response bodies."""
    if "requestBody" in operation:
        yield "request", operation["requestBody"]["content"]["application/json"]
    for status, response in operation["responses"].items():
        media = response.get("content", {}).get("application/json")
        if media is not None:
            yield ("error" if int(status) >= 400 else "response"), media


def _refs(schema: Any, components: dict[str, Any], seen: set[str]) -> set[str]:
    """Return the names of the components `schema` reaches, transitively."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref is not None:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                _refs(components[name], components, seen)
        for value in schema.values():
            _refs(value, components, seen)
    elif isinstance(schema, list):
        for value in schema:
            _refs(value, components, seen)
    return seen


def mark_response_fields_required(document: dict[str, Any]) -> None:
    """Mark every field of a schema only responses use as `required`: a response always
    carries every field of its schema (null where it may have no value), never omits one."""
    components = document["components"]["schemas"]
    used_by: dict[str, set[str]] = {"request": set(), "response": set()}
    for operation in operations(document):
        for kind, media in _bodies(operation):
            if kind != "error":
                _refs(media["schema"], components, used_by[kind])
    for name in used_by["response"] - used_by["request"]:
        schema = components[name]
        schema["required"] = [
            key
            for key, value in schema["properties"].items()
            if not value.get("writeOnly") and "x-omittedWhen" not in value
        ]


class MissingExample(ValueError):
    """A schema property has neither an example nor a closed set of values to take one from."""


def example_of(
    schema: dict[str, Any], components: dict[str, Any], kind: str = "response", path: str = ""
) -> Any:
    """Build an example value of `schema` from the examples of its properties.

    A request example leaves out read-only properties, a response example write-only ones.
    """
    if "example" in schema:
        return schema["example"]
    if "$ref" in schema:
        component = components[schema["$ref"].rsplit("/", 1)[-1]]
        return example_of(component, components, kind, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [branch for branch in schema[key] if branch.get("type") != "null"]
            return example_of(branches[0], components, kind, path)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind_of = schema.get("type")
    types = kind_of if isinstance(kind_of, list) else [kind_of]
    if "object" in types and "properties" in schema:
        hidden = "readOnly" if kind == "request" else "writeOnly"
        return {
            key: example_of(value, components, kind, f"{path}.{key}")
            for key, value in schema["properties"].items()
            if not value.get(hidden)
        }
    if "array" in types:
        return [example_of(schema.get("items", {}), components, kind, f"{path}[]")]
    if "boolean" in types:
        return True
    if "null" in types:
        return None
    raise MissingExample(f"no example for {path or 'the body'}")


def add_examples(document: dict[str, Any]) -> None:
    """Give every JSON request and success body an example built from its fields' examples,
    and every error answer one example per code it may carry."""
    components = document["components"]["schemas"]
    for operation in operations(document):
        for kind, media in _bodies(operation):
            if "example" in media or "examples" in media or kind == "error":
                continue  # errors are filled in below, per code
            media["example"] = example_of(media["schema"], components, kind)
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                response["content"]["application/json"]["examples"] = {
                    code: {"summary": code, "value": ERRORS[code].example_answer(code)}
                    for code in response["description"].split(", ")
                }
