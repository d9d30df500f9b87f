"""What one Antenna capture set holds, fetched in the fewest requests the API allows.

The route through the API (docs/formats.md says why):

- the project and the capture set (with counts), to name them and to fail early on a bad id;
- the capture set's images: ``/captures/?collections=`` (paged);
- its occurrences with ``apply_defaults=false`` (paged): without it Antenna applies the
  project's default filters and hides occurrences; each list entry nests its identifications,
  withdrawn ones included;
- each occurrence's detail: its detections with bbox, capture and nested classifications
  (ids, algorithm, ``terminal``, ``applied_to``);
- each classification's detail, the only place with ``scores`` and ``logits``;
- detections in no occurrence are found by comparing each capture's ``detections_count`` with
  what the occurrences held (that count is cached by Antenna and may lag behind, so an import
  can also read every capture's detail), then reading those detections' details;
- each algorithm's category map, ``/ml/labels/{id}/``, and the project's taxa with
  ``include_unobserved=true`` (by default Antenna lists observed taxa only), plus the detail of
  each taxon the import adds (the list has no GBIF key).

Nothing here touches the database; the importer (``taxopost.observations.antenna``) decides
what to fetch by what it already holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo

from taxopost.io.antenna.client import AntennaClient, Batch, ConnectorError, reading
from taxopost.io.antenna.records import (
    AntennaCategoryMap,
    AntennaClassification,
    AntennaDetection,
    AntennaIdentification,
    AntennaImage,
    AntennaTaxon,
    parse_category_map,
    parse_classification,
    parse_detection,
    parse_identification,
    parse_image,
    parse_taxon,
)

log = logging.getLogger("taxopost.antenna")

#: Reads of a list that keeps changing (:meth:`AntennaSource._whole_list`), the first included.
LIST_READS = 3


@dataclass(frozen=True)
class CaptureSetInfo:
    project_id: int
    project_name: str
    capture_set_id: int
    capture_set_name: str
    images: int | None


@dataclass(frozen=True)
class OccurrencePage:
    """One page of occurrences: their ids and the identifications nested in them.

    ``listed`` are the occurrences whose entry carried its identifications (an empty list
    included): what Antenna no longer lists of those was deleted there.
    """

    occurrence_ids: list[int]
    identifications: list[AntennaIdentification]
    total: int | None  # the list's count: how many occurrences the capture set has
    listed: list[int] = field(default_factory=list)


class AntennaSource:
    """Reads one capture set of one Antenna project through ``client``; times in ``zone``."""

    def __init__(self, client: AntennaClient, project_id: int, capture_set_id: int, *, zone: tzinfo) -> None:
        self.client = client
        self.project_id = project_id
        self.capture_set_id = capture_set_id
        self.zone = zone
        self._scope = {"project_id": project_id}
        self._taxa: dict[int, AntennaTaxon] | None = None

    def describe(self) -> CaptureSetInfo:
        """The project and the capture set; a wrong id is a message naming the option."""
        try:
            project = self.client.get(f"projects/{self.project_id}/")
        except ConnectorError as exc:
            if exc.status == 404:
                reason = "no such project on this server, or it is a draft the token may not see"
                raise ConnectorError("--project", self.project_id, reason, status=404) from None
            raise
        try:
            collection = self.client.get(
                f"captures/collections/{self.capture_set_id}/", {**self._scope, "with_counts": "true"}
            )
        except ConnectorError as exc:
            if exc.status == 404:
                reason = f"no capture set with this id in project {self.project_id}"
                raise ConnectorError("--capture-set", self.capture_set_id, reason, status=404) from None
            raise
        owner = collection.get("project")
        if owner is not None and owner != self.project_id:
            reason = f"belongs to project {owner}, not {self.project_id}"
            raise ConnectorError("--capture-set", self.capture_set_id, reason)
        count = collection.get("source_images_count")
        return CaptureSetInfo(
            project_id=self.project_id,
            project_name=str(project.get("name") or f"Antenna project {self.project_id}"),
            capture_set_id=self.capture_set_id,
            capture_set_name=str(collection.get("name") or f"Antenna capture set {self.capture_set_id}"),
            images=count if isinstance(count, int) else None,
        )

    def image_pages(self) -> Iterator[list[AntennaImage]]:
        params = {**self._scope, "collections": self.capture_set_id}
        for address, _page, rows in self._whole_list("captures/", params, "captures"):
            with reading(address):
                images = [parse_image(item, self.zone) for item in rows]
            yield images

    def occurrence_pages(self) -> Iterator[OccurrencePage]:
        params = {**self._scope, "collection_id": self.capture_set_id, "apply_defaults": "false"}
        for address, page, rows in self._whole_list("occurrences/", params, "occurrences"):
            ids, identifications, listed = [], [], []
            for item in rows:
                occurrence = item["id"]
                ids.append(occurrence)
                entries = item.get("identifications")
                if isinstance(entries, list):
                    listed.append(occurrence)
                with reading(address):
                    identifications.extend(
                        parse_identification(entry, occurrence, self.zone) for entry in entries or []
                    )
            count = page.get("count")
            yield OccurrencePage(ids, identifications, count if isinstance(count, int) else None, listed)

    def _whole_list(self, path: str, params: dict[str, object], what: str) -> Iterator[tuple[str, dict, list[dict]]]:
        """Each page of a list as ``(request, page, its rows not yielded before)``, every row once.

        Limit/offset pages shift when rows are added or deleted while the list is read: a row
        can move onto a page already read and never be seen. So a list whose ``count`` changed
        between pages, or that held fewer distinct rows than its count, is read again (its new
        rows only are yielded), up to :data:`LIST_READS` times; then the import stops, naming
        the request, rather than lose rows silently.
        """
        seen: set[int] = set()
        for _ in range(LIST_READS):
            totals: list[int | None] = []
            ids: set[int] = set()
            for address, page in self.client.located_pages(path, params):
                count = page.get("count")
                count = count if isinstance(count, int) and not isinstance(count, bool) else None
                if not totals or totals[-1] != count:
                    totals.append(count)
                rows = []
                with reading(address):
                    for item in _results(page, what):
                        pk = _row_id(item, what)
                        ids.add(pk)
                        if pk not in seen:
                            seen.add(pk)
                            rows.append(item)
                yield address, page, rows
            if len(totals) > 1:
                problem = f"its count changed while it was read ({' then '.join(map(str, totals))})"
            elif totals[0] is not None and len(ids) < totals[0]:
                problem = f"it held {len(ids)} distinct rows for a count of {totals[0]}"
            else:
                return
            log.info("%s: %s; reading it again", self.client.shown(path, params), problem)
        reason = f"{problem}, {LIST_READS} reads in a row: rows would be missed; import again once it settles"
        raise ConnectorError("request", self.client.shown(path, {**params, "limit": self.client.page_size}), reason)

    def occurrence_batches(self) -> Iterator[tuple[OccurrencePage, list[AntennaDetection]]]:
        """Each page of occurrences with the detections of its occurrences."""
        for page in self.occurrence_pages():
            yield page, self.occurrence_detections(page.occurrence_ids)

    def occurrence_detections(self, occurrence_ids: list[int]) -> list[AntennaDetection]:
        """The detections of these occurrences, from their details (fetched concurrently)."""
        params = {**self._scope, "apply_defaults": "false"}
        details = self.client.get_many([(f"occurrences/{pk}/", params) for pk in occurrence_ids])
        detections = []
        for pk, detail in zip(occurrence_ids, details, strict=True):
            with reading(self.client.address(f"occurrences/{pk}/", params)):
                detections.extend(parse_detection(item, occurrence_id=pk) for item in detail.get("detections") or [])
        return detections

    def capture_detections(self, capture_ids: list[int], known: set[int]) -> list[AntennaDetection]:
        """Detections of these captures not in ``known``: capture details list them, detection details
        nest their classifications (the capture detail only links to them)."""
        captures = self.client.get_many([(f"captures/{pk}/", self._scope) for pk in capture_ids])
        missing = [
            item["id"]
            for capture in captures
            for item in capture.get("detections") or []
            if isinstance(item, dict) and item.get("id") not in known
        ]
        return self.client.submit_many(
            [(f"detections/{pk}/", self._scope) for pk in missing], parse_detection
        ).results()

    def classifications(self, ids: list[int]) -> Batch[AntennaClassification]:
        """Start fetching these classifications' details (parsed as they arrive)."""
        requests = [(f"classifications/{pk}/", self._scope) for pk in ids]
        return self.client.submit_many(requests, parse=lambda detail: parse_classification(detail, self.zone))

    def category_map(self, category_map_id: int) -> AntennaCategoryMap:
        path = f"ml/labels/{category_map_id}/"
        data = self.client.get(path)
        with reading(self.client.address(path)):
            return parse_category_map(data)

    def taxa(self) -> dict[int, AntennaTaxon]:
        """Every taxon of the project, observed or not (read once per import)."""
        if self._taxa is None:
            params = {**self._scope, "include_unobserved": "true"}
            self._taxa = {}
            for address, page in self.client.located_pages("taxa/", params):
                with reading(address):
                    for item in _results(page, "taxa"):
                        taxon = parse_taxon(item)
                        self._taxa[taxon.id] = taxon
        return self._taxa

    def taxon_details(self, ids: Iterable[int]) -> list[AntennaTaxon]:
        """Taxon details carry what the list lacks: the GBIF key."""
        return self.client.submit_many([(f"taxa/{pk}/", self._scope) for pk in sorted(ids)], parse_taxon).results()


def _row_id(item: dict, what: str) -> int:
    pk = item.get("id") if isinstance(item, dict) else None
    if not isinstance(pk, int) or isinstance(pk, bool):
        raise ConnectorError("id", pk, f"expected an integer in the {what.removesuffix('s')} object")
    return pk


def _results(page: dict, what: str) -> list[dict]:
    results = page.get("results")
    if not isinstance(results, list) or not all(isinstance(item, dict) for item in results):
        raise ConnectorError("results", str(results)[:60], f"expected a page of {what} (limit/offset pagination)")
    return results
