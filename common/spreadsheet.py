"""CSV cells that spreadsheet programs will not run as formulas (CSV injection).

Every CSV ticketwar writes for people to open (the attendee list, the monitoring exports) passes
its text cells through ``csv_safe``: one rule, one place.
"""

from __future__ import annotations

# Cells starting with these are run as formulas by spreadsheet programs (OWASP "CSV Injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    """``text`` with a leading apostrophe if a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text
