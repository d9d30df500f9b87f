"""SpeciesNet predictions JSON: read each image's top-5 classification, write post-processed predictions back.

Real outputs: ``../shared/data/speciesnet/``. ``predictions[]`` holds one entry per image, with
``classifications.classes`` (7-field labels ``guid;class;order;family;genus;species;common
name``, so the lineage is in the label; blank, human, vehicle and "animal" leave ranks empty)
and top-5 ``scores``, ``detections`` (relative ``[x, y, w, h]``), and the ensemble's
``prediction``, ``prediction_score`` and ``prediction_source``.

The class space is every label the file's classifications name, in first-seen order. Written
back, a changed entry's ``prediction`` and ``prediction_score`` hold the result, and
``prediction_source`` records it the way SpeciesNet records its own roll-ups
(``classifier+rollup_to_genus``; ``classifier+class_masking`` after masking). The
classifications stay as the model gave them, and every pass reads them. Since SpeciesNet's own
roll-ups look the same, each taxopost pass also records a step under ``postprocessing``, with the
prediction fields it overwrote (``before``): a pass of the same task replaces the step, or
restores those fields where it leaves the entry unchanged (``taxopost.io.predictions.steps``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import InputError
from taxopost.io.predictions.detections import (
    DetectionFile,
    check_box,
    check_pairs,
    confidences,
    decode,
    lineage_taxonomy,
    require,
    short,
    speciesnet_label,
    speciesnet_lineage,
)
from taxopost.io.predictions.revision import Revision
from taxopost.io.predictions.steps import STEPS_KEY, read_steps, replaced_by, rows_to_write

#: The entry's prediction fields, which a written-back result overwrites.
FIELDS = ("prediction", "prediction_score", "prediction_source")


def read_speciesnet(path: Path | str, *, document: dict | None = None, task: str | None = None) -> DetectionFile:
    """Read a SpeciesNet predictions file (``predict``, ``classify`` or ``detect`` output).

    The classifier's own ``classifications`` are read, whatever was written back. ``task`` (the
    task about to run) marks the entries whose prediction is that task's earlier output, which
    a write replaces or undoes.

    Raises
    ------
    InputError
        Naming the file, the JSON path and the value: a missing key, classes and scores of
        different lengths, a score outside [0, 1], scores not in descending order, a label
        that is not SpeciesNet's 7 fields, labels whose lineages conflict, or a malformed
        ``postprocessing`` record.
    """
    path = Path(path)
    doc = decode(path) if document is None else document
    predictions = require(doc, "predictions", list, "", path)
    class_index: dict[str, int] = {}
    entries: list[dict] = []
    classified: list[int] = []
    replaces: list[bool] = []
    ids: list = []
    confs: list = []
    indptr = [0]
    for i, entry in enumerate(predictions):
        where = f"predictions[{i}]"
        require(entry, "filepath", str, where, path)
        boxes = entry.get("detections") or []
        if not isinstance(boxes, list) or not all(isinstance(det, dict) for det in boxes):
            raise InputError(f"{where}.detections", type(boxes).__name__, "must be a list of objects", source=str(path))
        for j, det in enumerate(boxes):
            check_box(det, f"{where}.detections[{j}]", path)
        steps = read_steps(entry, where, path, "before", dict)
        for k, step in enumerate(steps):  # a step's undo and replacement restore these fields
            if "before" not in step:
                raise InputError(
                    f"{where}.{STEPS_KEY}[{k}].before", None, "is missing: a step keeps the prediction fields it "
                    "overwrote, which undoing or replacing it restores", source=str(path),
                )  # fmt: skip
        found = entry.get("classifications")
        if found is not None:
            classes = require(found, "classes", list, f"{where}.classifications", path)
            scores = require(found, "scores", list, f"{where}.classifications", path)
            if len(classes) != len(scores):
                raise InputError(
                    f"{where}.classifications.scores",
                    f"{len(scores)} scores",
                    f"for {len(classes)} classes",
                    source=str(path),
                )
            first: dict[str, int] = {}
            for k, label in enumerate(classes):
                if not isinstance(label, str):
                    raise InputError(
                        f"{where}.classifications.classes[{k}]", label, "a label must be a string", source=str(path)
                    )
                if first.setdefault(label, k) != k:
                    raise InputError(
                        f"{where}.classifications.classes[{k}]", short(label),
                        f"given twice in one prediction (also classes[{first[label]}])", source=str(path),
                    )  # fmt: skip
                class_index.setdefault(label, len(class_index))
            ids.extend(classes)
            confs.extend(scores)
            indptr.append(len(ids))
            classified.append(i)
            replaces.append(replaced_by(steps, task))
        entries.append(entry)

    ptr = np.asarray(indptr, dtype=np.int64)
    rows = np.asarray(classified, dtype=np.intp)

    def pair_path(p: int) -> str:
        row = int(np.searchsorted(ptr, p, side="right") - 1)
        return f"predictions[{int(rows[row])}].classifications.scores[{p - int(ptr[row])}]"

    indices = np.fromiter(map(class_index.__getitem__, ids), np.int32, len(ids))
    values = confidences(confs, pair_path, path)
    sparse = check_pairs(
        indices, values, ptr, len(class_index), pair_path, lambda p: (ids[p], confs[p]), path, "the file's classes"
    )
    labels = tuple(class_index)
    lineages = []
    first_seen = {label: n for n, label in reversed(list(enumerate(ids)))}
    for label in labels:
        at = first_seen[label]
        row = int(np.searchsorted(ptr, at, side="right") - 1)
        where = f"predictions[{int(rows[row])}].classifications.classes[{at - int(ptr[row])}]"
        ranks = speciesnet_lineage(label)
        if ranks is None:
            raise InputError(
                where, label, "not SpeciesNet's guid;class;order;family;genus;species;common name", source=str(path)
            )
        lineages.append((where, ranks))
    taxonomy, class_taxa = lineage_taxonomy(lineages, path)
    names = tuple(_name(label) for label in labels)
    return DetectionFile(
        format="speciesnet",
        path=path,
        document=doc,
        class_keys=labels,
        labels=names,
        taxonomy=taxonomy,
        class_taxa=class_taxa,
        scores=sparse,
        classified=rows,
        n_detections=len(entries),
        detections=entries,
        path_of=lambda d: f"predictions[{d}]",
        images=entries,
        task=task,
        replaces=np.asarray(replaces, dtype=bool),
    )


def speciesnet_document(file: DetectionFile, revision: Revision) -> dict:
    """The file's document with ``revision`` applied (changed in place).

    A changed entry gets the result in its prediction fields and a step keeping the fields it
    overwrote (``before``); an unchanged one whose last step is this task's gets the fields that
    step kept back, and the step removed.
    """
    cmap = revision.category_map
    known: dict[int, str] = {}
    for key, taxon in zip(file.class_keys, cmap.class_taxa, strict=True):
        if taxon != NO_TAXON:
            known.setdefault(int(taxon), key)
    rows, replaces = rows_to_write(revision.changed, file.replaces)
    for row in rows:
        entry = file.detections[int(file.classified[row])]
        steps = list(entry.get(STEPS_KEY) or ())
        before = steps.pop().get("before", {}) if replaces[row] else {k: entry[k] for k in FIELDS if k in entry}
        if revision.changed[row]:
            step = f"rollup_to_{revision.rank[row]}" if revision.task == "rank_rollup" else "class_masking"
            entry["prediction"] = speciesnet_label(cmap.taxonomy, int(revision.taxon[row]), known)
            entry["prediction_score"] = float(revision.score[row])
            entry["prediction_source"] = f"classifier+{step}"
            steps.append({"task": revision.task, "before": before})
        else:  # undone: the fields as they were before the step
            for key in FIELDS:
                if key in before:
                    entry[key] = before[key]
                else:
                    entry.pop(key, None)
        if steps:
            entry[STEPS_KEY] = steps
        else:
            entry.pop(STEPS_KEY, None)
    return file.document


def _name(label: str) -> str:
    """What a SpeciesNet label resolves by in a taxonomy file: its finest named rank (a binomial for a species)."""
    ranks = speciesnet_lineage(label) or {}
    finest = [name for name in ranks.values() if name]
    return finest[-1] if finest else label.rsplit(";", 1)[-1]
