"""Domain operations on taxa: import a taxonomy, build the core index from the database, taxa lists."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from taxopost.core.ranks import UNKNOWN
from taxopost.core.size_filter import NOT_IDENTIFIABLE
from taxopost.core.taxonomy import NO_TAXON, Taxonomy, TaxonRecord
from taxopost.errors import InputError
from taxopost.taxa.models import TaxaList, Taxon


@dataclass(frozen=True)
class TaxonomyImport:
    created: int
    updated: int
    unchanged: int


def import_taxonomy(taxonomy: Taxonomy, *, progress=None) -> TaxonomyImport:
    """Upsert every taxon of a validated core taxonomy, by name, in one transaction.

    A taxon already in the database must keep its rank and parent (a conflicting lineage is an
    error naming the taxon), and an external id stays with the taxon that holds it (labels
    resolve through them); new external ids and synonyms are merged in.
    """
    existing = {t.name: t for t in Taxon.objects.all()}
    names = taxonomy.names
    order = np.argsort(taxonomy.depth, kind="stable")  # parents before children
    held = {key: taxon.name for taxon in existing.values() for key in taxon.external_ids}
    external = {i: [] for i in range(len(names))}
    for key, index in taxonomy.external_ids.items():
        holder = held.get(key)
        if holder is not None and holder != names[index]:
            raise InputError(
                "external id",
                key,
                f"already held by {holder!r} in the database; the file gives it to {names[index]!r}",
                source=taxonomy.sources[index],
            )
        external[index].append(key)
    synonyms = taxonomy.synonyms_of()
    created = updated = unchanged = 0
    with transaction.atomic():
        by_name: dict[str, Taxon] = dict(existing)
        to_update: list[Taxon] = []
        for level in _levels(order, taxonomy.depth):
            new: list[Taxon] = []
            for i in level:
                name, rank = names[i], taxonomy.rank_of(i)
                parent_index = int(taxonomy.parents[i])
                parent = by_name[names[parent_index]] if parent_index != NO_TAXON else None
                ids = sorted(external[i])
                known = existing.get(name)
                if known is None:
                    taxon = Taxon(
                        name=name,
                        rank=rank,
                        parent=parent,
                        depth=0 if parent is None else parent.depth + 1,
                        external_ids=ids,
                        synonyms=sorted(synonyms.get(i, ())),
                    )
                    new.append(taxon)
                    by_name[name] = taxon
                    continue
                if known.rank != rank or known.parent_id != (parent.pk if parent else None):
                    was = known.parent.name if known.parent_id else None
                    raise InputError(
                        "taxon",
                        name,
                        f"already in the database as a {known.rank} under {was!r}; "
                        f"the file has a {rank} under {parent.name if parent else None!r}",
                        source=taxonomy.sources[i],
                    )
                merged_ids = sorted(set(known.external_ids) | set(ids))
                merged_synonyms = sorted(set(known.synonyms) | set(synonyms.get(i, ())))
                if merged_ids != sorted(known.external_ids) or merged_synonyms != sorted(known.synonyms):
                    known.external_ids, known.synonyms = merged_ids, merged_synonyms
                    to_update.append(known)
                else:
                    unchanged += 1
            Taxon.objects.bulk_create(new, batch_size=2000)
            for taxon in new:  # the path needs the id, known only after insert
                parent_path = by_name[taxon.parent.name].path if taxon.parent_id else "/"
                taxon.path = f"{parent_path}{taxon.pk}/"
            Taxon.objects.bulk_update(new, ["path"], batch_size=2000)
            created += len(new)
            if progress:
                progress(len(level))
        # bulk_update sets no auto_now field: updated_at is what tells every process's load_taxonomy
        # (a server's, a worker's) that the taxa changed, ids and synonyms included.
        now = timezone.now()
        for taxon in to_update:
            taxon.updated_at = now
        Taxon.objects.bulk_update(to_update, ["external_ids", "synonyms", "updated_at"], batch_size=2000)
        updated = len(to_update)
    return TaxonomyImport(created=created, updated=updated, unchanged=unchanged)


def _levels(order: np.ndarray, depth: np.ndarray) -> Iterable[list[int]]:
    sorted_depth = depth[order]
    for d in np.unique(sorted_depth):
        yield order[sorted_depth == d].tolist()


def not_identifiable() -> Taxon:
    """The "Not identifiable" label the small-size filter writes (rank ``unknown``, no parent)."""
    taxon, created = Taxon.objects.get_or_create(name=NOT_IDENTIFIABLE, defaults={"rank": UNKNOWN, "depth": 0})
    if created or not taxon.path:
        taxon.path = f"/{taxon.pk}/"
        taxon.save(update_fields=["path"])
    return taxon


@dataclass(frozen=True)
class DbTaxonomy:
    """The core taxonomy built from the database, with id maps both ways.

    ``core`` excludes ``unknown``-rank taxa ("Not identifiable"), which sit outside the ranks.
    """

    core: Taxonomy
    stamp: tuple  # changes whenever taxa are added or edited
    db_ids: np.ndarray  # core index -> Taxon.pk
    index_of: dict[int, int]  # Taxon.pk -> core index

    def to_core(self, taxon_ids: Iterable[int | None]) -> np.ndarray:
        return np.fromiter((self.index_of.get(t, NO_TAXON) if t is not None else NO_TAXON for t in taxon_ids), np.int64)


_cache_lock = threading.Lock()
_cache: dict[tuple, DbTaxonomy] = {}


def load_taxonomy() -> DbTaxonomy:
    """The database's taxonomy as a core index; rebuilt only when taxa were added or changed."""
    stamp = Taxon.objects.aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    key = (stamp["n"], stamp["last"], stamp["top"])
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
    rows = list(
        Taxon.objects.exclude(rank=UNKNOWN).values_list("id", "name", "rank", "parent_id", "external_ids", "synonyms")
    )
    name_of = {pk: name for pk, name, *_ in rows}
    core = Taxonomy(
        TaxonRecord(
            name=name,
            rank=rank,
            parent=name_of.get(parent_id) if parent_id else None,
            external_ids=tuple(str(k) for k in external_ids),
            synonyms=tuple(synonyms),
        )
        for _, name, rank, parent_id, external_ids, synonyms in rows
    )
    db_ids = np.array([pk for pk, *_ in rows], dtype=np.int64)
    built = DbTaxonomy(core=core, stamp=key, db_ids=db_ids, index_of={int(pk): i for i, pk in enumerate(db_ids)})
    with _cache_lock:
        _cache.clear()
        _cache[key] = built
    return built


def import_taxa_list(name: str, taxon_ids: Iterable[int], *, description: str = "") -> tuple[TaxaList, bool]:
    """Create or replace the taxa list ``name`` with exactly these taxa; returns (list, changed)."""
    if not name.strip():
        raise InputError("taxa_list", name, "a taxa list needs a non-empty name (tasks name it)")
    ids = sorted(set(taxon_ids))
    if not ids:
        raise InputError("taxa_list", name, "no entry of the taxa list matches a taxon")
    with transaction.atomic():
        taxa_list, created = TaxaList.objects.get_or_create(name=name, defaults={"description": description})
        current = sorted(taxa_list.taxa.values_list("id", flat=True))
        if current == ids:
            return taxa_list, created
        taxa_list.taxa.set(ids)
    return taxa_list, True
