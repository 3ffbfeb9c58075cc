"""Reading support's pages in tests as an agent reads them."""

from __future__ import annotations

import re
from html import unescape


def page_text(html: str) -> str:
    """The page's text: tags dropped (``<wbr>`` joined), entities decoded, runs of white space (non-breaking and
    narrow ones included, as Babel writes them) one space."""
    text = unescape(re.sub(r"<[^>]+>", " ", html.replace("<wbr>", "")))
    return re.sub(r"\s+", " ", text.replace("\xa0", " ").replace("\u202f", " "))
