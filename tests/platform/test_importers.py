"""Importers: each format, idempotence, and malformed files leaving the database unchanged."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxopost.cli import main
from taxopost.errors import InputError
from taxopost.observations.identifications import import_identifications
from taxopost.observations.models import (
    CaptureSet,
    Classification,
    Detection,
    Identification,
    Occurrence,
    SourceImage,
)
from taxopost.observations.predictions import import_predictions
from taxopost.observations.vectors import stack
from taxopost.taxa.models import Taxon

from .conftest import LABELS, ROWS, write_predictions
from .helpers import determination

pytestmark = pytest.mark.django_db

TABLES = (SourceImage, CaptureSet, Detection, Occurrence, Classification, Identification)


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in TABLES)


def test_predictions_from_jsonl_create_images_detections_occurrences_and_classifications(platform):
    assert counts()[:5] == (3, 1, 6, 6, 6)
    clf = Classification.objects.get(detection__occurrence__key="occ-vanessa")
    assert (clf.taxon.name, clf.terminal, clf.applied_to) == ("Vanessa atalanta", True, None)
    assert clf.score == pytest.approx(0.5)
    vector = stack([clf.scores], clf.category_map.n_classes)[0]
    assert vector.shape == (len(LABELS),) and vector.sum() == pytest.approx(1.0, abs=1e-6)
    assert determination("occ-vanessa") == "Vanessa atalanta"


def test_reimporting_the_same_file_adds_nothing(platform, tmp_path):
    before = counts()
    summary = import_predictions(write_predictions(tmp_path / "again.jsonl"))
    assert counts() == before
    assert summary.records == len(ROWS) and not any(summary.created.values())


def test_top_k_pairs_are_stored_densified_as_a_partial_row(platform, tmp_path):
    record = _record(scores=None, image={"path": "top.jpg", "width": 100, "height": 100}, top_k=[[1, 0.5], [0, 0.3]])
    (tmp_path / "top.jsonl").write_text(json.dumps(record) + "\n")
    import_predictions(tmp_path / "top.jsonl")
    clf = Classification.objects.get(detection__source_image__path="top.jpg")
    assert (clf.taxon.name, clf.score) == ("Vanessa cardui", pytest.approx(0.5))
    np.testing.assert_allclose(stack([clf.scores], clf.category_map.n_classes)[0], [0.3, 0.5, 0, 0, 0, 0, 0, 0])


def test_a_detector_only_record_stores_its_detection_and_no_classification(platform, tmp_path):
    record = _record(scores=None, algorithm=None, image={"path": "empty.jpg", "width": 100, "height": 100})
    (tmp_path / "d.jsonl").write_text(json.dumps(record) + "\n")
    import_predictions(tmp_path / "d.jsonl")
    detection = Detection.objects.get(source_image__path="empty.jpg")
    assert detection.bbox == [0, 0, 10, 10] and not Classification.objects.filter(detection=detection).exists()


def test_predictions_from_parquet_with_logits(platform, tmp_path):
    logits = np.log(np.asarray([row[3] for row in ROWS], dtype=np.float32))
    table = pa.table(
        {
            "capture_set": ["station-2"] * len(ROWS),
            "image_path": [f"p-{i}.jpg" for i in range(len(ROWS))],
            "image_width": [1000] * len(ROWS),
            "image_height": [1000] * len(ROWS),
            "bbox": [[0.0, 0.0, 100.0, 100.0]] * len(ROWS),
            "occurrence": [f"p-occ-{i}" for i in range(len(ROWS))],
            "algorithm": ["moths-v1"] * len(ROWS),
            "logits": pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), len(LABELS)),
        }
    )
    pq.write_table(table, tmp_path / "p.parquet")
    summary = import_predictions(tmp_path / "p.parquet")
    assert summary.created["classifications"] == len(ROWS)
    clf = Classification.objects.get(detection__occurrence__key="p-occ-1")
    assert clf.scores is None and clf.logits is not None
    assert clf.taxon.name == "Vanessa atalanta" and clf.score == pytest.approx(0.5, abs=1e-6)


def test_occurrences_are_numbered_in_the_order_the_file_names_them(platform, tmp_path):
    """Ids follow the input, not string hashes: a calibration split by occurrence, which orders the
    occurrences by id, then draws the same rows from the same file in every process."""
    keys = [f"order-{n:02d}" for n in (7, 3, 19, 0, 12, 5, 16, 1, 9, 14, 2, 18, 11, 4, 8, 15, 6, 13, 10, 17)]
    rows = [(key, f"order-{i}.jpg", [0, 0, 100, 100], ROWS[0][3]) for i, key in enumerate(keys)]
    import_predictions(write_predictions(tmp_path / "ordered.jsonl", rows, capture_set="station-order"))
    numbered = Occurrence.objects.filter(key__startswith="order-").order_by("id").values_list("key", flat=True)
    assert list(numbered) == keys


def _record(**changes) -> dict:
    record = {
        "capture_set": "station-1",
        "image": {"path": "new.jpg", "width": 100, "height": 100},
        "bbox": [0, 0, 10, 10],
        "algorithm": "moths-v1",
        "scores": ROWS[0][3],
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps(_record(algorithm="unknown-model")), "algorithm='unknown-model': unknown"),
        (json.dumps(_record(scores=[0.5, 0.5])), "scores='2 values': the category map of 'moths-v1' has 8 classes"),
        (json.dumps(_record(scores=[float("nan"), *ROWS[0][3][1:]])), "values must be finite"),
        (json.dumps(_record(scores=[0.9] * 8)), "must sum to at most 1"),
        (json.dumps(_record(bbox=[0, 0, 500, 10])), "lies outside its image"),
        (json.dumps(_record(bbox=[5, 5, 1, 1])), "x1 <= x2"),
        (json.dumps(_record(image={"path": "x.jpg", "width": 0, "height": 10})), "image.width=0"),
        (json.dumps(_record(color="red")), "unknown fields"),
        (json.dumps(_record(scores=None)), "an algorithm's record needs its scores, logits or top_k"),
        (json.dumps(_record(scores=None, top_k=[[0, 0.5], [8, 0.2]])), r"top_k\[1\]=8: class index outside"),
        (json.dumps(_record(scores=None, top_k=[[0, 0.5], [0, 0.2]])), r"top_k\[1\]=\[0, 0.2\]: a class appears twice"),
        (json.dumps(_record(scores=None, top_k=[[0, 0.9], [1, 0.5]])), "must sum to at most 1"),
        (json.dumps(_record(scores=None, top_k=[["Vanessa", 0.9]])), r"top_k\[0\]=.*\[class index >= 0, score\]"),
        (json.dumps(_record(top_k=[[0, 0.5]])), "give one of scores, logits or top_k"),
        (json.dumps(_record(bbox=["1", "2", "3", "4"])), "bbox=.*four numbers"),
        (json.dumps(_record(bbox=[1, None, 3, 4])), "bbox=.*four numbers"),
        (json.dumps(_record(bbox=[1, 2, 3])), "bbox=.*four numbers"),
        (
            json.dumps(_record(image={"path": "x.jpg", "timestamp": "2024-13-01T10:00:00Z"})),
            "image.timestamp='2024-13-01T10:00:00Z': not a valid date and time",
        ),
        (
            '{"capture_set": "s", "image": {"path": "y.jpg"}, "algorithm": "moths-v1", "logits": ['
            + ", ".join(["1" * 400] * 8)
            + "]}",
            "logits=.*within a float's range",
        ),
    ],
)
def test_malformed_predictions_raise_naming_the_line_and_write_nothing(platform, tmp_path, bad_line, message):
    good = [json.dumps(_record(image={"path": f"ok-{i}.jpg", "width": 100, "height": 100})) for i in range(3)]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*good, bad_line]) + "\n")
    before = counts()
    with pytest.raises(InputError, match=message) as error:
        import_predictions(path)
    assert f"{path}:4" in str(error.value)
    assert counts() == before


def test_truncated_parquet_is_an_input_error(platform, tmp_path):
    table = pa.table({"capture_set": ["s"], "image_path": ["a.jpg"], "algorithm": ["moths-v1"], "scores": [ROWS[0][3]]})
    pq.write_table(table, tmp_path / "p.parquet")
    data = (tmp_path / "p.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    before = counts()
    with pytest.raises(InputError, match="not a readable Parquet file"):
        import_predictions(tmp_path / "cut.parquet")
    assert counts() == before


def test_identifications_outrank_predictions_and_are_idempotent(platform, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text(
        "occurrence,taxon,who,created_at\n"
        "occ-vanessa,Vanessa cardui,expert,2024-08-01T10:00:00Z\n"
        "occ-noctua,Noctua,expert,2024-08-01T10:00:00Z\n"
    )
    summary = import_identifications(path)
    assert summary.created["identifications"] == 2
    assert determination("occ-vanessa") == "Vanessa cardui"
    assert determination("occ-noctua") == "Noctua"
    again = import_identifications(path)
    assert again.created["identifications"] == 0


def test_identifications_from_a_spreadsheet_with_a_bom_and_blank_lines(platform, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_bytes(b"\xef\xbb\xbfoccurrence,taxon\r\nocc-vanessa,Vanessa cardui\r\n\r\nocc-zzz,Vanessa\r\n")
    with pytest.raises(InputError, match=rf"{path}:4: occurrence='occ-zzz'"):  # the blank line counts
        import_identifications(path)
    path.write_bytes(b"\xef\xbb\xbfoccurrence,taxon\r\nocc-vanessa,Vanessa cardui\r\n")
    assert import_identifications(path).created["identifications"] == 1
    assert determination("occ-vanessa") == "Vanessa cardui"


def test_an_identification_given_twice_in_a_file_is_stored_once_or_refused_if_they_disagree(platform, tmp_path):
    """PostgreSQL refused the whole file (an upsert may not touch a row twice); SQLite kept the last."""
    row = "occ-vanessa,Vanessa cardui,Ann,2024-08-01T10:00:00Z"
    path = tmp_path / "ids.csv"
    header = "occurrence,taxon,who,created_at,withdrawn\n"
    path.write_text(f"{header}{row},no\n {row},no\n")  # the key with a space before it: the same occurrence
    assert import_identifications(path).created["identifications"] == 1
    before = counts()
    path.write_text(f"{header}{row},no\n{row},yes\n")
    with pytest.raises(InputError, match=r"ids.csv:3: row='Vanessa cardui': the identification of line 2 "):
        import_identifications(path)
    assert counts() == before


def test_importing_an_identification_again_as_withdrawn_withdraws_it(platform, tmp_path):
    path = tmp_path / "ids.csv"
    model_answer = determination("occ-vanessa")
    header = "occurrence,taxon,who,created_at,withdrawn\n"
    path.write_text(header + "occ-vanessa,Vanessa cardui,B,2024-08-02T10:00:00Z,\n")
    import_identifications(path)
    assert determination("occ-vanessa") == "Vanessa cardui"
    path.write_text(header + "occ-vanessa,Vanessa cardui,B,2024-08-02T10:00:00Z,true\n")
    assert import_identifications(path).created["identifications"] == 0
    assert Identification.objects.get().withdrawn
    assert determination("occ-vanessa") == model_answer


def test_identification_by_image_and_detection(platform, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("image,detection,taxon,who\nimg-3.jpg,whole,Danaus plexippus,expert\n")
    import_identifications(path)
    assert determination("occ-nobox") == "Danaus plexippus"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("occurrence,taxon\nocc-vanessa,Vanessa cardui\nocc-noctua,Nonexistent\n", "taxon='Nonexistent'"),
        (
            "occurrence,taxon\nocc-vanessa,Vanessa cardui\nnope,Vanessa\n",
            "occurrence='nope': no occurrence of project 'default' has this key",
        ),
        ("image,detection,taxon\nimg-3.jpg,d9,Vanessa\n", "detection='img-3.jpg#d9': no detection of project"),
        ("who,when\nx,y\n", "needs taxon and either occurrence or image"),
        ("occurrence,taxon,withdrawn\nocc-vanessa,Vanessa,yes please\n", "withdrawn='yes please': must be true"),
        ("occurrence,taxon,created_at\nocc-vanessa,Vanessa,2024-02-30T10:00:00Z\n", "created_at=.*not a valid date"),
        # a comma in an unquoted comment: the rest was dropped; a cell short: read as empty
        (
            "occurrence,taxon,comment\nocc-vanessa,Vanessa,Nice, moth\n",
            r"ids.csv:2: row=\['occ-vanessa', 'Vanessa', 'Nice', ' moth'\]: has 4 cells but the header has 3",
        ),
        ("occurrence,taxon,who,comment\nocc-vanessa,Vanessa,Ann\n", r"ids.csv:2: row=.*: has 3 cells but the header"),
    ],
)
def test_bad_identifications_write_nothing(platform, tmp_path, content, message):
    path = tmp_path / "ids.csv"
    path.write_text(content)
    before = counts()
    with pytest.raises(InputError, match=message):
        import_identifications(path)
    assert counts() == before


def test_taxonomy_import_is_idempotent_and_merges_ids(platform):
    from taxopost.core.taxonomy import Taxonomy, TaxonRecord
    from taxopost.taxa.operations import import_taxonomy

    from .conftest import taxonomy

    again = import_taxonomy(taxonomy())
    assert again.created == 0 and again.updated == 0
    extra = Taxonomy(
        [TaxonRecord("Lepidoptera", "order"), TaxonRecord("Zale", "genus", "Lepidoptera", external_ids=("42",))]
    )
    result = import_taxonomy(extra)
    assert result.created == 1
    zale = Taxon.objects.get(name="Zale")
    assert zale.external_ids == ["42"] and zale.parent.name == "Lepidoptera"
    assert [t.name for t in zale.ancestors()] == ["Lepidoptera"]
    assert Taxon.objects.get(name="Vanessa").descendants().count() == 3


def test_ids_a_re_import_adds_reach_the_taxonomy_every_process_loads(platform):
    """A re-import that only adds ids or synonyms left updated_at as it was, and load_taxonomy's
    cache (a server's, a worker's) kept the old index: the new id resolved to no taxon."""
    from taxopost.core.taxonomy import NO_TAXON, Taxonomy, TaxonRecord
    from taxopost.taxa.operations import import_taxonomy, load_taxonomy

    assert load_taxonomy().core.find("777") == NO_TAXON
    vanessa = Taxon.objects.get(name="Vanessa")
    lineage = [TaxonRecord(t.name, t.rank, t.parent.name if t.parent else None)
               for t in [*reversed(list(vanessa.ancestors())), vanessa]]  # fmt: skip
    lineage[-1] = TaxonRecord("Vanessa", "genus", lineage[-1].parent, external_ids=("777",), synonyms=("Pyrameis",))
    assert import_taxonomy(Taxonomy(lineage)).updated == 1
    found = load_taxonomy().core
    assert found.names[found.find("777")] == "Vanessa" and found.names[found.find("Pyrameis")] == "Vanessa"


def test_taxonomy_import_refuses_a_conflicting_lineage(platform):
    from taxopost.core.taxonomy import Taxonomy, TaxonRecord
    from taxopost.taxa.operations import import_taxonomy

    moved = Taxonomy(
        [
            TaxonRecord("Lepidoptera", "order"),
            TaxonRecord("Erebidae", "family", "Lepidoptera"),
            TaxonRecord("Vanessa", "genus", "Erebidae", source="moved.csv:4"),
        ]
    )
    before = Taxon.objects.count()
    with pytest.raises(InputError, match="moved.csv:4: taxon='Vanessa': already in the database as a genus under"):
        import_taxonomy(moved)
    assert Taxon.objects.count() == before


def test_taxonomy_import_refuses_an_external_id_another_taxon_holds(platform):
    """GBIF keys resolve labels: one key on two taxa would make a category map ambiguous."""
    from taxopost.core.taxonomy import Taxonomy, TaxonRecord
    from taxopost.taxa.operations import import_taxonomy

    first = Taxonomy([TaxonRecord("Lepidoptera", "order"), TaxonRecord("Zale", "genus", "Lepidoptera", ("42",))])
    import_taxonomy(first)
    renamed = Taxonomy(
        [
            TaxonRecord("Lepidoptera", "order"),
            TaxonRecord("Zale Hübner, 1818", "genus", "Lepidoptera", ("42",), source="renamed.csv:3"),
        ]
    )
    before = sorted(Taxon.objects.values_list("name", "external_ids"))
    with pytest.raises(InputError, match="renamed.csv:3: external id='42': already held by 'Zale' in the database"):
        import_taxonomy(renamed)
    assert sorted(Taxon.objects.values_list("name", "external_ids")) == before
    assert import_taxonomy(first).created == 0  # the holder itself may give it again


def test_cli_imports_run_and_export(db, tmp_path, capsys):
    (tmp_path / "taxonomy.csv").write_text(
        "order,family,subfamily,genus,species\n"
        + "\n".join(
            f"Lepidoptera,{fam},{sub},{gen},{sp}"
            for fam, sub, gen, sp in [
                ("Nymphalidae", "Nymphalinae", "Vanessa", "Vanessa atalanta"),
                ("Nymphalidae", "Nymphalinae", "Vanessa", "Vanessa cardui"),
                ("Nymphalidae", "Nymphalinae", "Vanessa", "Vanessa itea"),
                ("Nymphalidae", "", "Danaus", "Danaus plexippus"),
                ("Erebidae", "", "Catocala", "Catocala ilia"),
                ("Erebidae", "", "Catocala", "Catocala relicta"),
                ("Noctuidae", "", "Noctua", "Noctua pronuba"),
            ]
        )
        + "\n"
    )
    (tmp_path / "labels.json").write_text(json.dumps([*LABELS[:6], "Catocala", LABELS[7]]))
    write_predictions(tmp_path / "predictions.jsonl")
    (tmp_path / "regional.txt").write_text("Vanessa\nDanaus\n")
    assert main(["import", "taxonomy", str(tmp_path / "taxonomy.csv")]) == 0
    assert main(["import", "category-map", str(tmp_path / "labels.json"), "--algorithm", "moths-v1"]) == 0
    assert main(["import", "predictions", str(tmp_path / "predictions.jsonl")]) == 0
    assert main(["import", "taxa-list", str(tmp_path / "regional.txt"), "--name", "regional"]) == 0
    assert main(["run", "rank_rollup", "--capture-set", "station-1", "--dry-run"]) == 0
    assert Classification.objects.count() == len(ROWS)
    assert (
        main(
            [
                "run",
                "rank_rollup",
                "--capture-set",
                "station-1",
                "--threshold",
                "species=0.9",
                "--threshold",
                "genus=0.6",
            ]
        )
        == 0
    )
    assert determination("occ-vanessa") == "Vanessa"
    assert main(["run", "rank_rollup", "--capture-set", "nowhere"]) == 2
    assert "no capture set has this name" in capsys.readouterr().err
    assert main(["export", "occurrences", "--capture-set", "station-1", "--output", str(tmp_path / "o.csv")]) == 0
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[0].replace('"', "") == (
        "occurrence,capture_set,determination,rank,taxon_external_ids,gbif_key,score,decided_by,provenance,"
        "determined_at,first_seen,last_seen"
    )
    vanessa = next(line for line in lines if "occ-vanessa" in line)
    assert "Vanessa" in vanessa and "rank_rollup-" in vanessa and "moths-v1" in vanessa
    assert main(["jobs", "list"]) == 0
    from taxopost.jobs.models import Job

    rollup_job = Job.objects.filter(dry_run=False).latest("pk")
    assert main(["jobs", "revert", str(rollup_job.pk)]) == 0
    assert determination("occ-vanessa") == "Vanessa atalanta"


def test_importing_a_capture_set_of_another_project_is_refused(platform, tmp_path):
    record = {
        "project": "elsewhere",
        "capture_set": "station-1",
        "image": {"path": "x.jpg", "width": 10, "height": 10},
        "algorithm": "moths-v1",
        "scores": [0.125] * 8,
    }
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match="capture_set='station-1': belongs to project 'default', not 'elsewhere'"):
        import_predictions(path)
    assert not SourceImage.objects.filter(path="x.jpg").exists()


def test_an_algorithm_or_taxa_list_without_a_name_is_refused(platform):
    from taxopost.ml.operations import get_or_create_algorithm
    from taxopost.taxa.operations import import_taxa_list

    with pytest.raises(InputError, match="algorithm='  ': an algorithm needs a non-empty key"):
        get_or_create_algorithm("  ")
    with pytest.raises(InputError, match="taxa_list='': a taxa list needs a non-empty name"):
        import_taxa_list("", [Taxon.objects.first().pk])


INAT_TAXONOMY = """parent_taxon_id,taxon_id,rank_level,leaf_class_id,name
,1,70,,Animalia
1,2,60,,Chordata
2,3,50,,Aves
3,4,40,,Gruiformes
4,5,30,,Aramidae
5,6,20,,Aramus
6,7,10,1,Aramus guarauna
4,8,30,,Cariamidae
8,9,20,,Cariama
9,10,10,2,Cariama cristata
4,11,30,,Psophiidae
11,12,20,,Psophia
12,13,10,3,Psophia crepitans
12,14,10,40,Psophia viridis
"""


def test_a_taxonomy_imported_by_class_id_resolves_its_category_map_of_class_ids(db, tmp_path):
    """Read by class id, each leaf keeps its class id bare and as leaf_class_id:N: one reading, not two."""
    (tmp_path / "inat.csv").write_text(INAT_TAXONOMY)
    assert main(["import", "taxonomy", str(tmp_path / "inat.csv"), "--id-column", "leaf_class_id"]) == 0
    (tmp_path / "leaves.json").write_text(json.dumps(["1", "2", "40"]))
    assert main(["import", "category-map", str(tmp_path / "leaves.json"), "--algorithm", "birds"]) == 0
    from taxopost.ml.models import Algorithm

    stored = Algorithm.objects.get(key="birds").category_map
    names = [Taxon.objects.get(pk=t).name for t in stored.taxa]
    assert names == ["Aramus guarauna", "Cariama cristata", "Psophia viridis"]


def test_a_category_map_of_inaturalist_class_ids_resolves_or_is_refused_when_ambiguous(db, tmp_path, capsys):
    """The stored taxonomy keeps both iNaturalist ids, so the platform decides as the file commands do."""
    (tmp_path / "inat.csv").write_text(INAT_TAXONOMY)
    assert main(["import", "taxonomy", str(tmp_path / "inat.csv")]) == 0
    (tmp_path / "ambiguous.json").write_text(json.dumps(["1", "2", "3"]))
    capsys.readouterr()
    assert main(["import", "category-map", str(tmp_path / "ambiguous.json"), "--algorithm", "birds"]) == 2
    error = capsys.readouterr().err
    assert "taxon_id (Animalia, Chordata, Aves)" in error
    assert "leaf_class_id (Aramus guarauna, Cariama cristata, Psophia crepitans)" in error
    assert "ambiguous.json" in error
    from taxopost.ml.models import Algorithm, CategoryMap

    assert not CategoryMap.objects.exists() and not Algorithm.objects.exists()

    args = ["import", "category-map", str(tmp_path / "ambiguous.json"), "--algorithm", "birds"]
    assert main([*args, "--id-column", "leaf_class_id"]) == 0
    stored = Algorithm.objects.get(key="birds").category_map
    assert [Taxon.objects.get(pk=t).name for t in stored.taxa] == [
        "Aramus guarauna",
        "Cariama cristata",
        "Psophia crepitans",
    ]
    assert stored.labels == ["1", "2", "3"]

    # Class ids that are not also taxon ids resolve as class ids without being told.
    (tmp_path / "leaves.json").write_text(json.dumps(["40", "2"]))
    assert main(["import", "category-map", str(tmp_path / "leaves.json"), "--algorithm", "birds-2"]) == 0
    leaves = Algorithm.objects.get(key="birds-2").category_map
    assert [Taxon.objects.get(pk=t).name for t in leaves.taxa] == ["Psophia viridis", "Cariama cristata"]
    # And taxon ids stay taxon ids.
    (tmp_path / "taxa.json").write_text(json.dumps(["13", "10", "Aramus"]))
    assert main(["import", "category-map", str(tmp_path / "taxa.json"), "--algorithm", "birds-3"]) == 0
    taxa = Algorithm.objects.get(key="birds-3").category_map
    assert [Taxon.objects.get(pk=t).name for t in taxa.taxa] == ["Psophia crepitans", "Cariama cristata", "Aramus"]
