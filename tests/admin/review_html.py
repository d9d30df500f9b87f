"""What the review page shows, read from its HTML (a cached page renders no template to inspect)."""

from __future__ import annotations

import re


def changed_count(response) -> int:
    """The number of classifications the shown job changed, from the rows' heading."""
    return int(re.search(r'id="changed-count">(\d+)<', response.content.decode()).group(1))


def selected_job(response) -> int | None:
    """The job the picker shows as chosen, or None when the page says no job has run."""
    found = re.search(r'<option value="(\d+)" selected>', response.content.decode())
    return int(found.group(1)) if found and 'id="changed-count"' in response.content.decode() else None
