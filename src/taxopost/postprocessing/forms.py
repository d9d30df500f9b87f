"""Django forms generated from the tasks' pydantic JSON schemas.

The config models of the task specs (:mod:`taxopost.tasks`) are the single statement of what a
task accepts; this module turns their JSON schema into form fields, so a new config field shows
up in the admin without a form to maintain. A few fields deserve a better widget than their JSON
type suggests (a threshold per rank, a choice among the taxa lists that exist): a spec names one
of :data:`WIDGETS` per field in its ``form_widgets``. Validation stays with pydantic: the form
only converts types, and pydantic's field errors are put back on the fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.forms.fields import InvalidJSONInput, JSONString

from taxopost.core.ranks import RANKS, UNKNOWN, sort_fine_to_coarse
from taxopost.io.bounded_json import RefusedJSON, loads
from taxopost.jobs.models import Job
from taxopost.ml.models import Algorithm, CategoryMap
from taxopost.postprocessing.base import Scope
from taxopost.taxa.models import TaxaList, Taxon


def threshold_ranks(scope_type: str, scope_ids: list[int]) -> list[str]:
    """Ranks offered for thresholds, fine to coarse (the order a roll-up tries them).

    The ranks a roll-up of these scopes can reach: those of the classes of the category maps in
    use there and of their ancestors. Without a category map in the scopes, the ranks of the
    stored taxonomy. Either way a taxonomy of five ranks gets five inputs, not one per known rank.
    """
    maps = CategoryMap.objects.filter(algorithm__in=algorithms_in_scopes(scope_type, scope_ids)).distinct()
    classes = {taxon for taxa in maps.values_list("taxa", flat=True) for taxon in taxa if taxon is not None}
    taxa = Taxon.objects.exclude(rank=UNKNOWN)
    if not classes:
        present = set(taxa.values_list("rank", flat=True).distinct())
    else:
        lineage = set()
        for ids in _batches(classes):
            lineage.update(int(part) for path in taxa.filter(pk__in=ids).values_list("path", flat=True)
                           for part in path.split("/") if part)  # fmt: skip
        present = set()
        for ids in _batches(lineage):
            present.update(taxa.filter(pk__in=ids).values_list("rank", flat=True).distinct())
    return sort_fine_to_coarse(rank for rank in present if rank in RANKS)


def _batches(ids: set[int], size: int = 5000) -> list[list[int]]:
    """Id lists short enough for one ``IN (...)`` on every backend (a map can hold 30,000 classes)."""
    ordered = sorted(ids)
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


class CommaListField(forms.CharField):
    """A JSON array of strings typed as ``a, b, c``; blank means "not given" (the default applies)."""

    def __init__(self, *, choices: list[str] | None = None, **kwargs) -> None:
        self.allowed = choices
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value) -> list[str] | None:
        text = super().to_python(value)
        if not text:
            return None
        return [part.strip() for part in text.split(",") if part.strip()]


class RankThresholdsWidget(forms.MultiWidget):
    """One number input per rank, labelled, in a compact table."""

    template_name = "postprocessing/widgets/rank_thresholds.html"

    def __init__(self, ranks: list[str], attrs=None) -> None:
        self.ranks = ranks
        number = {"step": "0.01", "min": "0", "max": "1", "placeholder": "off", "style": "width: 6em"}
        super().__init__([forms.NumberInput(attrs=number) for _ in ranks], attrs)

    def decompress(self, value):
        value = value or {}
        return [value.get(rank) for rank in self.ranks]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["ranked"] = list(zip(self.ranks, context["widget"]["subwidgets"], strict=True))
        return context


class RankThresholdsField(forms.MultiValueField):
    """``thresholds`` of the rank roll-up: a value for each rank the user enables (blank = off)."""

    def __init__(self, *, ranks: list[str], **kwargs) -> None:
        fields = [forms.FloatField(required=False) for _ in ranks]
        self.ranks = ranks
        kwargs.setdefault("required", False)
        super().__init__(fields, widget=RankThresholdsWidget(ranks), require_all_fields=False, **kwargs)

    def compress(self, data_list) -> dict[str, float]:
        return {rank: value for rank, value in zip(self.ranks, data_list or [], strict=False) if value is not None}


def _unwrap_optional(prop: dict) -> tuple[dict, bool]:
    """``anyOf: [X, {"type": "null"}]`` (pydantic's ``X | None``) -> (X, True)."""
    options = prop.get("anyOf")
    if not options:
        return prop, False
    concrete = [option for option in options if option.get("type") != "null"]
    if len(concrete) == 1:
        return {**{k: v for k, v in prop.items() if k != "anyOf"}, **concrete[0]}, True
    return prop, False


def field_from_schema(name: str, prop: dict, *, required: bool) -> forms.Field:
    """A form field for one JSON-schema property (the subset pydantic emits for task configs)."""
    prop, optional = _unwrap_optional(prop)
    required = required and not optional
    common: dict[str, Any] = {
        "label": prop.get("title", name.replace("_", " ").capitalize()),
        "help_text": prop.get("description", ""),
        "required": required,
    }
    if "default" in prop and prop["default"] is not None:
        common["initial"] = prop["default"]
    if "enum" in prop:
        choices = [(value, value) for value in prop["enum"]]
        if not required and "initial" not in common:
            choices = [("", "(default)"), *choices]
        return forms.ChoiceField(choices=choices, **common)
    kind = prop.get("type")
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind == "number":
        return forms.FloatField(**common)
    if kind == "integer":
        return forms.IntegerField(**common)
    if kind == "string":
        return forms.CharField(min_length=prop.get("minLength"), max_length=prop.get("maxLength"), **common)
    if kind == "array" and prop.get("items", {}).get("type") == "string":
        return CommaListField(**common)
    # Anything else (objects, unions) is typed as JSON and validated by pydantic.
    if "initial" not in common and "example" in prop:
        common["initial"] = prop["example"]
    return BoundedJSONField(**common)


class BoundedJSONField(forms.JSONField):
    """A JSON form field whose text is parsed with bounds: deep nesting or ``1e999`` is a form error, not a 500."""

    def to_python(self, value):
        if self.disabled or value in self.empty_values or isinstance(value, list | dict | int | float | JSONString):
            return super().to_python(value)
        try:
            converted = loads(value)
        except RefusedJSON as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data, initial):
        """The posted text for showing the form again (Django's own would recurse on deep JSON)."""
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return loads(data)
        except RefusedJSON:
            return InvalidJSONInput(data)


class ConfigForm(forms.Form):
    """Base of the generated forms: turns cleaned data into a config dict, takes pydantic's errors back."""

    def to_config(self) -> dict[str, Any]:
        """The config as pydantic expects it; blank optional fields are left out so defaults apply."""
        config = {}
        for name, value in self.cleaned_data.items():
            if value is None or value == "":
                continue
            config[name] = value
        return config

    def add_config_errors(self, errors: dict[str, list[str]]) -> None:
        """Put ``{"thresholds.genus": [...]}`` on the ``thresholds`` field; unknown paths on the form."""
        for path, messages in errors.items():
            field = path.split(".", 1)[0]
            where = f"{path}: " if "." in path else ""
            for message in messages:
                self.add_error(field if field in self.fields else None, f"{where}{message}")


def algorithms_in_scopes(scope_type: str, scope_ids: list[int]) -> list[Algorithm]:
    """Algorithms with a category map whose classifications are current answers in these scopes."""
    present: set[int] = set()
    for scope_id in scope_ids:
        terminal = Scope(scope_type, scope_id).terminal_classifications().exclude(category_map=None)
        present.update(terminal.values_list("algorithm_id", flat=True).distinct())
    return list(Algorithm.objects.filter(pk__in=present, category_map__isnull=False).order_by("key"))


@dataclass(frozen=True)
class FieldContext:
    """What a widget may look at: the field's schema and the scopes the form runs on."""

    name: str
    prop: dict
    required: bool
    scope_type: str
    scope_ids: list[int]

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


def _rank_thresholds(context: FieldContext) -> forms.Field:
    return RankThresholdsField(
        ranks=threshold_ranks(context.scope_type, context.scope_ids),
        label=context.label,
        help_text="Minimum summed score per rank, in (0, 1]. Leave a rank blank to skip it.",
        initial=context.prop.get("example") or {},
    )


def _rank_list(context: FieldContext) -> forms.Field:
    return CommaListField(
        label=context.label,
        required=False,
        help_text="Ranks to try, fine to coarse, comma-separated (e.g. species, genus, family). "
        "Blank: the ranks with a threshold.",
    )


def _taxa_list(context: FieldContext) -> forms.Field:
    lists = list(TaxaList.objects.order_by("name").values_list("name", flat=True))
    return forms.ChoiceField(
        label=context.label,
        choices=[(name, name) for name in lists],
        help_text="A listed taxon admits its descendants.",
    )


def _algorithm_in_scope(context: FieldContext) -> forms.Field:
    present = algorithms_in_scopes(context.scope_type, context.scope_ids)
    one = context.scope_type == Job.OCCURRENCE and len(context.scope_ids) == 1
    where = "on this occurrence" if one else "in the selection"
    return forms.ChoiceField(
        label=context.label,
        required=False,
        choices=[("", "(every algorithm present)"), *((a.key, str(a)) for a in present)],
        help_text=f"Only algorithms whose outputs are current {where} are offered.",
    )


#: The widgets a spec's ``form_widgets`` may name: each builds the form field of one config field.
WIDGETS: dict[str, Callable[[FieldContext], forms.Field]] = {
    "rank_thresholds": _rank_thresholds,
    "rank_list": _rank_list,
    "taxa_list": _taxa_list,
    "algorithm_in_scope": _algorithm_in_scope,
}


def config_form_class(task_class: type, scope_type: str, scope_ids: list[int]) -> type[ConfigForm]:
    """A form class for ``task_class``'s config, fields in the schema's order."""
    schema = task_class.config_model.model_json_schema()
    required = set(schema.get("required", ()))
    widgets = task_class.spec.form_widgets
    fields = {}
    for name, prop in schema.get("properties", {}).items():
        widget = widgets.get(name)
        if widget is None:
            fields[name] = field_from_schema(name, prop, required=name in required)
        elif widget in WIDGETS:
            fields[name] = WIDGETS[widget](FieldContext(name, prop, name in required, scope_type, scope_ids))
        else:
            raise ImproperlyConfigured(
                f"task {task_class.key}: field {name} asks for widget {widget!r}; known widgets: {', '.join(WIDGETS)}"
            )
    return type(f"{task_class.__name__}Form", (ConfigForm,), fields)
