"""MegaDetector batch output (format_version 1.x): read its detections and top-k classifications, write results back.

The format (``../shared/data/megadetector/README.md``): ``detection_categories``,
``classification_categories``, optional ``classification_category_descriptions`` giving each
class's taxonomy as a semicolon string, and ``images[].detections[]`` with a relative
``[x, y, width, height]`` bbox, ``conf`` and top-k ``classifications`` pairs ``[id, conf]``.

Descriptions follow one of two conventions: SpeciesNet's 7 fields
``guid;class;order;family;genus;species;common name`` (detected), or a plain lineage from coarse
to fine whose ranks the caller gives (``lineage_ranks``). Empty fields are skipped ranks.

Written back, a changed detection's ``classifications`` hold the post-processed result, the
model's own pairs move to ``ORIGINAL_KEY`` (once: a later pass leaves them there) and the step is
recorded under ``postprocessing`` (``megadetector_steps``), so that a pass of the same task on the
written file starts from that step's input and replaces it, undoing it where the new result
leaves the detection as it was. A taxon the file had no category for (a genus, after a roll-up)
gets a new category id, with a description in the file's own convention.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.taxonomy import NO_TAXON
from taxopost.errors import TOO_DEEP, InputError
from taxopost.io.predictions.detections import (
    LISTED_ONCE,
    DetectionFile,
    check_box,
    check_float,
    check_once,
    check_pairs,
    decode,
    lineage_taxonomy,
    read_bytes,
    require,
    short,
    speciesnet_label,
    speciesnet_lineage,
)
from taxopost.io.predictions.megadetector_steps import (
    CURRENT,
    listed_pairs,
    pairs_at,
    read_from,
    suffix,
    write_step,
)
from taxopost.io.predictions.megadetector_steps import ORIGINAL_KEY as ORIGINAL_KEY  # the format's key, used by callers
from taxopost.io.predictions.revision import Revision
from taxopost.io.predictions.steps import rows_to_write

_CATEGORIES = "classification_categories"
_DESCRIPTIONS = "classification_category_descriptions"
_Top = dict[str, msgspec.Raw]
#: What MegaDetector's validator takes for a video (``megadetector.detection.video_utils.VIDEO_EXTENSIONS``).
_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mpeg", ".mpg", ".mov", ".mkv", ".flv")
_REFUSED = "MegaDetector's validator refuses it in a file written back"


def is_megadetector(top: object) -> bool:
    """The format's required top-level keys."""
    return isinstance(top, dict) and "images" in top and "detection_categories" in top


def read_megadetector(
    path: Path | str,
    *,
    lineage_ranks: Sequence[str] | None = None,
    data: bytes | None = None,
    task: str | None = None,
) -> DetectionFile:
    """Read a MegaDetector batch output file.

    The file's bytes stay in memory and each image is parsed on its own, its classifications
    kept as arrays: memory is the file plus a few bytes per pair, not a Python object per value.

    Parameters
    ----------
    path : path-like
    lineage_ranks : sequence of str, optional
        The ranks of plain-lineage descriptions, coarse to fine (e.g. kingdom, phylum, class,
        order, family, species). Without it, descriptions must be SpeciesNet's 7 fields.
    data : bytes, optional
        The file's content, when already read.
    task : str, optional
        The task about to run: a detection whose last recorded step is that task's is read from
        that step's input (the step is replaced when written). None: every detection's current
        ``classifications``.

    Raises
    ------
    InputError
        Naming the file, the JSON path and the value: a missing key, a category id with no
        entry, a confidence outside [0, 1], pairs not sorted by descending confidence, a
        ``bbox`` that is not 4 finite numbers, a detection ``conf`` that is not a number in
        [0, 1], a lineage with a cycle or a conflict, a failed image with detections, a
        malformed ``postprocessing`` record.
    """
    path = Path(path)
    top: _Top = decode(path, read_bytes(path) if data is None else data, _Top)
    heads = {
        key: decode(path, top[key], where=key)
        for key in ("info", "detection_categories", _CATEGORIES, _DESCRIPTIONS)
        if key in top
    }
    info = require(heads, "info", dict, "", path)
    require(info, "format_version", str, "info", path)
    detector = require(heads, "detection_categories", dict, "", path)
    for key in detector:  # MegaDetector's tools read each key as an integer
        if not (key.isascii() and key.isdigit()):
            raise InputError(
                f"detection_categories[{key!r}]", detector[key], "keys are integers as text ('1', '2', ...)",
                source=str(path),
            )  # fmt: skip
    if "images" not in top:
        raise InputError("images", None, "is missing", source=str(path))
    try:
        images = msgspec.json.decode(top["images"], type=list[msgspec.Raw])
    except msgspec.ValidationError:
        raise InputError(
            "images", type(decode(path, top["images"])).__name__, "must be a JSON list", source=str(path)
        ) from None
    except RecursionError:
        raise InputError("file", str(path), TOO_DEEP) from None
    categories = heads.get(_CATEGORIES) or {}
    if not isinstance(categories, dict):
        raise InputError(_CATEGORIES, type(categories).__name__, "must be a JSON object", source=str(path))
    keys = _category_ids(categories, path)
    class_index = {key: i for i, key in enumerate(keys)}
    names = tuple(str(categories[key]) for key in keys)
    taxonomy, class_taxa, convention = _descriptions(heads.get(_DESCRIPTIONS), keys, lineage_ranks, path)

    det_image, det_pos, classified, sources = array("i"), array("i"), array("i"), array("b")
    indices, confs, indptr = array("i"), array("d"), array("q", [0])
    add_index, add_conf, get = indices.append, confs.append, class_index.get
    n_detections = 0
    unwritable, version = _unwritable_header(info, detector, path)
    for i, raw in enumerate(images):
        image = decode(path, raw, where=f"images[{i}]")
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
        elif not isinstance(found, list):
            raise InputError(f"images[{i}].detections", type(found).__name__, "must be a list", source=str(path))
        elif image.get("failure") is not None:
            raise InputError(
                f"images[{i}].failure", image["failure"], "a failed image has no detections (detections: null)",
                source=str(path),
            )  # fmt: skip
        if unwritable is None and version is not None and version >= 1.4:  # the validator's rules on videos
            unwritable = _unwritable_video(image, version, f"images[{i}]", path)
        if found is None:
            continue
        for j, det in enumerate(found):
            at = f"images[{i}].detections[{j}]"
            if not isinstance(det, dict):
                raise InputError(at, det, "must be a JSON object", source=str(path))
            category = det.get("category")
            if not isinstance(category, str) or category not in detector:
                raise InputError(
                    f"{at}.category", short(category), f"must be a key of detection_categories {sorted(detector)[:8]}",
                    source=str(path),
                )  # fmt: skip
            check_box(det, at, path)
            if unwritable is None:
                unwritable = _unwritable(det, at, path)
            source = read_from(det, task, at, path)
            pairs = listed_pairs(det, source, at, path)
            if pairs:
                try:
                    for pair_id, pair_conf in pairs:  # checked in bulk below; -1: no such category
                        if pair_conf.__class__ is bool:  # a number to array("d"), not to the format
                            raise TypeError
                        add_index(get(pair_id, -1))
                        add_conf(pair_conf)
                except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond any float
                    _bad_pair(pairs, f"{at}.{suffix(det, source)}", path)
                indptr.append(len(indices))
                classified.append(n_detections)
                sources.append(source)
            det_image.append(i)
            det_pos.append(j)
            n_detections += 1

    image_of = np.frombuffer(det_image, dtype=np.int32)
    pos_of = np.frombuffer(det_pos, dtype=np.int32)
    rows = np.frombuffer(classified, dtype=np.int32).astype(np.intp)
    source_of = np.frombuffer(sources, dtype=np.int8)
    ptr = np.frombuffer(indptr, dtype=np.int64)

    def paths(d: int) -> str:
        return f"images[{image_of[d]}].detections[{pos_of[d]}]"

    def located(p: int) -> tuple[dict, int, int]:  # the detection of flat pair p, its row, the pair's position
        row = int(np.searchsorted(ptr, p, side="right") - 1)
        d = int(rows[row])
        return decode(path, images[image_of[d]])["detections"][pos_of[d]], row, p - int(ptr[row])

    def pair_path(p: int) -> str:
        det, row, k = located(p)
        return f"{paths(int(rows[row]))}.{suffix(det, int(source_of[row]))}[{k}]"

    def value_at(p: int) -> tuple[object, object]:
        det, row, k = located(p)
        pair = pairs_at(det, int(source_of[row]))[k]
        return pair[0], pair[1]

    scores = check_pairs(
        np.frombuffer(indices, dtype=np.int32), np.frombuffer(confs, dtype=np.float64), ptr, len(keys),
        pair_path, value_at, path, _CATEGORIES,
    )  # fmt: skip
    return DetectionFile(
        format="megadetector",
        path=path,
        document=top,
        class_keys=tuple(keys),
        labels=names,
        taxonomy=taxonomy,
        class_taxa=class_taxa,
        scores=scores,
        classified=rows,
        n_detections=n_detections,
        detections=None,
        path_of=paths,
        images=None,
        extra={
            "convention": convention,
            "lineage_ranks": tuple(lineage_ranks or ()),
            "info": info,
            "categories": categories,
            "descriptions": heads.get(_DESCRIPTIONS),
            "images": images,
            "image_of": image_of,
            "pos_of": pos_of,
            "unwritable": unwritable,
        },
        task=task,
        replaces=source_of != CURRENT,
    )


def megadetector_chunks(file: DetectionFile, revision: Revision) -> Iterator[bytes | msgspec.Raw]:
    """The file with ``revision`` applied, as consecutive pieces of JSON.

    A changed detection gets the result and a step recording it; an unchanged one whose last
    step is this task's earlier output (it was read from that step's input) gets that step
    undone. Images with neither are copied as the file spelled them; the others are parsed,
    changed and encoded again one at a time, as are the category tables (a roll-up may add
    categories). The pieces are meant to be written as they come: the output is never whole
    in memory.
    """
    categories = dict(file.extra["categories"])
    descriptions = file.extra["descriptions"]
    descriptions = dict(descriptions) if isinstance(descriptions, dict) else None
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
            if descriptions is not None:
                descriptions[key] = _description(file, cmap, taxon)
        return key

    def result(row: int) -> list | None:
        if not revision.changed[row]:
            return None
        if revision.scores is None:  # a decision: one taxon, its aggregate
            return [[category(int(revision.taxon[row])), round(float(revision.score[row]), 6)]]
        masked = revision.scores  # new scores over the same classes: the pairs still scoring, best first
        a, b = int(masked.indptr[row]), int(masked.indptr[row + 1])
        values = masked.values[a:b]
        order = np.argsort(-values, kind="stable")
        keys = file.class_keys
        return [[keys[int(masked.indices[a + o])], round(float(values[o]), 6)] for o in order if values[o] > 0]

    changes: dict[int, list[tuple[int, list | None, bool]]] = {}
    image_of, pos_of = file.extra["image_of"], file.extra["pos_of"]
    rows, replaces = rows_to_write(revision.changed, file.replaces)
    for row in rows:
        d = int(file.classified[row])
        changes.setdefault(int(image_of[d]), []).append((int(pos_of[d]), result(row), bool(replaces[row])))

    top = dict(file.document)
    top[_CATEGORIES] = msgspec.Raw(msgspec.json.encode(categories))
    if descriptions is not None:
        top[_DESCRIPTIONS] = msgspec.Raw(msgspec.json.encode(descriptions))
    yield b"{"
    for n, (key, value) in enumerate(top.items()):
        yield (b"," if n else b"") + msgspec.json.encode(key) + b":"
        if key != "images":
            yield value
            continue
        yield b"["
        for i, raw in enumerate(file.extra["images"]):
            if i:
                yield b","
            if i not in changes:
                yield raw
                continue
            image = msgspec.json.decode(raw)
            for pos, pairs, replacing in changes[i]:
                write_step(image["detections"][pos], revision.task, pairs, replacing)
            yield msgspec.json.encode(image)
        yield b"]"
    yield b"}"


def megadetector_records(file: DetectionFile) -> Iterator[tuple[int, dict, dict]]:
    """``(detection, image, detection object)`` for every detection, in file order, each image parsed in turn.

    An image listed twice is refused: the platform keys images by ``file``, so the repeat's
    detections would look imported already. MegaDetector's validator takes such a file (and the
    file commands, which key rows by JSON path, still do); its tool merging batch outputs does not.
    """
    d = 0
    first: dict[str, str] = {}
    for i, raw in enumerate(file.extra["images"]):
        image = msgspec.json.decode(raw)
        check_once(first, image["file"], f"images[{i}]", "file", LISTED_ONCE, file.path)
        for det in image.get("detections") or ():
            yield d, image, det
            d += 1


def _unwritable_header(info: dict, detector: dict, path: Path) -> tuple[InputError | None, float | None]:
    """Why the file cannot be written back, found in its header, else None; and its format version.

    MegaDetector's validator reads ``info.format_version`` with ``float()`` and takes 1.3 or
    later, and each detection category's name must be a string, not blank from format 1.6 (a
    classification category needs a name even to be read). The header is copied as it is.
    """
    text = info["format_version"]  # a string: refused when read otherwise
    try:
        version = float(text)
    except ValueError:
        return InputError("info.format_version", short(text), f"is not a number: {_REFUSED}", source=str(path)), None
    if version < 1.3:
        return InputError("info.format_version", text, f"is before format 1.3: {_REFUSED}", source=str(path)), version
    for key, name in detector.items():
        at = f"detection_categories[{key!r}]"
        if not isinstance(name, str):
            return InputError(at, short(name), f"a name must be a string: {_REFUSED}", source=str(path)), version
        if version >= 1.6 and not name.strip():
            return InputError(at, name, f"a name is blank (format 1.6): {_REFUSED}", source=str(path)), version
    return None, version


def _unwritable_video(image: dict, version: float, where: str, path: Path) -> InputError | None:
    """Why the file cannot be written back, found at this image (of a file of format 1.4 or later), else None.

    MegaDetector's validator takes a ``file`` with a video extension for a video: from format
    1.5 it needs ``frames_processed``; from 1.4 a ``frame_rate`` (negative only with a
    ``failure`` key) and each detection's ``frame_number``. The reader needs none of them.
    """
    if os.path.splitext(image["file"])[1].lower() not in _VIDEO_EXTENSIONS:
        return None
    missing = "is missing for a video (format {} or later): " + _REFUSED
    if version >= 1.5 and "frames_processed" not in image:
        return InputError(f"{where}.frames_processed", None, missing.format(1.5), source=str(path))
    if "frame_rate" not in image:
        return InputError(f"{where}.frame_rate", None, missing.format(1.4), source=str(path))
    rate = image["frame_rate"]
    try:
        negative = rate < 0
    except TypeError:
        return InputError(f"{where}.frame_rate", short(rate), f"must be a number: {_REFUSED}", source=str(path))
    if negative and "failure" not in image:
        return InputError(
            f"{where}.frame_rate", rate, f"is negative, for a video without failure: {_REFUSED}", source=str(path)
        )
    for j, det in enumerate(image.get("detections") or ()):
        if isinstance(det, dict) and "frame_number" not in det:  # not a dict: refused when read
            return InputError(f"{where}.detections[{j}].frame_number", None, missing.format(1.4), source=str(path))
    return None


def _unwritable(det: dict, where: str, path: Path) -> InputError | None:
    """Why the file cannot be written back, found at this detection, else None.

    MegaDetector's validator requires each detection's ``conf`` (a JSON number written with a
    fraction: ``1.0``, not ``1``) and ``bbox``. The importer takes a detection without a box (the
    whole image); a file written back would copy it as it is, so writing is refused up front.
    """
    for key in ("conf", "bbox"):
        if det.get(key) is None:
            return InputError(
                f"{where}.{key}", None, "is missing: MegaDetector's format requires one in a file written back",
                source=str(path),
            )  # fmt: skip
    if det["conf"].__class__ is int:
        return InputError(
            f"{where}.conf", det["conf"], f"must be written as a decimal ({det['conf']}.0) in a file written back: "
            "MegaDetector's validator refuses an integer", source=str(path),
        )  # fmt: skip
    return None


def _bad_pair(pairs: list, where: str, path: Path) -> None:
    for k, pair in enumerate(pairs):
        if type(pair) is not list or len(pair) != 2:
            raise InputError(f"{where}[{k}]", pair, "each classification is an [id, confidence] pair", source=str(path))
        number = isinstance(pair[1], (int, float)) and not isinstance(pair[1], bool)
        if not (isinstance(pair[0], str) and number):
            raise InputError(
                f"{where}[{k}]", short(pair), "an [id, confidence] pair: a string id and a number", source=str(path)
            )
        check_float(pair[1:], lambda _, k=k: f"{where}[{k}][1]", path)
    raise InputError(where, short(pairs), "each classification is an [id, confidence] pair", source=str(path))


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
    """Category ids in numeric order: string ids of non-negative integers (they need not be contiguous).

    ASCII digits only: ``str.isdigit`` also takes ``'²'``, which ``int`` does not.
    """
    for key, name in categories.items():
        if not (key.isascii() and key.isdigit()):
            raise InputError(
                f"{_CATEGORIES}[{key!r}]", key, "an id must be a non-negative integer as text ('1', '2', ...)",
                source=str(path),
            )  # fmt: skip
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{_CATEGORIES}[{key!r}]", name, "a category needs a name", source=str(path))
    return sorted(categories, key=int)


def _descriptions(descriptions: object, keys: list[str], lineage_ranks: Sequence[str] | None, path: Path):
    """Taxonomy, class taxa and convention from the descriptions; (None, None, None) without them."""
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
