"""Spreadsheet cells that could be formulas, escaped in the CSV files raters open.

A spreadsheet evaluates a CSV cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some
with a leading tab or carriage return) as a formula: a model's answer such as
``=HYPERLINK("http://…?"&B2, "see")`` would run on the rater's machine and could send the
sheet's other cells away. Such a cell gets a leading apostrophe, the prefix spreadsheet
tools themselves use to mark text (OWASP's advice for CSV injection).

Reading ratings back reverses it, so a sheet round-trips losslessly. To keep the escape
reversible, a text that already starts with apostrophes before such a character gets one
more, and reading removes exactly one. (Libraries such as defusedcsv escape, but have no
inverse.)
"""

from __future__ import annotations

import re

_FORMULA = re.compile(r"'*[=+\-@\t\r]")  # what could be read as a formula, or its escape
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")


def escape_cell(text: str) -> str:
    return "'" + text if _FORMULA.match(text) else text


def unescape_cell(text: str) -> str:
    return text[1:] if _ESCAPED.match(text) else text
