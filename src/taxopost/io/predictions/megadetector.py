"""MegaDetector batch output (format_version 1.x): read its detections and top-k classifications, write results back.

The format (``../shared/data/megadetector/README.md``): ``detection_categories``,
``classification_categories``, optional ``classification_category_descriptions`` giving each
class's taxonomy as a semicolon string, and ``images[].detections[]`` with a relative
``[x, y, width, height]`` bbox, ``conf`` and top-k ``classifications`` pairs ``[id, conf]``.

Descriptions follow one of two conventions: SpeciesNet's 7 fields
``guid;class;order;family;genus;species;common name`` (detected), or a plain lineage from coarse
to fine whose ranks the caller gives (``lineage_ranks``). Empty fields are skipped ranks.

Written back, a changed detection's ``classifications`` hold the post-processed result and its
original pairs move to ``ORIGINAL_KEY``; a taxon the file had no category for (a genus, after a
roll-up) gets a new category id, with a description in the file's own convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import InputError
from taxopost.io.predictions.detections import (
    DetectionFile,
    check_pairs,
    decode,
    lineage_taxonomy,
    require,
    speciesnet_label,
    speciesnet_lineage,
)
from taxopost.io.predictions.revision import Revision

#: Where a detection's original classifications are kept when post-processing replaces them.
ORIGINAL_KEY = "classifications_before_postprocessing"
_CATEGORIES = "classification_categories"
_DESCRIPTIONS = "classification_category_descriptions"


def is_megadetector(document: object) -> bool:
    """The format's required top-level keys."""
    return isinstance(document, dict) and "images" in document and "detection_categories" in document


def read_megadetector(
    path: Path | str, *, lineage_ranks: Sequence[str] | None = None, document: dict | None = None
) -> DetectionFile:
    """Read a MegaDetector batch output file.

    Parameters
    ----------
    path : path-like
    lineage_ranks : sequence of str, optional
        The ranks of plain-lineage descriptions, coarse to fine (e.g. kingdom, phylum, class,
        order, family, species). Without it, descriptions must be SpeciesNet's 7 fields.
    document : dict, optional
        The file already parsed (format detection parses it once).

    Raises
    ------
    InputError
        Naming the file, the JSON path and the value: a missing key, a category id with no
        entry, a confidence outside [0, 1], pairs not sorted by descending confidence, a
        lineage with a cycle or a conflict, a failed image with detections.
    """
    path = Path(path)
    doc = decode(path, "MegaDetector") if document is None else document
    info = require(doc, "info", dict, "", path)
    require(info, "format_version", str, "info", path)
    require(doc, "detection_categories", dict, "", path)
    images = require(doc, "images", list, "", path)
    categories = doc.get(_CATEGORIES) or {}
    if not isinstance(categories, dict):
        raise InputError(_CATEGORIES, type(categories).__name__, "must be a JSON object", source=str(path))
    keys = _category_ids(categories, path)
    class_index = {key: i for i, key in enumerate(keys)}
    names = tuple(str(categories[key]) for key in keys)
    taxonomy, class_taxa, convention = _descriptions(doc, keys, lineage_ranks, path)

    detections: list[dict] = []
    det_image: list[int] = []
    det_pos: list[int] = []
    classified: list[int] = []
    ids: list = []
    confs: list = []
    indptr = [0]
    add_id, add_conf = ids.append, confs.append
    for i, image in enumerate(images):
        if not isinstance(image, dict) or not isinstance(image.get("file"), str):
            raise InputError(f"images[{i}].file", _get(image, "file"), "each image needs a file name", source=str(path))
        found = image.get("detections")
        if found is None:
            if not isinstance(image.get("failure"), str):
                raise InputError(
                    f"images[{i}].detections",
                    None,
                    "only a failed image (failure: a string) has none",
                    source=str(path),
                )
            continue
        if not isinstance(found, list):
            raise InputError(f"images[{i}].detections", type(found).__name__, "must be a list", source=str(path))
        for j, det in enumerate(found):
            if not isinstance(det, dict):
                raise InputError(f"images[{i}].detections[{j}]", det, "must be a JSON object", source=str(path))
            pairs = det.get("classifications")
            if pairs:
                if not isinstance(pairs, list):
                    raise InputError(
                        f"images[{i}].detections[{j}].classifications", pairs, "must be a list", source=str(path)
                    )
                try:
                    for pair_id, pair_conf in pairs:  # ids and confidences are checked in bulk below
                        add_id(pair_id)
                        add_conf(pair_conf)
                except (TypeError, ValueError):
                    k = next(k for k, pair in enumerate(pairs) if type(pair) is not list or len(pair) != 2)
                    raise InputError(
                        f"images[{i}].detections[{j}].classifications[{k}]",
                        pairs[k],
                        "each classification is an [id, confidence] pair",
                        source=str(path),
                    ) from None
                indptr.append(len(ids))
                classified.append(len(detections))
            detections.append(det)
            det_image.append(i)
            det_pos.append(j)

    def paths(d: int) -> str:
        return f"images[{det_image[d]}].detections[{det_pos[d]}]"

    ptr = np.asarray(indptr, dtype=np.int64)
    rows = np.asarray(classified, dtype=np.intp)

    def pair_path(p: int) -> str:
        row = int(np.searchsorted(ptr, p, side="right") - 1)
        return f"{paths(int(rows[row]))}.classifications[{p - int(ptr[row])}]"

    scores = check_pairs(ids, confs, indptr, class_index, pair_path, path, _CATEGORIES)
    return DetectionFile(
        format="megadetector",
        path=path,
        document=doc,
        class_keys=tuple(keys),
        labels=names,
        taxonomy=taxonomy,
        class_taxa=class_taxa,
        scores=scores,
        classified=rows,
        detections=detections,
        path_of=paths,
        images=[images[i] for i in det_image],
        extra={"convention": convention, "lineage_ranks": tuple(lineage_ranks or ())},
    )


def megadetector_document(file: DetectionFile, revision: Revision) -> dict:
    """The file's document with ``revision`` applied to every changed detection (the document is changed in place)."""
    doc = file.document
    categories = doc.setdefault(_CATEGORIES, {})
    descriptions = doc.get(_DESCRIPTIONS)
    cmap = revision.category_map
    taxonomy = cmap.taxonomy
    category_of: dict[int, str] = {}
    for key, taxon in zip(file.class_keys, cmap.class_taxa, strict=True):
        if taxon != NO_TAXON:
            category_of.setdefault(int(taxon), key)
    next_id = max((int(k) for k in categories), default=-1) + 1

    def category(taxon: int) -> str:
        nonlocal next_id
        key = category_of.get(taxon)
        if key is None:
            key = category_of[taxon] = str(next_id)
            next_id += 1
            categories[key] = taxonomy.names[taxon]
            if isinstance(descriptions, dict):
                descriptions[key] = _description(file, cmap, taxon)
        return key

    changed = np.flatnonzero(revision.changed)
    if revision.scores is None:  # a decision: one taxon, its aggregate
        taxa = revision.taxon[changed].tolist()
        values = revision.score[changed].tolist()
        for row, taxon, value in zip(changed.tolist(), taxa, values, strict=True):
            det = file.detections[int(file.classified[row])]
            det[ORIGINAL_KEY] = det["classifications"]
            det["classifications"] = [[category(taxon), round(value, 6)]]
    else:  # new scores over the same classes: the pairs still scoring, best first
        masked = revision.scores
        for row in changed.tolist():
            a, b = int(masked.indptr[row]), int(masked.indptr[row + 1])
            values = masked.values[a:b]
            order = np.argsort(-values, kind="stable")
            pairs = [
                [file.class_keys[int(masked.indices[a + o])], round(float(values[o]), 6)]
                for o in order
                if values[o] > 0
            ]
            det = file.detections[int(file.classified[row])]
            det[ORIGINAL_KEY] = det["classifications"]
            det["classifications"] = pairs
    return doc


def _description(file: DetectionFile, cmap: CategoryMap, taxon: int) -> str:
    """A new category's description, in the convention of the file's other descriptions."""
    taxonomy = cmap.taxonomy
    if file.extra.get("convention") == "speciesnet":
        return speciesnet_label(taxonomy, taxon, {})
    ranks = file.extra.get("lineage_ranks") or ()
    lineage = {taxonomy.rank_of(t): taxonomy.names[t] for t in taxonomy.lineage(taxon)}
    if ranks:
        return ";".join(lineage.get(rank, "") for rank in ranks)
    return ";".join(taxonomy.names[t] for t in reversed(taxonomy.lineage(taxon)))


def _category_ids(categories: dict, path: Path) -> list[str]:
    """Category ids in numeric order: string ids of non-negative integers (they need not be contiguous)."""
    for key, name in categories.items():
        if not key.isdigit():
            raise InputError(f"{_CATEGORIES}[{key!r}]", key, "an id must be a non-negative integer", source=str(path))
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{_CATEGORIES}[{key!r}]", name, "a category needs a name", source=str(path))
    return sorted(categories, key=int)


def _descriptions(doc: dict, keys: list[str], lineage_ranks: Sequence[str] | None, path: Path):
    """Taxonomy, class taxa and convention from the descriptions; (None, None, None) without them."""
    descriptions = doc.get(_DESCRIPTIONS)
    if not descriptions or not keys:
        return None, None, None
    if not isinstance(descriptions, dict):
        raise InputError(_DESCRIPTIONS, type(descriptions).__name__, "must be a JSON object", source=str(path))
    missing = [key for key in keys if not isinstance(descriptions.get(key), str)]
    if missing:
        key = missing[0]
        raise InputError(
            f"{_DESCRIPTIONS}[{key!r}]", descriptions.get(key), "every category needs a description", source=str(path)
        )
    extra = sorted(set(descriptions) - set(keys))
    if extra:
        raise InputError(
            f"{_DESCRIPTIONS}[{extra[0]!r}]", descriptions[extra[0]], f"no such id in {_CATEGORIES}", source=str(path)
        )
    lineages = []
    if lineage_ranks:
        for key in keys:
            fields = [part.strip() for part in descriptions[key].split(";")]
            if len(fields) != len(lineage_ranks):
                raise InputError(
                    f"{_DESCRIPTIONS}[{key!r}]",
                    descriptions[key],
                    f"has {len(fields)} fields but --lineage-ranks names {len(lineage_ranks)}: "
                    f"{','.join(lineage_ranks)}",
                    source=str(path),
                )
            lineages.append((f"{_DESCRIPTIONS}[{key!r}]", dict(zip(lineage_ranks, fields, strict=True))))
        convention = "lineage"
    else:
        for key in keys:
            ranks = speciesnet_lineage(descriptions[key])
            if ranks is None:
                raise InputError(
                    f"{_DESCRIPTIONS}[{key!r}]",
                    descriptions[key],
                    "not SpeciesNet's guid;class;order;family;genus;species;common name: for a plain lineage "
                    "give its ranks (--lineage-ranks kingdom,phylum,class,order,family,species)",
                    source=str(path),
                )
            lineages.append((f"{_DESCRIPTIONS}[{key!r}]", ranks))
        convention = "speciesnet"
    taxonomy, class_taxa = lineage_taxonomy(lineages, path)
    return taxonomy, class_taxa, convention


def _get(mapping: object, key: str) -> object:
    return mapping.get(key) if isinstance(mapping, dict) else mapping
