"""Chains of classifications: where a run of a task starts, and what a re-run replaces.

A detection's predictions form chains: a model's output, then each post-processing step's output
``applied_to`` the one before, the last one ``terminal`` (the chain's current answer). Outside
the outputs a re-run replaced (``replaced_by`` set), a classification has at most one child, and
it is terminal exactly when it has none: :func:`settle_terminal` restores that rule after a revert.

A task that runs again with another config must not stack on its own earlier output. Where a
chain holds an output of the same step (the task's *earlier* algorithms, another config), the run
starts from the source that output was derived from; that output and everything above it in the
chain (the outputs of later tasks built on it) are then replaced by the new run, in the chunk's
own transaction. A chain whose earlier output has this run's config is already done.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from taxopost.observations.models import Classification
from taxopost.taxa.models import Taxon

#: Longest tail walked above an input: chains are a handful of steps; this only stops a loop in
#: corrupt data.
MAX_TAIL = 64
#: Ids per statement on SQLite, below its limit of 32,766 parameters.
SQLITE_BATCH = 30_000


@dataclass(frozen=True)
class Step:
    """One classification above a run's input in its chain (lowest first)."""

    id: int
    job_id: int | None
    algorithm_id: int
    taxon_name: str
    taxon_rank: str
    terminal: bool


@dataclass
class Input:
    """A classification a run starts from, still valid: its ``tail`` is what the run replaces.

    The tail is empty when the input is its chain's current answer; else it starts with the
    earlier output of the task derived from the input and ends with the chain's current answer.
    """

    id: int
    occurrence_id: int | None
    taxon_name: str
    taxon_rank: str
    score: float
    tail: list[Step] = field(default_factory=list)

    @property
    def current(self) -> tuple[str, str]:
        """The (name, rank) of the chain's current answer."""
        top = self.tail[-1] if self.tail else self
        return top.taxon_name, top.taxon_rank


def run_inputs(tips: QuerySet[Classification], earlier: Collection[int], same: Collection[int]) -> QuerySet:
    """The classifications a run starts from, as a queryset: where a chain holds an output of an
    ``earlier`` algorithm, the source of the lowest one (none when that one is of a ``same``
    algorithm: this config already ran there), else the chain's current answer (its tip).

    ``tips``: the terminal classifications of the run's scope. One query, walking the chains in
    the database (a recursive common table expression), whatever the scope's size.
    """
    earlier = sorted(earlier)
    if not earlier:
        return tips
    tips_sql, tips_params = tips.values("id").query.sql_with_params()
    table = connection.ops.quote_name(Classification._meta.db_table)
    marks = ", ".join(["%s"] * len(earlier))
    same = sorted(same)
    not_same = f"AND h.algorithm NOT IN ({', '.join(['%s'] * len(same))})" if same else ""
    sql = f"""
        WITH RECURSIVE walk(tip, node, parent, algorithm, depth) AS (
            SELECT c.id, c.id, c.applied_to_id, c.algorithm_id, 0 FROM {table} c WHERE c.id IN ({tips_sql})
            UNION ALL
            SELECT w.tip, c.id, c.applied_to_id, c.algorithm_id, w.depth + 1
            FROM walk w JOIN {table} c ON c.id = w.parent
            WHERE w.depth < {MAX_TAIL}
        ),
        hit AS (SELECT tip, parent, algorithm, depth FROM walk WHERE algorithm IN ({marks})),
        lowest AS (SELECT tip, MAX(depth) AS depth FROM hit GROUP BY tip)
        SELECT tip FROM walk WHERE depth = 0 AND tip NOT IN (SELECT tip FROM hit)
        UNION ALL
        SELECT h.parent FROM hit h JOIN lowest l ON l.tip = h.tip AND l.depth = h.depth
        WHERE h.parent IS NOT NULL {not_same}
    """
    params = (*tips_params, *earlier, *same)
    return Classification.objects.filter(id__in=RawSQL(sql, params))


def resolve(ids: Iterable[int], earlier: Collection[int], *, lock: bool) -> dict[int, Input]:
    """The inputs among ``ids`` that a run may still start from, each with its tail.

    Valid: a terminal classification (no tail), or one whose live child is an output of an
    ``earlier`` algorithm (its tail walked up to the chain's current answer). Anything else was
    superseded since the run was planned. ``lock``: lock the rows (the chunk's write
    transaction). Two queries (the rows, their taxa), plus two per level of the tallest tail.
    """
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = Classification.objects.filter(id__any_of=ids)
    if lock:
        rows = rows.select_for_update(of=("self",))
    inputs: dict[int, Input] = {}
    waiting: set[int] = set()  # non-terminal inputs: valid only with an earlier output above them
    listed = list(rows.values_list("id", "terminal", "detection__occurrence_id", "taxon_id", "score"))
    named = _taxa(taxon_id for *_, taxon_id, _ in listed)
    for pk, terminal, occurrence_id, taxon_id, score in listed:
        inputs[pk] = Input(pk, occurrence_id, *named[taxon_id], score)
        if not terminal:
            waiting.add(pk)
    if not waiting or not earlier:
        return {pk: found for pk, found in inputs.items() if pk not in waiting}
    owner = {}  # tail row -> the input it lies above
    frontier = sorted(waiting)
    for level in range(MAX_TAIL):
        children = Classification.objects.filter(applied_to_id__any_of=frontier, replaced_by__isnull=True)
        if lock:
            children = children.select_for_update(of=("self",))
        frontier = []
        above = list(children.values_list("id", "applied_to_id", "job_id", "algorithm_id", "terminal", "taxon_id"))
        named = _taxa(row[-1] for row in above)
        for pk, parent, job_id, algorithm_id, terminal, taxon_id in above:
            name, rank = named[taxon_id]
            base = parent if level == 0 else owner[parent]
            if level == 0 and algorithm_id not in earlier:
                continue  # another task built on it since the plan: superseded
            owner[pk] = base
            inputs[base].tail.append(Step(pk, job_id, algorithm_id, name, rank, terminal))
            if not terminal:
                frontier.append(pk)
        if not frontier:
            break
    return {pk: found for pk, found in inputs.items() if pk not in waiting or (found.tail and found.tail[-1].terminal)}


def _taxa(ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """(name, rank) of these taxa, in a query of their own: joined to a chunk's thousand rows,
    PostgreSQL hashed the whole taxa table (69,000 rows of the AMI taxonomy) for their few
    taxa, 12 of the 15 ms of the query."""
    return {
        pk: (name, rank)
        for pk, name, rank in Taxon.objects.filter(id__any_of=sorted(set(ids))).values_list("id", "name", "rank")
    }


def demote_terminal(ids: Iterable[int]) -> set[int]:
    """Demote those of these classifications that are still terminal; returns them.

    One statement that locks, checks and demotes (``UPDATE ... RETURNING``): for a chunk whose
    inputs were all terminal when it was computed, the returned ones are exactly those
    :func:`resolve` would find valid with an empty tail, locked, with no query to check them first.
    """
    ids = sorted(set(ids))
    if not ids:
        return set()
    quote = connection.ops.quote_name
    table, key, terminal = quote(Classification._meta.db_table), quote("id"), quote("terminal")
    if connection.vendor == "postgresql":
        statements = [(f"{key} = ANY(%s::bigint[])", [ids])]
    else:  # a placeholder per id, within SQLite's limit on parameters
        step = SQLITE_BATCH
        batches = [ids[start : start + step] for start in range(0, len(ids), step)]
        statements = [(f"{key} IN ({', '.join(['%s'] * len(batch))})", batch) for batch in batches]
    demoted: set[int] = set()
    with connection.cursor() as cursor:
        for where, params in statements:
            sql = f"UPDATE {table} SET {terminal} = %s WHERE {where} AND {terminal} RETURNING {key}"
            cursor.execute(sql, [False, *params])
            demoted.update(row[0] for row in cursor.fetchall())
    return demoted


def settle_terminal(ids: Iterable[int]) -> None:
    """Make each of these classifications terminal exactly when no live classification derives from it."""
    ids = sorted(set(ids))
    if not ids:
        return
    live_child = Classification.objects.filter(applied_to=OuterRef("pk"), replaced_by__isnull=True)
    rows = Classification.objects.filter(id__any_of=ids)
    rows.filter(Exists(live_child)).update(terminal=False)
    rows.exclude(Exists(live_child)).update(terminal=True)
