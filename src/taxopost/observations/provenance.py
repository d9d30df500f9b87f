"""Provenance: the ``applied_to`` chain from a classification down to the model's own output.

Loaded one query per level of the deepest chain (a post-processing pipeline has a handful of
steps), never one per classification, so a page of 5 or 500 rows costs the same.
"""

from __future__ import annotations

from collections.abc import Iterable

from taxopost.observations.models import Classification

#: Columns a chain step carries: the vectors (kilobytes per row) are left out.
_HEAVY = ("scores", "logits")


def classification_chains(classification_ids: Iterable[int]) -> dict[int, list[Classification]]:
    """For each id, its classification and every ``applied_to`` step below it, newest first.

    Each step comes with its taxon and algorithm loaded (its config, task type and key).
    """
    rows: dict[int, Classification] = {}
    frontier = {int(i) for i in classification_ids if i is not None}
    wanted = set(frontier)
    while frontier:
        level = Classification.objects.filter(id__any_of=frontier).select_related("taxon", "algorithm").defer(*_HEAVY)
        frontier = set()
        for row in level:
            rows[row.pk] = row
            if row.applied_to_id is not None and row.applied_to_id not in rows:
                frontier.add(row.applied_to_id)
    chains: dict[int, list[Classification]] = {}
    for clf_id in wanted:
        chain, node = [], rows.get(clf_id)
        while node is not None:
            chain.append(node)
            node = rows.get(node.applied_to_id) if node.applied_to_id is not None else None
        chains[clf_id] = chain
    return chains


def describe_step(step: Classification) -> dict:
    """One step of a chain as plain values (the API and the pages show the same fields)."""
    return {
        "classification": step.pk,
        "taxon": step.taxon.name,
        "rank": step.taxon.rank,
        "score": step.score,
        "algorithm": step.algorithm.key,
        "algorithm_name": step.algorithm.name,
        "task": step.algorithm.task_type,
        "config": step.algorithm.config,
        "job": step.job_id,
        "terminal": step.terminal,
        "replaced_by": step.replaced_by_id,
    }
