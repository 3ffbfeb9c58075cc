"""The per-process PDF renderer across a fork (Celery prefork, multiprocessing, a CLI forking workers).

A worker builds its own renderer; dropping the one it inherited must not delete the parent's copy of the
``@font-face`` files, or the parent embeds empty fonts (blank text) for the faces it had not used yet.
"""

from __future__ import annotations

import gc
import hashlib
import os
from io import BytesIO

import pytest
from pypdf import PdfReader
from weasyprint import HTML

from app.billing.documents import pdf
from app.billing.documents.fetcher import static_base_url
from app.billing.invoicing.snapshot import SAMPLE_SNAPSHOT


def embedded_fonts(document: bytes) -> dict[str, bytes]:
    """Font program of each font in the PDF, by name without the subset tag."""
    fonts = {}
    for page in PdfReader(BytesIO(document)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            fonts[str(font["/BaseFont"]).split("+", 1)[1]] = descriptor["/FontFile2"].get_object().get_data()
    return fonts


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_leaves_the_parents_fonts_alone() -> None:
    pdf._renderer = None
    try:
        # The parent uses one face only before forking, as a process that rendered a short text would.
        parent = pdf._get_renderer()
        HTML(string="<p>x</p>", base_url=static_base_url(), url_fetcher=parent.fetcher).write_pdf(
            stylesheets=[parent.stylesheet], font_config=parent.font_config
        )
        del parent
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child, which reports through its exit status
            try:
                pdf.render_invoice_pdf(SAMPLE_SNAPSHOT)  # builds the child's renderer, drops the inherited one
                gc.collect()
            finally:
                os._exit(0)
        os.waitpid(child, 0)

        fonts = embedded_fonts(pdf.render_invoice_pdf(SAMPLE_SNAPSHOT))
        pdf._renderer = None
        expected = embedded_fonts(pdf.render_invoice_pdf(SAMPLE_SNAPSHOT))
        assert len(fonts) == 4
        assert {name: hashlib.sha256(data).hexdigest() for name, data in fonts.items()} == {
            name: hashlib.sha256(data).hexdigest() for name, data in expected.items()
        }
        assert all(len(data) > 1000 for data in fonts.values())  # not empty font programs
    finally:
        pdf._renderer = None
