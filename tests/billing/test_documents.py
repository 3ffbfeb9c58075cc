"""Invoice documents from the frozen snapshot: PDF (nl/fr/en, pagination, fetcher), Factur-X, UBL.

No database: the documents are pure functions of the snapshot dict.
"""

from __future__ import annotations

import copy
import re
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO

import facturx
import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from lxml import etree
from pypdf import PdfReader

from app.billing.documents import (
    ResourceRefusedError,
    SnapshotError,
    StaticOnlyFetcher,
    build_cii_xml,
    documents_for,
    render_facturx_pdf,
    render_invoice_pdf,
    render_ubl,
)
from app.billing.documents.fetcher import STATIC_ROOT
from app.billing.documents.i18n import INVOICE_CATALOG_DIR
from app.billing.documents.pdf import TEMPLATE_DIR
from app.billing.invoicing.snapshot import SAMPLE_SNAPSHOT
from app.config import PROJECT_ROOT

UBL_NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


# --- snapshots -------------------------------------------------------------------------------------------


def sample(**overrides: object) -> dict:
    snapshot = copy.deepcopy(SAMPLE_SNAPSHOT)
    snapshot.update(overrides)
    return snapshot


def with_totals(snapshot: dict) -> dict:
    """Recompute VAT per rate (half-up, once per rate) and totals from the lines, as composition does."""
    bases: dict[str, int] = {}
    for line in snapshot["lines"]:
        bases[line["vat_rate"]] = bases.get(line["vat_rate"], 0) + line["amount"]
    snapshot["vat"] = [
        {
            "rate": rate,
            "base": base,
            "vat": int((Decimal(base) * Decimal(rate) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)),
        }
        for rate, base in bases.items()
    ]
    subtotal = sum(line["amount"] for line in snapshot["lines"])
    vat = sum(row["vat"] for row in snapshot["vat"])
    snapshot["totals"] = {"subtotal": subtotal, "vat": vat, "total": subtotal + vat}
    return snapshot


def session_line(
    position: int,
    *,
    day: int = 14,
    kwh: str = "17.3456",
    cpo_cost: int = 612,
    fees: int = 35,
    rate: str = "21",
    kind: str = "session",
) -> dict:
    return {
        "position": position,
        "kind": kind,
        "description": f"Laadplein {position}, Gent",
        "quantity": kwh,
        "unit": "kWh",
        "vat_rate": rate,
        "cpo_cost": cpo_cost,
        "fees": fees,
        "amount": cpo_cost + fees,
        "session": {
            "charge_id": position,
            "cdr_id": f"CDR{position}",
            "start": f"2026-10-{day:02d}T21:30:00+00:00",
            "end": f"2026-10-{day:02d}T22:47:00+00:00",
            "duration_minutes": 77,
            "kwh": kwh,
            "location_name": f"Laadplein {position}",
            "city": "Gent",
            "evse_id": f"BE*BEC*E04150{position:04d}",
            "tariff_source": "frozen_tariff",
        },
    }


def many_lines_snapshot(count: int = 120) -> dict:
    snapshot = sample()
    lines = [copy.deepcopy(SAMPLE_SNAPSHOT["lines"][0])]
    for position in range(2, count + 1):
        lines.append(
            session_line(
                position,
                day=1 + position % 28,
                cpo_cost=400 + position * 7 % 900,
                kwh=f"{10 + position % 40}.{position % 10}05",
            )
        )
    snapshot["lines"] = lines
    return with_totals(snapshot)


def credit_note(*, negative: bool = False) -> dict:
    """A credit note for one session of INV-2026-000001; ``negative`` freezes it with negative amounts."""
    sign = -1 if negative else 1
    line = session_line(1, cpo_cost=650 * sign, fees=40 * sign, kind="credit", kwh="20.0000")
    line["description"] = "Gent Zuid, Gent: session credited by the CPO"
    snapshot = sample(
        kind="credit_note",
        number="CN-2026-000001",
        issue_date="2026-11-20",
        due_date=None,
        credits_invoice={"number": "INV-2026-000001", "issue_date": "2026-11-01"},
        lines=[line],
    )
    snapshot["payment"] = {"method": "sepa_debit", "terms_days": 14, "reference": "CN-2026-000001"}
    return with_totals(snapshot)


def reverse_charge() -> dict:
    """A Dutch business buyer of a Belgian seller: VAT 0, category AE (decided by composition)."""
    snapshot = sample(language="en")
    snapshot["buyer"].update(
        company_name="Laadbaar Transport BV",
        street="Coolsingel 40",
        postal_code="3011 AD",
        city="Rotterdam",
        country="NL",
        vat_number="NL859048490B01",
    )
    for line in snapshot["lines"]:
        line["vat_rate"] = "0"
    snapshot["payment"] = {"method": None, "terms_days": 14, "reference": "INV-2026-000001"}
    return with_totals(snapshot)


# --- helpers ---------------------------------------------------------------------------------------------


def pdf_pages(pdf: bytes) -> list[str]:
    """Text per page, with the no-break spaces Babel puts in amounts made plain and each run of white space
    (a sentence wrapped over two lines in a narrow column) read as one space."""
    reader = PdfReader(BytesIO(pdf))
    return [re.sub(r"[\s\u00a0\u202f]+", " ", page.extract_text() or "") for page in reader.pages]


def amount(element: etree._Element, path: str, ns: dict) -> Decimal:
    found = element.find(path, ns)
    assert found is not None, path
    assert re.fullmatch(r"-?\d+\.\d{2}", found.text), f"{path}: {found.text!r} is not a 2-decimal amount"
    return Decimal(found.text)


# --- PDF -------------------------------------------------------------------------------------------------


LANGUAGE_CASES = {
    "nl": {
        "total": "€ 12,44",
        "vat": "€ 2,16",
        "labels": [
            "Factuur",
            "Btw-nummer",
            "Vervaldatum",
            "Laadsessies",
            "Maatstaf van heffing",
            "Totaal incl. btw",
            "SEPA-domiciliëring",
        ],
        "date": "15 nov 2026",
        "page": "Pagina 1 van 1",
    },
    "fr": {
        "total": "12,44 €",
        "vat": "2,16 €",
        "labels": [
            "Facture",
            "N° de TVA",
            "Date d’échéance",
            "Base imposable",
            "Sessions de recharge",
            "Total TVA comprise",
        ],
        "date": "15 nov. 2026",
        "page": "Page 1 sur 1",
    },
    "en": {
        "total": "€12.44",
        "vat": "€2.16",
        "labels": ["Invoice", "VAT number", "Due date", "Taxable amount", "Charging sessions", "Total incl. VAT"],
        "date": "15 Nov 2026",
        "page": "Page 1 of 1",
    },
}


@pytest.mark.parametrize("language", ["nl", "fr", "en"])
def test_sample_renders_in_the_snapshot_language(language: str) -> None:
    pdf = render_invoice_pdf(sample(language=language))
    assert pdf.startswith(b"%PDF-")
    [text] = pdf_pages(pdf)
    expected = LANGUAGE_CASES[language]
    lowered = text.lower()
    assert "INV-2026-000001" in text
    assert expected["total"] in text
    assert expected["vat"] in text
    assert expected["date"] in text
    assert expected["page"] in text
    for label in expected["labels"]:
        assert label.lower() in lowered, label
    # Legal content of an EU VAT invoice.
    for fact in (
        "Voltaro BV",
        "BE0403170701",
        "BE71 0961 2345 6769",
        "Peeters Logistiek BV",
        "00000042",
        "Kunstlaan 1",
        "Grote Markt 1",
        "BE*BEC*E041503003",
        "Gent Zuid",
    ):
        assert fact in text, fact


def test_pdf_metadata_and_fonts_come_from_static() -> None:
    reader = PdfReader(BytesIO(render_invoice_pdf(sample(language="nl"))))
    assert reader.metadata.title == "Factuur INV-2026-000001"
    assert reader.metadata.author == "Voltaro BV"
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    # Only the @font-face families of invoice.css (loaded from static/fonts/), never a system font.
    assert fonts and all(name.split("+", 1)[1].startswith(("Invoice-Sans", "Invoice-Condensed")) for name in fonts)


def test_times_are_shown_in_brussels_time() -> None:
    # 21:30 UTC on 14 October is 23:30 in Brussels (CEST).
    snapshot = with_totals(sample(lines=[session_line(1)]))
    [text] = pdf_pages(render_invoice_pdf(snapshot))
    assert "23:30–00:47" in text


def test_many_lines_paginate_with_the_header_on_every_page() -> None:
    snapshot = many_lines_snapshot(120)
    pages = pdf_pages(render_invoice_pdf(snapshot))
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert f"Pagina {number} van {len(pages)}" in text
        assert "LAADPUNT" in text and "TOTAAL EXCL. BTW" in text, f"no table header on page {number}"
    every_evse = "".join(pages)
    assert all(f"BE*BEC*E04150{position:04d}" in every_evse for position in range(2, 121))
    total = f"€ {Decimal(snapshot['totals']['total']) / 100:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    assert total in pages[-1]


def test_credit_note_pdf_names_the_credited_invoice() -> None:
    for snapshot in (credit_note(), credit_note(negative=True)):
        [text] = pdf_pages(render_invoice_pdf(snapshot))
        assert "Creditnota" in text and "CN-2026-000001" in text
        assert "Deze creditnota corrigeert factuur INV-2026-000001 van 1 nov 2026." in text
        assert "Te crediteren totaal" in text
        assert "8,35" in text  # 6,90 + 21 % VAT


def test_reverse_charge_note_is_printed() -> None:
    [text] = pdf_pages(render_invoice_pdf(reverse_charge()))
    assert "Reverse charge: VAT to be accounted for by the recipient" in text
    assert "NL859048490B01" in text
    assert "Please transfer €10.28 by 15 Nov 2026 to IBAN BE71 0961 2345 6769" in text


def test_inconsistent_snapshot_is_refused() -> None:
    snapshot = sample()
    snapshot["totals"]["total"] += 1
    with pytest.raises(SnapshotError):
        render_invoice_pdf(snapshot)
    snapshot = sample(version=2)
    with pytest.raises(SnapshotError):
        render_ubl(snapshot)


def test_snapshot_text_cannot_inject_markup() -> None:
    snapshot = sample()
    snapshot["buyer"]["name"] = '<img src="http://example.com/x.png">'
    snapshot["seller"]["name"] = 'Evil"</style><img src="file:///etc/passwd">'
    text = "".join(pdf_pages(render_invoice_pdf(snapshot)))
    assert '<img src="http://example.com/x.png">' in text


# --- fetcher ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x.png",
        "https://example.com/x.png",
        "file:///etc/passwd",
        (STATIC_ROOT / ".." / ".." / "etc" / "passwd").as_uri(),
        f"file://{STATIC_ROOT}/../app/config.py",
        f"file://{STATIC_ROOT}/img/",
        "data:image/png;base64,iVBORw0KGgo=",
        "file://evil.example/static/img/logo.svg",
    ],
)
def test_fetcher_refuses_anything_outside_static(url: str) -> None:
    with pytest.raises(ResourceRefusedError):
        StaticOnlyFetcher().fetch(url)


def test_fetcher_serves_static_files() -> None:
    response = StaticOnlyFetcher().fetch((STATIC_ROOT / "img" / "logo.svg").as_uri())
    assert response.content_type == "image/svg+xml"
    assert b"<svg" in response.read()


def test_a_template_reaching_outside_static_fails_the_render() -> None:
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    html = HTML(
        string='<p>x</p><img src="http://example.com/x.png">',
        base_url=STATIC_ROOT.as_uri() + "/",
        url_fetcher=StaticOnlyFetcher(),
    )
    with pytest.raises(FatalURLFetchingError):
        html.write_pdf()


# --- translations ----------------------------------------------------------------------------------------


def _messages_in_sources() -> set[str]:
    sources = [(TEMPLATE_DIR / "invoice.html", "jinja2")] + [
        (path, "python") for path in (PROJECT_ROOT / "app" / "billing" / "documents").glob("*.py")
    ]
    found = set()
    for path, method in sources:
        for _line, message, _comments, _context in extract_from_file(method, str(path), keywords={"_": None}):
            found.add(message)
    return found


@pytest.mark.parametrize("language", ["nl", "fr"])
def test_every_invoice_label_is_translated(language: str) -> None:
    with (INVOICE_CATALOG_DIR / language / "LC_MESSAGES" / "invoice.po").open("rb") as source:
        catalog = read_po(source)
    translated = {message.id for message in catalog if message.id and message.string}
    missing = _messages_in_sources() - translated
    assert not missing, f"untranslated in {language}: {sorted(missing)}"


# --- Factur-X --------------------------------------------------------------------------------------------


def test_facturx_xml_passes_the_en16931_schema_and_is_embedded() -> None:
    snapshot = sample()
    xml = build_cii_xml(snapshot)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    pdf = render_facturx_pdf(snapshot)
    filename, embedded = facturx.get_facturx_xml_from_pdf(pdf)
    assert filename == "factur-x.xml"
    assert embedded == xml
    assert facturx.get_level(etree.fromstring(embedded)) == "en16931"
    reader = PdfReader(BytesIO(pdf))
    metadata = reader.xmp_metadata.stream.get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in metadata and "<pdfaid:conformance>B</pdfaid:conformance>" in metadata
    # The visible invoice is the same document.
    assert "€ 12,44" in pdf_pages(pdf)[0]


def test_facturx_totals_and_lines_follow_the_snapshot() -> None:
    snapshot = many_lines_snapshot(12)
    root = etree.fromstring(build_cii_xml(snapshot))
    summation = root.find(".//ram:SpecifiedTradeSettlementHeaderMonetarySummation", CII_NS)
    line_totals = [
        amount(item, ".//ram:LineTotalAmount", CII_NS)
        for item in root.findall(".//ram:IncludedSupplyChainTradeLineItem", CII_NS)
    ]
    assert len(line_totals) == 12
    assert sum(line_totals) == amount(summation, "ram:LineTotalAmount", CII_NS)
    assert (
        amount(summation, "ram:TaxBasisTotalAmount", CII_NS) + amount(summation, "ram:TaxTotalAmount", CII_NS)
        == amount(summation, "ram:GrandTotalAmount", CII_NS)
        == Decimal(snapshot["totals"]["total"]) / 100
    )


@pytest.mark.parametrize("negative", [False, True])
def test_facturx_credit_note(negative: bool) -> None:
    xml = build_cii_xml(credit_note(negative=negative))
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    root = etree.fromstring(xml)
    assert root.findtext(".//rsm:ExchangedDocument/ram:TypeCode", namespaces=CII_NS) == "381"
    assert (
        root.findtext(".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", namespaces=CII_NS) == "INV-2026-000001"
    )
    assert root.findtext(".//ram:GrandTotalAmount", namespaces=CII_NS) == "8.35"


def test_facturx_reverse_charge_uses_category_ae() -> None:
    xml = build_cii_xml(reverse_charge())
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    root = etree.fromstring(xml)
    header_tax = root.find(".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", CII_NS)
    assert header_tax.findtext("ram:CategoryCode", namespaces=CII_NS) == "AE"
    assert header_tax.findtext("ram:ExemptionReasonCode", namespaces=CII_NS) == "VATEX-EU-AE"


# --- UBL (Peppol BIS Billing 3.0) --------------------------------------------------------------------------


def check_peppol_rules(xml: bytes) -> etree._Element:
    """The XSD plus the arithmetic and identification rules of EN 16931 / Peppol BIS 3.0 we rely on."""
    root = etree.fromstring(xml)
    credit = etree.QName(root).localname == "CreditNote"
    assert facturx.xml_check_xsd(xml, flavor="ubl-2.1-creditnote" if credit else "ubl-2.1-invoice")
    ns = UBL_NS
    assert (
        root.findtext("cbc:CustomizationID", namespaces=ns)
        == "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    )
    assert root.findtext("cbc:ProfileID", namespaces=ns) == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert root.findtext("cbc:BuyerReference", namespaces=ns)  # PEPPOL-EN16931-R003
    for party in ("cac:AccountingSupplierParty", "cac:AccountingCustomerParty"):  # R010, R020
        endpoint = root.find(f"{party}/cac:Party/cbc:EndpointID", ns)
        assert endpoint is not None and endpoint.get("schemeID") and endpoint.text
    line_tag = "cac:CreditNoteLine" if credit else "cac:InvoiceLine"
    quantity_tag = "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity"
    lines = root.findall(line_tag, ns)
    assert lines
    ids = [line.findtext("cbc:ID", namespaces=ns) for line in lines]
    assert len(set(ids)) == len(ids)  # BR-? line identifiers are unique
    bases: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        line_amount = amount(line, "cbc:LineExtensionAmount", ns)
        quantity = Decimal(line.findtext(quantity_tag, namespaces=ns))
        assert line.find(quantity_tag, ns).get("unitCode") in {"C62", "KWH", "MON"}
        price = Decimal(line.findtext("cac:Price/cbc:PriceAmount", namespaces=ns))
        base_quantity = Decimal(line.findtext("cac:Price/cbc:BaseQuantity", default="1", namespaces=ns))
        assert price >= 0  # BR-27
        # PEPPOL-EN16931-R120: line amount = quantity × price / base quantity, to the cent.
        assert (quantity * price / base_quantity).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) == line_amount
        category = line.find("cac:Item/cac:ClassifiedTaxCategory", ns)
        key = (category.findtext("cbc:ID", namespaces=ns), Decimal(category.findtext("cbc:Percent", namespaces=ns)))
        bases[key] = bases.get(key, Decimal(0)) + line_amount
    totals = root.find("cac:LegalMonetaryTotal", ns)
    line_extension = amount(totals, "cbc:LineExtensionAmount", ns)
    assert sum(amount(line, "cbc:LineExtensionAmount", ns) for line in lines) == line_extension  # BR-CO-10
    tax_total = root.find("cac:TaxTotal", ns)
    tax_amount = amount(tax_total, "cbc:TaxAmount", ns)
    subtotals = tax_total.findall("cac:TaxSubtotal", ns)
    assert sum(amount(sub, "cbc:TaxAmount", ns) for sub in subtotals) == tax_amount  # BR-CO-14
    for sub in subtotals:
        key = (
            sub.findtext("cac:TaxCategory/cbc:ID", namespaces=ns),
            Decimal(sub.findtext("cac:TaxCategory/cbc:Percent", namespaces=ns)),
        )
        taxable = amount(sub, "cbc:TaxableAmount", ns)
        assert bases.pop(key) == taxable  # BR-S-08 / BR-AE-08
        expected = (taxable * key[1] / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert abs(amount(sub, "cbc:TaxAmount", ns) - expected) <= Decimal("0.01")  # BR-CO-17
        if key[0] == "AE":
            assert sub.findtext("cac:TaxCategory/cbc:TaxExemptionReasonCode", namespaces=ns) == "VATEX-EU-AE"
    assert not bases, f"lines with a VAT category missing from the breakdown: {bases}"
    assert amount(totals, "cbc:TaxExclusiveAmount", ns) == line_extension  # BR-CO-13 (no allowances/charges)
    assert amount(totals, "cbc:TaxExclusiveAmount", ns) + tax_amount == amount(
        totals, "cbc:TaxInclusiveAmount", ns
    )  # BR-CO-15
    assert amount(totals, "cbc:PayableAmount", ns) == amount(totals, "cbc:TaxInclusiveAmount", ns)  # BR-CO-16
    return root


def test_ubl_invoice_for_the_sample() -> None:
    root = check_peppol_rules(render_ubl(sample()))
    ns = UBL_NS
    assert etree.QName(root).localname == "Invoice"
    assert root.findtext("cbc:ID", namespaces=ns) == "INV-2026-000001"
    assert root.findtext("cbc:InvoiceTypeCode", namespaces=ns) == "380"
    assert root.findtext("cbc:DueDate", namespaces=ns) == "2026-11-15"
    seller_endpoint = root.find("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", ns)
    assert (seller_endpoint.get("schemeID"), seller_endpoint.text) == ("0208", "0403170701")
    assert (
        root.findtext("cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID", namespaces=ns)
        == "BE0403170701"
    )
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=ns) == "12.44"
    assert root.findtext("cac:PaymentMeans/cbc:PaymentMeansCode", namespaces=ns) == "59"
    units = [line.find("cbc:InvoicedQuantity", ns).get("unitCode") for line in root.findall("cac:InvoiceLine", ns)]
    assert units == ["MON", "KWH"]
    assert root.findtext("cac:InvoiceLine[2]/cac:Price/cbc:PriceAmount", namespaces=ns) == "0.345"


def test_ubl_many_lines_add_up() -> None:
    snapshot = many_lines_snapshot(120)
    root = check_peppol_rules(render_ubl(snapshot))
    assert len(root.findall("cac:InvoiceLine", UBL_NS)) == 120


def test_ubl_negative_credit_line_on_an_invoice() -> None:
    snapshot = sample()
    snapshot["lines"].append(
        {
            "position": 3,
            "kind": "correction",
            "description": "Goodwill correction",
            "quantity": "1",
            "unit": "item",
            "session": None,
            "cpo_cost": 0,
            "fees": -150,
            "amount": -150,
            "vat_rate": "21",
        }
    )
    root = check_peppol_rules(render_ubl(with_totals(snapshot)))
    correction = root.findall("cac:InvoiceLine", UBL_NS)[-1]
    assert correction.findtext("cbc:InvoicedQuantity", namespaces=UBL_NS) == "-1"
    assert correction.findtext("cbc:LineExtensionAmount", namespaces=UBL_NS) == "-1.50"
    assert "Goodwill correction" in pdf_pages(render_invoice_pdf(with_totals(snapshot)))[0]


@pytest.mark.parametrize("negative", [False, True])
def test_ubl_credit_note(negative: bool) -> None:
    root = check_peppol_rules(render_ubl(credit_note(negative=negative)))
    ns = UBL_NS
    assert etree.QName(root).localname == "CreditNote"
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=ns) == "381"
    assert root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=ns) == "INV-2026-000001"
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=ns) == "8.35"
    assert root.find("cbc:DueDate", ns) is None


def test_ubl_reverse_charge_and_foreign_endpoint() -> None:
    root = check_peppol_rules(render_ubl(reverse_charge()))
    ns = UBL_NS
    assert root.findtext("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID", namespaces=ns) == "AE"
    endpoint = root.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", ns)
    assert (endpoint.get("schemeID"), endpoint.text) == ("9944", "NL859048490B01")
    assert root.findtext("cac:PaymentMeans/cbc:PaymentMeansCode", namespaces=ns) == "58"
    assert root.findtext("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", namespaces=ns) == "BE71096123456769"


def test_ubl_direct_debit_names_the_mandate_when_the_snapshot_has_it() -> None:
    snapshot = sample()
    snapshot["payment"]["mandate_reference"] = "MANDATE-42"
    root = check_peppol_rules(render_ubl(snapshot))
    assert root.findtext("cac:PaymentMeans/cac:PaymentMandate/cbc:ID", namespaces=UBL_NS) == "MANDATE-42"


# --- which documents a customer gets ---------------------------------------------------------------------


def test_documents_for_consumers_business_and_belgian_business() -> None:
    consumer = documents_for(sample(), business=False)
    assert list(consumer) == ["INV-2026-000001.pdf"]
    assert facturx.get_facturx_xml_from_pdf(consumer["INV-2026-000001.pdf"]) == (False, False)

    belgian = documents_for(sample(), business=True)
    assert sorted(belgian) == ["INV-2026-000001.pdf", "INV-2026-000001.ubl.xml"]
    assert facturx.get_facturx_xml_from_pdf(belgian["INV-2026-000001.pdf"])[0] == "factur-x.xml"
    check_peppol_rules(belgian["INV-2026-000001.ubl.xml"])

    dutch = documents_for(reverse_charge(), business=True)
    assert list(dutch) == ["INV-2026-000001.pdf"]
