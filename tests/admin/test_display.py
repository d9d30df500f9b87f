"""How pages and logs print configs and metrics: words and tables, never a repr or a JSON dump."""

from __future__ import annotations

import pytest

from taxopost.ml.admin import key_values
from taxopost.postprocessing.running.job_display import metrics_html
from taxopost.tasks.describe import config_text

# jsonb (PostgreSQL) hands keys back sorted by length: genus, family, species.
CONFIG = {"mode": "lineage", "order": ["species", "genus"], "thresholds": {"genus": 0.6, "family": 0.4, "species": 0.8}}


def test_config_text_is_words_with_ranks_fine_to_coarse():
    text = config_text(CONFIG)
    assert text == "mode: lineage; order: species, genus; thresholds: species=0.8, genus=0.6, family=0.4"
    assert config_text({}) == "the default config"
    assert config_text({"taxa_list": "regional", "winner_changes_only": True}) == (
        "taxa_list: regional; winner_changes_only: yes"
    )


def test_key_values_is_a_table_with_scores_to_three_decimals():
    html = key_values(CONFIG)
    assert html.startswith('<table class="key-values">')
    assert "<th>thresholds</th><td>species 0.800 · genus 0.600 · family 0.400</td>" in html
    assert "<th>order</th><td>species, genus</td>" in html and "{" not in html
    assert key_values({}) == "–" and key_values(None) == "–"
    assert "&lt;b&gt;" in key_values({"name": "<b>"})  # escaped


@pytest.mark.django_db
def test_metrics_are_tables_of_totals_transitions_and_top_taxa():
    metrics = {"examined": 10159, "changed": 3318, "transitions": {"species -> genus": 3000, "species -> family": 318},
               "to_taxa": {"Vanessa": 12}, "skipped": {"already confident": 7}, "replaced": {"5:3": 3318},
               "replaced_later": {}, "determinations_changed": 1057, "restored": 0, "superseded": 0}  # fmt: skip
    html = metrics_html(metrics, dry_run=True)
    assert "<th>examined</th><td>10,159</td>" in html and "<th>earlier outputs replaced</th><td>3,318</td>" in html
    assert "determinations changed (estimate)" in html
    assert "<td>species → genus</td><td>3,000</td>" in html and "<td>Vanessa</td><td>12</td>" in html
    assert "<td>already confident</td><td>7</td>" in html and "{" not in html
    assert metrics_html({}) == "–"
