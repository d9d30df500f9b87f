"""``taxopost run``'s task options, generated from the registered tasks' config schemas.

Each config field of each task becomes one option: a spec's ``cli_options`` may rename it and
give its help and parsing (``--threshold RANK=VALUE``), and every other field gets an option
named after it (``size_threshold`` -> ``--size-threshold``, a boolean ``--reweight/--no-reweight``).
Tasks that share a field name share its option. A field no option can carry (an object without
a hint) is still reachable through ``--set KEY=VALUE`` and ``--config JSON``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from taxopost.cli.parsing import parse_comma_list, parse_rank_values
from taxopost.errors import InputError, InputErrors
from taxopost.tasks import CliOption, TaskSpec, all_specs

#: Python type of an option value, by JSON-schema type of the field.
_TYPES = {"boolean": bool, "number": float, "integer": int, "string": str}


@dataclass(frozen=True)
class TaskOption:
    """One generated option: the config field it sets, its flag, and the tasks that have that field."""

    field: str
    flag: str
    tasks: tuple[str, ...]
    parse: str
    python_type: type
    help: str
    metavar: str = ""

    @property
    def parameter(self) -> str:
        """The name the command's callback receives it under (never one of its fixed options)."""
        return f"task_option_{self.field}"

    def value(self, raw: Any) -> Any:
        """The config value of what the user typed."""
        if self.parse == "rank_values":
            return parse_rank_values(raw, flag=self.flag)
        if self.parse == "comma_list":
            return parse_comma_list(raw)
        return raw


def task_options(specs: list[type[TaskSpec]] | None = None) -> list[TaskOption]:
    """The options of every registered task's fields, in registry then schema order."""
    found: dict[str, TaskOption] = {}
    for spec in all_specs() if specs is None else specs:
        schema = spec.config_model.model_json_schema()
        for field, prop in schema.get("properties", {}).items():
            option = _option(spec, field, _concrete(prop))
            if option is None:
                continue
            known = found.get(field)
            if known is None:
                found[field] = option
            elif (known.flag, known.parse, known.python_type) != (option.flag, option.parse, option.python_type):
                raise TypeError(f"tasks {known.tasks[0]} and {spec.key} both have {field!r} but as different options")
            else:
                found[field] = TaskOption(
                    field,
                    known.flag,
                    (*known.tasks, spec.key),
                    known.parse,
                    known.python_type,
                    known.help,
                    known.metavar,
                )
    return [_with_task_names(option) for option in found.values()]


def _option(spec: type[TaskSpec], field: str, prop: dict) -> TaskOption | None:
    hint = spec.cli_options.get(field, CliOption())
    flag = hint.flag or "--" + field.replace("_", "-")
    description = hint.help or prop.get("description", "")
    if hint.parse == "rank_values":
        python_type: type = list[str]
    elif hint.parse == "comma_list" or (prop.get("type") == "array" and prop.get("items", {}).get("type") == "string"):
        return TaskOption(field, flag, (spec.key,), "comma_list", str, description, hint.metavar or "A,B,...")
    elif "enum" in prop:
        python_type = str
    elif prop.get("type") in _TYPES:
        python_type = _TYPES[prop["type"]]
    else:
        return None  # --set or --config
    return TaskOption(field, flag, (spec.key,), hint.parse, python_type, description, hint.metavar)


def _with_task_names(option: TaskOption) -> TaskOption:
    text = f"{', '.join(option.tasks)}: {option.help}".rstrip()
    return TaskOption(option.field, option.flag, option.tasks, option.parse, option.python_type, text, option.metavar)


def _concrete(prop: dict) -> dict:
    """``X | None`` (pydantic's ``anyOf: [X, null]``) as X."""
    options = [option for option in prop.get("anyOf", ()) if option.get("type") != "null"]
    return {**prop, **options[0]} if len(options) == 1 else prop


def parameters(options: list[TaskOption]) -> list[inspect.Parameter]:
    """The options as keyword parameters in typer's ``Annotated`` form, all defaulting to "not given"."""
    result = []
    for option in options:
        if option.python_type is bool:
            name = option.flag.removeprefix("--")
            declared = typer.Option(f"{option.flag}/--no-{name}", help=option.help)
            annotation: Any = Annotated[bool | None, declared]
        else:
            declared = typer.Option(option.flag, help=option.help, metavar=option.metavar or None)
            annotation = Annotated[option.python_type | None, declared]
        result.append(inspect.Parameter(option.parameter, inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
        result[-1] = result[-1].replace(default=None)
    return result


def config_from_options(task: str, options: list[TaskOption], given: dict[str, Any]) -> dict[str, Any]:
    """The config fields set by options; an option of another task is refused, naming who has it."""
    config: dict[str, Any] = {}
    for option in options:
        raw = given.get(option.parameter)
        if raw is None or raw == []:
            continue
        if task not in option.tasks:
            raise InputError(option.flag, raw, f"is an option of {', '.join(option.tasks)}, not of {task}")
        config[option.field] = option.value(raw)
    return config


#: How a config field was given, in :func:`named_by_options`: by the field's own option.
BY_OPTION = "option"


def named_by_options(
    exc: InputError, options: list[TaskOption], given: Mapping[str, str | Path], *, prefix: str = "config."
) -> InputError:
    """Config problems told the way the user gave each field, every problem kept.

    ``given`` maps a config field to :data:`BY_OPTION` (``--threshold species=1.5``, not
    ``config.thresholds.species``), to the option that carried it (``"--set"``, ``"--config"``:
    ``--set thresholds.species=1.5``), or to the file it came from. Errors about anything else
    (the scope, a field nobody gave) keep their field.
    """
    by_field = {option.field: option for option in options}
    renamed = []
    for error in getattr(exc, "errors", [exc]):
        path = error.field.removeprefix(prefix) if error.field.startswith(prefix) else None
        top, _, rest = (path or "").partition(".")
        how, option = given.get(top), by_field.get(top)
        if path is None or how is None:
            renamed.append(error)
        elif how == BY_OPTION and option is not None:
            value = error.value
            if option.parse == "rank_values" and rest and str(value) != rest:  # not a problem of the rank itself
                value = f"{rest}={value}"
            renamed.append(InputError(option.flag, value, error.reason))
        elif isinstance(how, Path):
            renamed.append(InputError(path, error.value, error.reason, source=str(how)))
        else:
            renamed.append(InputError(f"{how} {path}", error.value, error.reason))
    return renamed[0] if len(renamed) == 1 else InputErrors(renamed)
