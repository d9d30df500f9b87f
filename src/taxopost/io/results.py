"""Writers of per-row results (CSV or Parquet) and of sets of files, atomic: a failed write leaves no partial file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from taxopost.core.category_map import CategoryMap
from taxopost.core.masking import MaskingResult
from taxopost.core.ranks import RANKS
from taxopost.core.rollup import STATUSES, RollupResult, rollup_status
from taxopost.core.taxonomy import NO_TAXON, Taxonomy
from taxopost.errors import InputError

if TYPE_CHECKING:  # pyarrow is imported by the writers, not by every command that imports this module
    import pyarrow as pa


def write_rollup_csv(
    path: Path | str, result: RollupResult, taxonomy: Taxonomy, *, detections: Sequence[str] | None = None
) -> None:
    """One row per input row, in input order.

    Columns: ``row`` (and ``detection``, its JSON path, for a predictions file), ``source_taxon,
    source_rank, source_score, taxon, rank, score, changed, status`` (confident / rolled up / no
    rank cleared), then for each rank of the order ``<rank>_candidate, <rank>_score`` (empty
    where not examined).
    """
    import pyarrow as pa

    columns = {
        "row": pa.array(np.arange(len(result))),
        **({"detection": pa.array(list(detections), pa.string())} if detections is not None else {}),
        "source_taxon": _names(taxonomy, result.source_taxon),
        "source_rank": _ranks(taxonomy, result.source_taxon),
        "source_score": pa.array(result.source_score),
        "taxon": _names(taxonomy, result.taxon),
        "rank": _ranks(taxonomy, result.taxon),
        "score": pa.array(result.score),
        "changed": pa.array(result.changed),
        "status": pa.array(np.asarray(STATUSES, dtype=object)[rollup_status(result)], pa.string()),
    }
    for r, rank in enumerate(result.order):
        scores = result.evidence_score[:, r]
        columns[f"{rank}_candidate"] = _names(taxonomy, result.evidence_taxon[:, r])
        columns[f"{rank}_score"] = pa.array(scores, mask=np.isnan(scores))
    write_table(path, pa.table(columns))


def write_masking_csv(
    path: Path | str, result: MaskingResult, category_map: CategoryMap, *, detections: Sequence[str] | None = None
) -> None:
    """Columns: ``row`` (and ``detection`` for a predictions file), ``source_taxon, source_rank,
    source_score, taxon, rank, score, changed, removed_mass``."""
    import pyarrow as pa

    taxonomy = category_map.taxonomy
    source = category_map.class_taxa[result.source_class]
    winner = category_map.class_taxa[result.winner]
    columns = {
        "row": pa.array(np.arange(len(result))),
        **({"detection": pa.array(list(detections), pa.string())} if detections is not None else {}),
        "source_taxon": _names(taxonomy, source),
        "source_rank": _ranks(taxonomy, source),
        "source_score": pa.array(result.source_score),
        "taxon": _names(taxonomy, winner),
        "rank": _ranks(taxonomy, winner),
        "score": pa.array(result.score),
        "changed": pa.array(result.changed),
        "removed_mass": pa.array(result.removed_mass),
    }
    write_table(path, pa.table(columns))


def write_table(path: Path | str, table: pa.Table, *, field: str = "--output") -> None:
    """Write ``table`` as CSV, or Parquet for a ``.parquet`` path, atomically."""

    def write(tmp: str) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if Path(path).suffix.lower() == ".parquet":
            pq.write_table(table, tmp)
        else:
            pacsv.write_csv(table, tmp, pacsv.WriteOptions(quoting_style="needed"))

    write_atomically(path, write, field=field)


def check_output(path: Path | str, field: str = "--output", *, suffixes: Sequence[str] | None = None) -> Path:
    """An output file's path, refused early (before any work) when it cannot be a new file.

    ``suffixes``: the file types the writer writes (``.csv``); another is refused, not written
    as one of them under a misleading name (``out.xlsx`` holding CSV).
    """
    path = _checked_path(path, field, suffixes)
    # The writer's temporary file, made and removed now: a folder that refuses it (read-only, or
    # immutable even to root, whom permission bits do not stop) is found before any work, not
    # after a first output is written.
    os.unlink(_temporary_beside(path, field))
    return path


def _checked_path(path: Path | str, field: str, suffixes: Sequence[str] | None) -> Path:
    """``path`` as a file its writer can write, judged from its name and folder."""
    path = Path(path)
    if path.is_dir():
        raise InputError(field, str(path), "is a folder; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        raise InputError(field, str(path), f"{str(path.parent)!r} is a file, not a folder")
    if not path.parent.is_dir():
        raise InputError(field, str(path), "the folder does not exist")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        shown = f"{path.suffix!r} files" if path.suffix else "a file without an extension"
        raise InputError(field, str(path), f"cannot write {shown}: give a {' or '.join(suffixes)} file")
    return path


def _temporary_beside(path: Path, field: str) -> str:
    """A new empty file in ``path``'s folder (closed), or an InputError when the folder refuses it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise InputError(field, str(path), f"cannot be written there ({exc.strerror or exc})") from None
    os.close(fd)
    return tmp


def check_not_an_input(path: Path | str, field: str, inputs: dict[str, Path | str | None]) -> None:
    """Refuse an output that is one of the command's input files (by option): writing it would
    replace what the command reads, the model's scores say, with its result."""
    for flag, given in inputs.items():
        if given is not None and _same_file(path, given):
            raise InputError(field, str(path), f"is the {flag} file this command reads: give another output file")


def check_not_in_output_dir(output_dir: Path | str, names: Sequence[str], files: dict[str, Path | str | None]) -> None:
    """Refuse a file of another option (read or written) that ``output_dir`` receives as one of
    ``names``: writing the folder would replace it (``--output DIR/calibration.json`` with the
    report's own calibration.json)."""
    for name in names:
        for flag, given in files.items():
            if given is not None and _same_file(Path(output_dir) / name, given):
                reason = f"is the {name} that --output-dir {output_dir} writes: give another file or folder"
                raise InputError(flag, str(given), reason)


def _same_file(a: Path | str, b: Path | str) -> bool:
    try:
        return os.path.samefile(a, b)  # a link or another spelling of the same file
    except OSError:  # one does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def write_atomically(path: Path | str, write: Callable[[str], None], *, field: str = "--output") -> None:
    """Call ``write`` on a temporary file beside ``path``, then move it into place.

    A failed write leaves no partial file and the previous one, if any, intact. The file gets
    the permissions a new file gets from the umask (a temporary file is created owner-only).
    An output that cannot be written is an InputError naming ``field`` and the path.
    """
    _write_all({Path(path): write}, field)


def write_bytes_atomically(path: Path | str, data: bytes | str, *, field: str = "--output") -> None:
    """:func:`write_atomically` for content already in memory (text is written as UTF-8)."""
    write_files_atomically({path: data}, field=field)


def write_files_atomically(files: Mapping[Path | str, bytes | str], *, field: str = "--output") -> None:
    """Write several files, all or none (text as UTF-8): each is written to a temporary file
    beside it, and they are moved into place only once all are written, so a failed write leaves
    the previous files, not some new ones among old ones (only a rename failing between two
    renames, which a folder in a target's place no longer causes, could). A path that is a folder
    is refused first."""
    writers = {}
    for path, data in files.items():
        content = data.encode("utf-8") if isinstance(data, str) else data
        writers[Path(path)] = lambda tmp, content=content: Path(tmp).write_bytes(content)
    _write_all(writers, field)


def _write_all(writers: Mapping[Path, Callable[[str], None]], field: str) -> None:
    paths = [_checked_path(path, field, None) for path in writers]  # before anything is written
    pending: list[tuple[str, Path]] = []  # temporary files not moved into place (yet)
    path = None
    try:
        for path, write in zip(paths, writers.values(), strict=True):
            tmp = _temporary_beside(path, field)  # the folder's refusal is found here, as in check_output
            pending.append((tmp, path))
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
        while pending:
            tmp, path = pending[0]
            os.replace(tmp, path)
            pending.pop(0)
    except OSError as exc:
        raise InputError(field, str(path), f"cannot be written ({exc.strerror or exc})") from None
    finally:
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _names(taxonomy: Taxonomy, taxa: np.ndarray) -> pa.Array:
    import pyarrow as pa

    names = np.asarray((*taxonomy.names, ""), dtype=object)
    taxa = np.asarray(taxa)
    return pa.array(names[np.where(taxa == NO_TAXON, len(taxonomy.names), taxa)], mask=taxa == NO_TAXON)


def _ranks(taxonomy: Taxonomy, taxa: np.ndarray) -> pa.Array:
    import pyarrow as pa

    ranks = np.asarray(RANKS, dtype=object)
    taxa = np.asarray(taxa)
    valid = taxa != NO_TAXON
    codes = np.where(valid, taxonomy.rank_codes[np.where(valid, taxa, 0)], 0)
    return pa.array(ranks[codes], mask=~valid)
