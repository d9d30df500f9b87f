"""Domain operations on algorithms and category maps."""

from __future__ import annotations

import hashlib
import json
import threading

from taxopost.core.category_map import CategoryMap as CoreCategoryMap
from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import InputError
from taxopost.io.taxonomy import INAT_LEAF_COLUMN, choose_id_column, leaf_class_labels
from taxopost.ml.models import Algorithm, CategoryMap
from taxopost.taxa.operations import DbTaxonomy, load_taxonomy


def import_category_map(
    labels: list[str], *, on_unresolved: str = "error", id_column: str | None = None
) -> tuple[CategoryMap, bool]:
    """Resolve ``labels`` against the database's taxonomy and store them once (by digest).

    Labels that are an iNaturalist model's ``leaf_class_id`` values resolve through the class ids
    the taxonomy import kept; labels that read both ways are refused (:func:`choose_id_column`).
    """
    digest = CategoryMap.digest_of(labels)
    existing = CategoryMap.objects.filter(digest=digest).first()
    if existing is not None:
        return existing, False
    taxonomy = load_taxonomy()
    leaf = choose_id_column(labels, taxonomy.core, id_column) == INAT_LEAF_COLUMN
    resolving = leaf_class_labels(labels) if leaf else labels
    resolved = CoreCategoryMap(resolving, taxonomy.core, on_unresolved=on_unresolved)  # validates
    taxa = [int(taxonomy.db_ids[t]) if t != NO_TAXON else None for t in resolved.class_taxa]
    category_map = CategoryMap.objects.create(digest=digest, labels=list(labels), taxa=taxa, n_classes=len(labels))
    return category_map, True


def get_or_create_algorithm(
    key: str, *, name: str | None = None, version: str = "", category_map: CategoryMap | None = None
) -> tuple[Algorithm, bool]:
    """A classifier algorithm by key; an existing key must keep its category map."""
    if not key.strip():
        raise InputError("algorithm", key, "an algorithm needs a non-empty key (predictions name it)")
    algorithm, created = Algorithm.objects.get_or_create(
        key=key, defaults={"name": name or key, "version": version, "category_map": category_map}
    )
    if not created and category_map is not None and algorithm.category_map_id not in (None, category_map.pk):
        raise InputError(
            "algorithm", key, "already registered with a different category map; give the new model a new key"
        )
    if not created and algorithm.category_map_id is None and category_map is not None:
        algorithm.category_map = category_map
        algorithm.save(update_fields=["category_map"])
    return algorithm, created


def post_processing_algorithm_key(task: str, config: dict, source: Algorithm | None = None) -> str:
    """Key of the algorithm a task writes under: the same task and config give the same key."""
    payload = {"task": task, "config": config, "source": source.key if source else None}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{task}-{digest[:12]}"


_core_maps_lock = threading.Lock()
_core_maps: dict[tuple, CoreCategoryMap] = {}


def core_category_map(category_map_id: int, taxonomy: DbTaxonomy | None = None) -> CoreCategoryMap:
    """The core CategoryMap of a stored category map, with its stored label resolution."""
    taxonomy = taxonomy or load_taxonomy()
    key = (category_map_id, taxonomy.stamp)
    with _core_maps_lock:
        cached = _core_maps.get(key)
    if cached is not None:
        return cached
    stored = CategoryMap.objects.get(pk=category_map_id)
    class_taxa = taxonomy.to_core(stored.taxa)
    built = CoreCategoryMap.from_taxa(stored.labels, class_taxa, taxonomy.core)
    with _core_maps_lock:
        _core_maps[key] = built
    return built
