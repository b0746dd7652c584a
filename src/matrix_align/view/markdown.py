"""``report.md`` as HTML, safely.

markdown-it-py (already installed with rich) renders the report's tables and headings with
raw HTML switched off, so any markup inside model text shows as text. Images are the one
way Markdown makes a browser fetch something: only the plots shipped inside the site are
kept, anything else (a remote URL, a file outside the report's folder) becomes its alt text.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup


def _normalise(src: str) -> str:
    return src.split("#", 1)[0].split("?", 1)[0].removeprefix("./")


def render_markdown(
    text: str, images: Mapping[str, str], links: Mapping[str, str] | None = None
) -> tuple[Markup, set[str]]:
    """Render ``text``; ``images`` maps a path as the report names it to its copy in the site,
    ``links`` maps a relative link target to where it points in the site.

    Returns the HTML and the image paths the report showed, so the page does not show those
    plots a second time.
    """
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    used: set[str] = set()

    def image(self: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        src = _normalise(str(token.attrGet("src") or ""))
        if src in images:
            used.add(src)
            token.attrSet("src", images[src])
            token.attrSet("loading", "lazy")
            return self.image(tokens, idx, options, env)  # markdown-it's own image rule
        alt = "".join(child.content for child in token.children or [])
        return f'<span class="missing-image">[image not in the site: {escape(alt or src)}]</span>'

    def link_open(self: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
        href = _normalise(str(tokens[idx].attrGet("href") or ""))
        if links and href in links:
            tokens[idx].attrSet("href", links[href])
        tokens[idx].attrSet("rel", "noopener noreferrer")
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return Markup(md.render(text)), used
