"""Antenna processing-service responses (``PipelineResultsResponse``): read classifications, write results back.

Recorded responses of a real service: ``../shared/data/antenna/processing_service/``. A response
holds ``algorithms {key: {category_map: {data: [{index, label, gbif_key, taxon_rank}], labels}}}``,
``source_images`` (id, url, width, height, timestamp) and ``detections[]``, each with its
``source_image_id``, a pixel bbox ``{x1, y1, x2, y2}`` and ``classifications[]`` (``classification``,
``labels``, ``scores``, ``logits``, ``algorithm {name, key}``, ``terminal``, ``timestamp``).

Each detection's terminal classification is read, as a full score vector. Its labels come from
its algorithm's category map in ``algorithms``, else from the classification's own ``labels``;
a label resolves through its GBIF key when the taxonomy knows it, else by name. The response
carries no lineage: a taxonomy file is needed. Written back, the post-processed classification
is appended as the terminal one and the source is kept, marked ``terminal: false``; its
algorithm key (:data:`ALGORITHMS`) is what tells taxopost's own steps apart. A pass whose own
earlier output is terminal reads the distribution beneath it and replaces that output (or,
leaving the detection unchanged, removes it and makes the distribution beneath terminal again),
so re-running never stacks; another pass chains on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from taxopost.core.sparse import sparse_rows
from taxopost.errors import InputError
from taxopost.io.predictions.detections import (
    DetectionFile,
    check_float,
    check_once,
    confidences,
    decode,
    require,
    short,
)
from taxopost.io.predictions.records import check_pixel_box, pixel_size
from taxopost.io.predictions.revision import Revision
from taxopost.io.predictions.steps import rows_to_write
from taxopost.io.timestamps import parse_timestamp

#: The algorithm that writes post-processed classifications back, per task.
ALGORITHMS = {
    "rank_rollup": {"name": "taxopost rank roll-up", "key": "taxopost-rank-rollup"},
    "class_masking": {"name": "taxopost class masking", "key": "taxopost-class-masking"},
}
_ROLLUP = ALGORITHMS["rank_rollup"]["key"]
_VOLATILE = ("terminal", "timestamp")  # what a result equal to an earlier one may differ in
_CORNERS = ("x1", "y1", "x2", "y2")


def is_antenna(document: object) -> bool:
    return isinstance(document, dict) and "detections" in document and "source_images" in document


def read_antenna(path: Path | str, *, document: dict | None = None, task: str | None = None) -> DetectionFile:
    """Read an Antenna processing-service response.

    ``task`` is the task about to run: a detection whose terminal classification is that task's
    earlier output (its algorithm key) is read from the distribution beneath it, which a write
    replaces that output on (or, unchanged, makes terminal again).

    Raises
    ------
    InputError
        Naming the file, the JSON path and the value: a missing key, a value of the wrong JSON
        type (an object, a list, a string, a number where the format has one), an unknown or
        repeated source image id, an image size that is not a positive whole number of pixels, a
        timestamp that is not ISO 8601, a box inverted or outside its image (the importer's own
        checks, :mod:`taxopost.io.predictions.records`), more than one terminal classification on
        a detection or more than one classifying algorithm, labels unknown, scores of the wrong
        length or outside [0, 1].
    """
    path = Path(path)
    doc = decode(path) if document is None else document
    if not isinstance(doc, dict):
        raise InputError("file", str(path), f"must hold a JSON object, not a {type(doc).__name__}")
    body = doc.get("body", doc) if "request" in doc and "body" in doc else doc  # a recording: {request, body}
    if not isinstance(body, dict):
        raise InputError("body", short(body), "must be a JSON object (the response)", source=str(path))
    images: dict[str, dict] = {}
    first: dict[str, str] = {}
    for k, image in enumerate(require(body, "source_images", list, "", path)):
        at = f"source_images[{k}]"
        image_id = str(require(image, "id", (str, int), at, path))
        check_once(first, image_id, at, "id", "a detection's source_image_id must name one image", path)
        for key in ("width", "height"):
            pixel_size(image.get(key), f"{at}.{key}", str(path))
        parse_timestamp(image.get("timestamp"), field=f"{at}.timestamp", source=str(path))
        images[image_id] = image
    found = require(body, "detections", list, "", path)
    algorithms = body.get("algorithms") or {}
    if not isinstance(algorithms, dict):
        raise InputError("algorithms", short(algorithms), "must be a JSON object {key: algorithm}", source=str(path))
    detections: list[dict] = []
    det_images: list[dict] = []
    classified: list[int] = []
    chosen: list[dict] = []
    chosen_at: list[str] = []
    replaces: list[bool] = []
    algorithm_key: str | None = None
    for i, det in enumerate(found):
        where = f"detections[{i}]"
        image_id = str(require(det, "source_image_id", (str, int), where, path))
        if image_id not in images:
            raise InputError(f"{where}.source_image_id", image_id, "no such id in source_images", source=str(path))
        box = require(det, "bbox", dict, where, path)
        corners = [require(box, corner, (int, float), f"{where}.bbox", path) for corner in _CORNERS]
        check_float(corners, lambda k, where=where: f"{where}.bbox.{_CORNERS[k]}", path)
        image = images[image_id]
        sizes = (image.get("width"), image.get("height"))
        check_pixel_box([float(c) for c in corners], *sizes, field=f"{where}.bbox", value=short(box), source=str(path))
        classifications = det.get("classifications") or []
        if not isinstance(classifications, list) or not all(isinstance(c, dict) for c in classifications):
            raise InputError(
                f"{where}.classifications", short(classifications), "must be a list of objects", source=str(path)
            )
        terminal = [c for c in classifications if c.get("terminal", True)]
        if len(terminal) > 1:
            raise InputError(f"{where}.classifications", len(terminal), "more than one is terminal", source=str(path))
        source, replacing = terminal, False
        if terminal and _is_step(terminal[0], algorithms):
            # a post-processing step written back: its labels are the classifier's beneath it, and
            # a step that decided one taxon (a roll-up) is passed over for that classifier's vector
            earlier = classifications[: _position(classifications, terminal[0])]
            source = [c for c in earlier if not _is_step(c, algorithms)][-1:]
            own = ALGORITHMS[task]["key"] if task is not None else None
            if own is not None and _key(terminal[0]) == own:  # this task's output: read its input
                terminal = [c for c in earlier if _key(c) != own and not _decides_one_taxon(c)][-1:]
                replacing = True
            elif _decides_one_taxon(terminal[0]):  # the roll-up's input: the latest distribution before it
                terminal = [c for c in earlier if not _decides_one_taxon(c)][-1:]
        if terminal:
            at = f"{where}.classifications[{_position(classifications, (source or terminal)[0])}]"
            key = require((source or terminal)[0], "algorithm", dict, at, path).get("key")
            if key is not None and not isinstance(key, str):
                raise InputError(f"{at}.algorithm.key", short(key), "must be a JSON string", source=str(path))
            if algorithm_key is None:
                algorithm_key = key
            elif key != algorithm_key:
                raise InputError(
                    f"{where}.classifications",
                    key,
                    f"a second classifying algorithm (first: {algorithm_key!r})",
                    source=str(path),
                )
            classified.append(len(detections))
            chosen.append(terminal[0])
            chosen_at.append(f"{where}.classifications[{_position(classifications, terminal[0])}]")
            replaces.append(replacing)
        detections.append(det)
        det_images.append(image)

    labels, gbif_keys = _labels(algorithms, algorithm_key, chosen, chosen_at, path)
    n = len(labels)
    values, logits, made = [], [], []
    for clf, where in zip(chosen, chosen_at, strict=True):
        scores = require(clf, "scores", list, where, path)
        if len(scores) != n:
            raise InputError(
                f"{where}.scores", f"{len(scores)} values", f"the category map has {n} labels", source=str(path)
            )
        vector = confidences(scores, lambda p, where=where: f"{where}.scores[{p}]", path)
        bad = np.flatnonzero(~((vector >= 0) & (vector <= 1)))
        if bad.size:
            raise InputError(
                f"{where}.scores[{int(bad[0])}]", scores[int(bad[0])], "a score must be in [0, 1]", source=str(path)
            )
        values.append(vector)
        logits.append(_logits(clf.get("logits"), n, f"{where}.logits", path))
        made.append(parse_timestamp(clf.get("timestamp"), field=f"{where}.timestamp", source=str(path)))
    matrix = np.vstack(values).astype(np.float32) if values else np.zeros((0, n), np.float32)
    rows, cols = np.nonzero(matrix)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=matrix.shape[0]))])
    scores = sparse_rows(indptr, cols, matrix[rows, cols], n)
    return DetectionFile(
        format="antenna",
        path=path,
        document=doc,
        class_keys=tuple(labels),
        labels=tuple(labels),
        taxonomy=None,
        class_taxa=None,
        scores=scores,
        classified=np.asarray(classified, dtype=np.intp),
        n_detections=len(detections),
        detections=detections,
        path_of=lambda d: f"detections[{d}]",
        images=det_images,
        extra={
            "gbif_keys": gbif_keys,
            "algorithm": algorithm_key,
            "chosen": chosen,
            "logits": logits,  # each row's (None: the response gives none)
            "classified_at": made,
        },
        task=task,
        replaces=np.asarray(replaces, dtype=bool),
    )


def antenna_document(file: DetectionFile, revision: Revision) -> dict:
    """The response with ``revision`` applied (changed in place).

    A changed detection gets its result appended as its terminal classification. This task's
    earlier output on the distribution read (a roll-up's anywhere: it is never another step's
    input) is removed first; when the result is the same, the earlier output is kept as it was
    (its timestamp too), so running the same config again changes nothing. An unchanged
    detection that was read from beneath this task's output gets that output removed and the
    distribution beneath terminal again.
    """
    cmap = revision.category_map
    names = cmap.taxonomy.names
    algorithm = ALGORITHMS[revision.task]
    own = algorithm["key"]
    now = datetime.now(UTC).replace(tzinfo=None).isoformat()
    rows, replaces = rows_to_write(revision.changed, file.replaces)
    for row in rows:
        det = file.detections[int(file.classified[row])]
        source = file.extra["chosen"][row]
        found, earlier = det["classifications"], []
        if replaces[row] or revision.task == "rank_rollup":  # replaced, not stacked on
            position = next(k for k, c in enumerate(found) if c is source)
            gone = [_key(c) == own and (k > position or own == _ROLLUP) for k, c in enumerate(found)]
            earlier = [c for c, out in zip(found, gone, strict=True) if out and c.get("terminal", True)]
            found = [c for c, out in zip(found, gone, strict=True) if not out]
        for classification in found:  # one current answer
            classification["terminal"] = False
        det["classifications"] = found
        if not revision.changed[row]:
            source["terminal"] = True
            continue
        name = names[int(revision.taxon[row])]
        if revision.scores is None:
            result = {"classification": name, "labels": [name], "scores": [float(revision.score[row])], "logits": None}
        else:
            result = {
                "classification": name,
                "labels": source.get("labels"),
                "scores": revision.scores.dense(row, row + 1)[0].astype(np.float64).tolist(),
                "logits": source.get("logits"),  # the model's own, as a masked classification keeps them
            }
        result |= {"inference_time": None, "algorithm": dict(algorithm), "terminal": True, "timestamp": now}
        same = [c for c in earlier if all(c.get(k) == v for k, v in result.items() if k not in _VOLATILE)]
        found.append(same[0] if same else result)
        found[-1]["terminal"] = True
    return file.document


def _is_step(classification: dict, algorithms: dict) -> bool:
    """A post-processing step's output: taxopost's own keys, or an algorithm declared as a task
    other than a classifier (``taxopost export antenna`` declares each step's ``task_type``)."""
    key = _key(classification)
    if not isinstance(key, str):  # a list would not even hash
        return False
    if key in {algorithm["key"] for algorithm in ALGORITHMS.values()}:
        return True
    declared = algorithms.get(key) if isinstance(algorithms, dict) else None
    task_type = declared.get("task_type") if isinstance(declared, dict) else None
    return isinstance(task_type, str) and task_type not in ("classification", "")


def _decides_one_taxon(classification: dict) -> bool:
    """A step's output without a distribution: one label, one score (a roll-up, a size filter)."""
    scores = classification.get("scores")
    return not isinstance(scores, list) or len(scores) <= 1


def _key(classification: dict) -> object:
    algorithm = classification.get("algorithm")
    return algorithm.get("key") if isinstance(algorithm, dict) else None


def _position(classifications: list[dict], classification: dict) -> int:
    """Where ``classification`` is in its detection's list (by identity: two may be equal)."""
    return next(k for k, c in enumerate(classifications) if c is classification)


def _labels(
    algorithms: dict, key: str | None, chosen: list[dict], chosen_at: list[str], path: Path
) -> tuple[list[str], list[str]]:
    """The labels of the classifying algorithm, and their GBIF keys ('' where none).

    ``chosen_at`` is the JSON path of each classification read, for messages.
    """
    at = f"algorithms[{key!r}]"
    entry = algorithms.get(key) if key is not None else None
    if entry is not None and not isinstance(entry, dict):
        raise InputError(at, short(entry), "must be a JSON object (name, key, category_map)", source=str(path))
    category_map = entry.get("category_map") if entry is not None else None
    if category_map is not None and not isinstance(category_map, dict):
        raise InputError(
            f"{at}.category_map", short(category_map), "must be a JSON object {data, labels}", source=str(path)
        )
    if category_map:
        data = category_map.get("data") or []
        if not isinstance(data, list):
            raise InputError(
                f"{at}.category_map.data", short(data), "must be a list of {index, label, gbif_key} objects",
                source=str(path),
            )  # fmt: skip
        if data:
            for k, item in enumerate(data):
                where = f"{at}.category_map.data[{k}]"
                require(item, "index", int, where, path)
                require(item, "label", str, where, path)
                gbif_key = item.get("gbif_key")
                if gbif_key is not None and (not isinstance(gbif_key, (str, int)) or isinstance(gbif_key, bool)):
                    raise InputError(
                        f"{where}.gbif_key", short(gbif_key), "a GBIF key is a number or its text", source=str(path)
                    )
            ordered = sorted(range(len(data)), key=lambda k: data[k]["index"])
            if [data[k]["index"] for k in ordered] != list(range(len(ordered))):
                raise InputError(f"{at}.category_map.data", "index", "indices must be 0..n-1", source=str(path))
            labels = [data[k]["label"] for k in ordered]
            _once(labels, lambda i: f"{at}.category_map.data[{ordered[i]}].label", path)
            return labels, [str(data[k].get("gbif_key") or "") for k in ordered]
        if category_map.get("labels"):
            labels = _strings(category_map["labels"], f"{at}.category_map.labels", path)
            _once(labels, lambda i: f"{at}.category_map.labels[{i}]", path)
            return labels, []
    if chosen and chosen[0].get("labels"):
        labels = _strings(chosen[0]["labels"], f"{chosen_at[0]}.labels", path)
        _once(labels, lambda i: f"{chosen_at[0]}.labels[{i}]", path)
        for clf, where in zip(chosen, chosen_at, strict=True):
            if clf.get("labels") is not None and _strings(clf["labels"], f"{where}.labels", path) != labels:
                raise InputError(
                    f"{where}.labels",
                    short(clf["labels"][:3]),
                    f"differ between detections of {key!r} (first: {chosen_at[0]}.labels)",
                    source=str(path),
                )
        return labels, []
    if not chosen:
        return [], []
    raise InputError(
        at,
        None,
        f"no category map in the response and the classifications of {key!r} have no labels: "
        "their scores name no class",
        source=str(path),
    )


def _logits(values: object, n: int, where: str, path: Path) -> np.ndarray | None:
    """A classification's logits as float32, checked: ``n`` finite numbers; None when it has none
    (Antenna's services send ``[]`` for a model without logits)."""
    if values is None or values == []:
        return None
    if not isinstance(values, list):
        raise InputError(where, short(values), "must be a list of numbers", source=str(path))
    if len(values) != n:
        raise InputError(where, f"{len(values)} values", f"the category map has {n} labels", source=str(path))
    p = next((k for k, v in enumerate(values) if type(v) not in (int, float)), None)
    if p is not None:
        raise InputError(f"{where}[{p}]", short(values[p]), "a logit must be a number", source=str(path))
    check_float(values, lambda k: f"{where}[{k}]", path)
    vector = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~(np.abs(vector) <= np.finfo(np.float32).max))  # stored as float32: finite there too
    if bad.size:
        raise InputError(f"{where}[{int(bad[0])}]", values[int(bad[0])], "a logit must be finite", source=str(path))
    return vector.astype(np.float32)


def _once(labels: list[str], where: Callable[[int], str], path: Path) -> None:
    """Refuse a label given twice (two classes of one name), naming both places."""
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        earlier = first.setdefault(label, i)
        if earlier != i:
            raise InputError(
                where(i), label, f"repeats {where(earlier)}: each class has its own label", source=str(path)
            )


def _strings(labels: object, where: str, path: Path) -> list[str]:
    """A list of labels, each a string (a string alone would read as one label per character)."""
    if not isinstance(labels, list):
        raise InputError(where, short(labels), "must be a list of labels (strings)", source=str(path))
    for k, label in enumerate(labels):
        if not isinstance(label, str):
            raise InputError(f"{where}[{k}]", short(label), "a label must be a string", source=str(path))
    return labels
