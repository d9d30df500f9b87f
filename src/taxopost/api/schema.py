"""The OpenAPI schema's task part: each registered task's config schema, generated per request.

drf-spectacular calls :func:`add_task_configs` after building the schema: every task's config
(its pydantic model's JSON schema) becomes a component ``<Key>Config``, and a job's ``config``
is documented as one of them, so clients see what each task accepts without a second lookup.
"""

from __future__ import annotations

from taxopost.postprocessing.registry import all_tasks


def component_name(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_")) + "Config"


def add_task_configs(result: dict, generator, request, public) -> dict:
    """A drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    refs = []
    for task in all_tasks():
        schema = task.config_model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schema = _openapi_30(schema)
        schema["description"] = f"Config of {task.key}: {task.description}"
        schemas[component_name(task.key)] = schema
        refs.append({"$ref": f"#/components/schemas/{component_name(task.key)}"})
    for name in ("JobCreateRequest", "JobCreate"):
        config = schemas.get(name, {}).get("properties", {}).get("config")
        if config is not None and refs:
            description = config.get("description", "")
            config.clear()
            config.update({"oneOf": refs, "description": description})
    return result


def _openapi_30(schema: object) -> object:
    """JSON Schema as OpenAPI 3.0 has it: ``anyOf: [X, {"type": "null"}]`` becomes X, nullable."""
    if isinstance(schema, list):
        return [_openapi_30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _openapi_30(value) for key, value in schema.items()}
    options = converted.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del converted["anyOf"]
        if len(rest) == 1:
            converted.update(rest[0])
        else:
            converted["anyOf"] = rest
        converted["nullable"] = True
    return converted
