"""An occurrence's current identification: its latest one not withdrawn, found in one query."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taxopost.observations.models import CurrentIdentification, Identification, Occurrence
from taxopost.taxa.models import Taxon

pytestmark = pytest.mark.django_db


def _identify(
    occurrence: Occurrence, taxon: str, day: int, *, withdrawn: bool = False, who: str = ""
) -> Identification:
    return Identification.objects.create(
        occurrence=occurrence,
        taxon=Taxon.objects.get(name=taxon),
        created_at=datetime(2024, 8, day, tzinfo=UTC),
        withdrawn=withdrawn,
        who=who,
    )


def test_the_latest_identification_not_withdrawn_is_current(platform):
    vanessa, noctua, confident = (Occurrence.objects.get(key=k) for k in ("occ-vanessa", "occ-noctua", "occ-confident"))
    _identify(vanessa, "Vanessa", 1)
    latest = _identify(vanessa, "Vanessa cardui", 3)
    _identify(vanessa, "Vanessa itea", 2)
    kept = _identify(noctua, "Noctua", 1)
    _identify(noctua, "Noctua pronuba", 2, withdrawn=True)  # a withdrawn one never counts
    _identify(confident, "Danaus", 1, withdrawn=True)
    current = Identification.objects.all().current_by_occurrence()
    assert current == {
        vanessa.pk: CurrentIdentification(latest.pk, latest.taxon_id),
        noctua.pk: CurrentIdentification(kept.pk, kept.taxon_id),
    }


def test_of_two_identifications_at_the_same_time_the_one_stored_last_is_current(platform):
    vanessa = Occurrence.objects.get(key="occ-vanessa")
    _identify(vanessa, "Vanessa cardui", 1, who="A")
    second = _identify(vanessa, "Vanessa itea", 1, who="B")
    assert Identification.objects.all().current_by_occurrence()[vanessa.pk].id == second.pk


def test_current_identifications_cost_one_query_for_any_number_of_occurrences(platform):
    occurrences = list(Occurrence.objects.order_by("id"))
    for day, occurrence in enumerate(occurrences, start=1):
        _identify(occurrence, "Vanessa", day)
        _identify(occurrence, "Danaus", day, who="second")
    with CaptureQueriesContext(connection) as queries:
        current = Identification.objects.filter(occurrence__in=occurrences).current_by_occurrence()
    assert len(queries) == 1 and len(current) == len(occurrences)
