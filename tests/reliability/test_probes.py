"""The probe catalogue (tests/reliability/probes.py) against served taxopost, and its figures in the docs.

The table in docs/reliability.md between the ``probes`` markers is what this run measures:
when a change moves a figure, this test fails and prints the new table (``TAXOPOST_UPDATE_DOCS=1``
writes it into the doc).
"""

from __future__ import annotations

import os
import re

from .probes import REPO, run_catalogue, table

DOC = REPO / "docs" / "reliability.md"
BLOCK = re.compile(r"(<!-- probes:begin -->\n)(.*?)(\n<!-- probes:end -->)", re.S)


def test_the_probe_table_in_the_docs_is_what_the_probes_measure(tmp_path):
    results = run_catalogue(tmp_path)
    measured = table(results)
    text = DOC.read_text()
    found = BLOCK.search(text)
    assert found, f"{DOC} has no <!-- probes:begin --> ... <!-- probes:end --> block"
    if os.environ.get("TAXOPOST_UPDATE_DOCS") == "1":
        DOC.write_text(BLOCK.sub(lambda m: m.group(1) + measured + m.group(3), text))
        found = BLOCK.search(DOC.read_text())
    details = "\n".join(f"{'ok  ' if r.passed else 'FAIL'} {r.probe.category}: {r.probe.name}: {r.detail} "
                        f"{' '.join(r.notes)}" for r in results)  # fmt: skip
    assert found.group(2) == measured, f"the docs' probe table is out of date; measured now:\n{measured}\n\n{details}"
