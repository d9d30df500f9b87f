"""The taxonomy index: taxa as integer ids with vectorised lineage queries.

A :class:`Taxonomy` is immutable and validated once, when it is built. Taxa are numbered
``0 .. n_taxa - 1``; every query takes and returns arrays of those ids, with ``-1`` for "none"
(a lineage may skip ranks, so "the genus of X" can be none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from taxopost.core.ranks import RANK_CODE, RANKS, parse_rank
from taxopost.errors import InputError

NO_TAXON = -1


@dataclass(frozen=True)
class TaxonRecord:
    """One taxon as given by a file or a database row.

    ``parent`` is the parent's name; ``external_ids`` are keys such as GBIF or iNaturalist ids
    (a taxon may carry several: GBIF keeps more than one key for some species).
    """

    name: str
    rank: str
    parent: str | None = None
    external_ids: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    source: str | None = field(default=None, compare=False)


class Taxonomy:
    """A validated taxonomy with vectorised ancestor, depth and common-ancestor queries.

    Parameters
    ----------
    records : iterable of TaxonRecord
        Each name once; parents referenced by name. Raises :class:`~taxopost.errors.InputError`
        on an unknown rank, an unknown parent, a duplicate name or external id, a cycle, or a
        parent whose rank is not coarser than its child's.
    """

    def __init__(self, records: Iterable[TaxonRecord]) -> None:
        records = list(records)
        self.names: tuple[str, ...] = tuple(r.name for r in records)
        #: Where each taxon was given (``file:line``, or None), for errors found later (a database conflict).
        self.sources: tuple[str | None, ...] = tuple(r.source for r in records)
        self._index: dict[str, int] = {}
        for i, record in enumerate(records):
            name = record.name
            if not isinstance(name, str) or not name.strip():
                raise InputError("name", name, "a taxon needs a non-empty name", source=record.source)
            if name in self._index:
                first = records[self._index[name]]
                raise InputError(
                    "name",
                    name,
                    f"duplicate taxon (first given {_where(first)})",
                    source=record.source,
                )
            self._index[name] = i
        n = len(records)
        self.rank_codes = np.empty(n, dtype=np.int16)
        self.parents = np.full(n, NO_TAXON, dtype=np.int32)
        for i, record in enumerate(records):
            try:
                self.rank_codes[i] = RANK_CODE[parse_rank(record.rank)]
            except InputError as exc:
                raise InputError(f"rank of {record.name!r}", record.rank, exc.reason, source=record.source) from None
            if record.parent is not None:
                parent = self._index.get(record.parent)
                if parent is None:
                    raise InputError(
                        f"parent of {record.name!r}", record.parent, "no taxon has this name", source=record.source
                    )
                self.parents[i] = parent
        self.depth, self._by_depth = _depths(self.parents, self.names, self.sources)
        bad = np.flatnonzero((self.parents >= 0) & (self.rank_codes[np.maximum(self.parents, 0)] >= self.rank_codes))
        if bad.size:
            child = int(bad[0])
            parent = int(self.parents[child])
            raise InputError(
                f"parent of {self.names[child]!r}",
                self.names[parent],
                f"a parent must be coarser than its child, but {self.names[parent]!r} is a "
                f"{RANKS[self.rank_codes[parent]]} and {self.names[child]!r} a {RANKS[self.rank_codes[child]]}",
                source=records[child].source,
            )
        self.external_ids: dict[str, int] = {}
        self._synonyms: dict[str, int] = {}
        for i, record in enumerate(records):
            for key in record.external_ids:
                key = str(key)
                other = self.external_ids.setdefault(key, i)
                if other != i:
                    raise InputError(
                        "external id",
                        key,
                        f"given to both {self.names[other]!r} and {record.name!r}",
                        source=record.source,
                    )
            for synonym in record.synonyms:
                # A synonym claimed by two taxa resolves to neither (-2 marks it ambiguous).
                self._synonyms[synonym] = i if self._synonyms.get(synonym, i) == i else -2
        self._ancestors: dict[int, np.ndarray] = {}

    @classmethod
    def from_lineages(
        cls,
        rows: Iterable[Mapping[str, str | None]],
        ranks: Sequence[str],
        *,
        id_column: str | None = None,
        source: str | None = None,
    ) -> Taxonomy:
        """Build a taxonomy from a lineage table: one row per leaf, one column per rank.

        Parameters
        ----------
        rows : iterable of mapping
            ``{rank column: name, ...}``; an empty cell means the lineage skips that rank.
        ranks : sequence of str
            The rank columns, in any order (canonical or not: ``"Species"`` is fine).
        id_column : str, optional
            A column holding the external id of the row's finest taxon (e.g. a GBIF key).
            A name seen again with the same lineage and another id gains that id too.
        """
        columns = {parse_rank(column, field="rank column"): column for column in ranks}
        order = sorted(columns, key=RANK_CODE.__getitem__)
        seen: dict[str, tuple[str, str | None, int]] = {}
        ids: dict[str, list[str]] = {}
        for line, row in enumerate(rows, start=2):
            parent: str | None = None
            leaf: str | None = None
            for rank in order:
                name = (row.get(columns[rank]) or "").strip()
                if not name:
                    continue
                known = seen.get(name)
                if known is None:
                    seen[name] = (rank, parent, line)
                elif known[0] != rank:
                    raise InputError(
                        columns[rank], name, f"also given as a {known[0]} on line {known[2]}", source=_row(source, line)
                    )
                elif known[1] != parent:
                    raise InputError(
                        columns[rank],
                        name,
                        f"one name with two lineages: under {known[1]!r} on line {known[2]} and under {parent!r} here",
                        source=_row(source, line),
                    )
                parent = leaf = name
            if leaf is None:
                raise InputError("row", dict(row), "names no taxon in any rank column", source=_row(source, line))
            if id_column is not None:
                key = (row.get(id_column) or "").strip()
                if key:
                    ids.setdefault(leaf, []).append(key)
        return cls(
            TaxonRecord(
                name=name,
                rank=rank,
                parent=parent,
                external_ids=tuple(dict.fromkeys(ids.get(name, ()))),
                source=_row(source, line),
            )
            for name, (rank, parent, line) in seen.items()
        )

    # -- lookups ---------------------------------------------------------------------------

    @property
    def n_taxa(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """The id of the taxon called ``name`` (exact name only)."""
        try:
            return self._index[name]
        except KeyError:
            raise InputError("taxon", name, "no taxon has this name") from None

    def find(self, label: object) -> int:
        """Resolve a label to a taxon id: by external id, then by name, then by synonym.

        Returns :data:`NO_TAXON` when nothing (or an ambiguous synonym) matches.
        """
        text = str(label).strip()
        for table in (self.external_ids, self._index):
            found = table.get(text)
            if found is not None:
                return found
        found = self._synonyms.get(text, NO_TAXON)
        return found if found >= 0 else NO_TAXON

    def synonyms_of(self) -> dict[int, tuple[str, ...]]:
        """The unambiguous synonyms of each taxon that has any."""
        grouped: dict[int, list[str]] = {}
        for synonym, taxon in self._synonyms.items():
            if taxon >= 0:
                grouped.setdefault(taxon, []).append(synonym)
        return {taxon: tuple(names) for taxon, names in grouped.items()}

    def rank_of(self, taxon: int) -> str:
        return RANKS[self.rank_codes[taxon]]

    def lineage(self, taxon: int) -> list[int]:
        """The taxon and its ancestors, fine to coarse."""
        chain = []
        while taxon != NO_TAXON:
            chain.append(int(taxon))
            taxon = int(self.parents[taxon])
        return chain

    @cached_property
    def present_rank_codes(self) -> np.ndarray:
        """Rank codes that occur in this taxonomy, fine to coarse."""
        return np.unique(self.rank_codes)[::-1]

    # -- vectorised queries ----------------------------------------------------------------

    def ancestor_at(self, rank: str) -> np.ndarray:
        """Ancestor-or-self of every taxon at ``rank``.

        Returns
        -------
        ndarray of shape (n_taxa,), int32
            ``NO_TAXON`` where the lineage has no taxon at that rank.
        """
        code = RANK_CODE[parse_rank(rank)]
        cached = self._ancestors.get(code)
        if cached is None:
            cached = np.full(self.n_taxa, NO_TAXON, dtype=np.int32)
            for nodes in self._by_depth:  # parents are always one level up
                parents = self.parents[nodes]
                inherited = np.where(parents >= 0, cached[np.maximum(parents, 0)], NO_TAXON)
                cached[nodes] = np.where(self.rank_codes[nodes] == code, nodes, inherited)
            cached.flags.writeable = False
            self._ancestors[code] = cached
        return cached

    def lowest_common_ancestor(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Lowest common ancestor of each pair ``(a[i], b[i])``; ``NO_TAXON`` if none or if
        either side is ``NO_TAXON``."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        result = np.full(a.shape, NO_TAXON, dtype=np.int32)
        valid = (a >= 0) & (b >= 0)
        open_ = valid.copy()
        for code in self.present_rank_codes:  # fine to coarse: the first shared one is lowest
            anc = self.ancestor_at(RANKS[code])
            aa = np.where(open_, anc[np.where(valid, a, 0)], NO_TAXON)
            hit = open_ & (aa >= 0) & (aa == anc[np.where(valid, b, 0)])
            result[hit] = aa[hit]
            open_ &= ~hit
            if not open_.any():
                break
        return result

    def is_ancestor_or_self(self, ancestor: np.ndarray, taxon: np.ndarray) -> np.ndarray:
        """Whether ``ancestor[i]`` is ``taxon[i]`` or one of its ancestors (False for NO_TAXON)."""
        ancestor = np.asarray(ancestor, dtype=np.int64)
        taxon = np.asarray(taxon, dtype=np.int64)
        result = np.zeros(np.broadcast(ancestor, taxon).shape, dtype=bool)
        ancestor, taxon = np.broadcast_arrays(ancestor, taxon)
        valid = (ancestor >= 0) & (taxon >= 0)
        codes = np.where(valid, self.rank_codes[np.where(valid, ancestor, 0)], -1)
        for code in np.unique(codes[valid]):
            sel = codes == code
            result[sel] = self.ancestor_at(RANKS[code])[taxon[sel]] == ancestor[sel]
        return result

    def descendants_mask(self, taxa: Iterable[int]) -> np.ndarray:
        """Boolean mask over all taxa: True for each given taxon and all its descendants.

        ``NO_TAXON`` entries admit nothing (they would otherwise index the last taxon).
        """
        mask = np.zeros(self.n_taxa, dtype=bool)
        ids = np.fromiter(taxa, dtype=np.int64)
        mask[ids[ids != NO_TAXON]] = True
        for nodes in self._by_depth[1:]:
            mask[nodes] |= mask[self.parents[nodes]]
        return mask


def _depths(
    parents: np.ndarray, names: Sequence[str], sources: Sequence[str | None] = ()
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Depth of every taxon (roots are 0) and the taxa grouped by depth; raises on a cycle, at the
    line (``sources``) of its first taxon."""
    n = parents.size
    depth = np.full(n, -1, dtype=np.int32)
    level = np.flatnonzero(parents < 0)
    by_depth = []
    d = 0
    children_of = _children(parents)
    while level.size:
        depth[level] = d
        by_depth.append(level.astype(np.int64))
        level = children_of(level)
        d += 1
    if (depth < 0).any():
        start = int(np.flatnonzero(depth < 0)[0])
        cycle, node = [], start
        while node not in cycle:
            cycle.append(node)
            node = int(parents[node])
        loop = [*cycle[cycle.index(node) :], node]
        where = sources[start] if start < len(sources) else None
        cycle_text = " -> ".join(names[i] for i in loop)
        raise InputError("parent", names[start], "the taxonomy has a cycle: " + cycle_text, source=where)
    return depth, by_depth


def _children(parents: np.ndarray):
    """A function mapping a set of taxa to all their children (CSR over parent ids)."""
    has_parent = np.flatnonzero(parents >= 0)
    order = has_parent[np.argsort(parents[has_parent], kind="stable")]
    counts = np.bincount(parents[has_parent], minlength=parents.size)
    starts = np.concatenate([[0], np.cumsum(counts)])

    def children(nodes: np.ndarray) -> np.ndarray:
        if nodes.size == 0:
            return nodes
        lo, hi = starts[nodes], starts[nodes + 1]
        total = int((hi - lo).sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        offsets = np.repeat(lo - np.concatenate([[0], np.cumsum(hi - lo)[:-1]]), hi - lo)
        return order[np.arange(total) + offsets]

    return children


def _where(record: TaxonRecord) -> str:
    return f"at {record.source}" if record.source else "earlier"


def _row(source: str | None, line: int) -> str:
    return f"{source}:{line}" if source else f"line {line}"
