"""The offline rating form: one static HTML file, no server, nothing loaded from anywhere.

The rows are embedded as JSON and shown with ``textContent`` only, so a model's answer is
never read as markup; a Content-Security-Policy forbids every fetch, so the page works on a
machine without a network and cannot send a rating anywhere. Ratings stay in the browser
(``localStorage``, keyed by the sheet id, so closing the tab loses nothing) until the rater
downloads them as a CSV that ``humaneval import`` reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).with_name("templates") / "form.html.j2"


def _script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no ``</script>`` or ``<!--`` can end
    or bend it, whatever the answers say."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_form(
    sheet: str, rows: list[Any], *, title: str | None = None, entries: tuple[str, str] | None
) -> str:
    """The form of a sheet's rows; ``entries`` names the responses (an unblinded sheet)."""
    from jinja2 import Environment
    from markupsafe import Markup

    data = {
        "sheet": sheet,
        "entries": list(entries) if entries else None,
        "rows": [
            {
                "row": r.row,
                "benchmark": r.benchmark,
                "category": r.category,
                "prompt": r.prompt,
                "a": r.answers[0].answer,
                "b": r.answers[1].answer,
            }
            for r in rows
        ],
    }
    env = Environment(autoescape=True, keep_trailing_newline=True)
    template = env.from_string(TEMPLATE.read_text("utf-8"))
    return template.render(
        sheet=sheet,
        title=title or "Which response is better?",
        n=len(rows),
        data=Markup(_script_json(data)),  # already made safe for a script element
    )
