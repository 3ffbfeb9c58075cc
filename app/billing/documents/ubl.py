"""UBL 2.1 e-invoice (Peppol BIS Billing 3.0) for Belgian business customers.

An ``Invoice`` (type 380) or ``CreditNote`` (type 381, positive amounts, ``BillingReference`` to the credited
invoice), built from the snapshot only.

Electronic addresses (``cbc:EndpointID``, BT-34/BT-49): a Belgian party with a BE VAT number is addressed by
its enterprise number (KBO/BCE) under scheme **0208**. That is the identifier the Belgian Peppol authority
(BOSA) registers companies under and the one Hermes/the public access points look up; scheme 9925 (the VAT
number) only reaches companies that registered it in addition. Other EU parties use their VAT scheme
(9944 NL, 9957 FR, 9930 DE, 9938 LU, ...), and a buyer without one falls back to their e-mail address
(scheme EM), so the mandatory buyer endpoint (PEPPOL-EN16931-R010) is always present.

SEPA direct debit (payment means 59) must name the mandate (PEPPOL-EN16931-R061): ``payment.mandate_reference``
(frozen at finalization; older snapshots have no such key) becomes ``cac:PaymentMandate/cbc:ID`` (BT-89), and the
debited account (BT-91, ``cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID``) is written when the snapshot has
a ``payment.debited_account`` IBAN. Snapshots do not carry one today: the bank details of a Stripe SEPA method are
its last four digits only, which is not an account identifier. ``seller.sepa_creditor_id`` (BT-90) is read when
present, likewise. A SEPA snapshot without a mandate reference still gets means 59 without a mandate, which a
Peppol validator rejects (R061): the snapshot, not this writer, has to supply it.

Tax categories: S (standard) for a positive rate, AE (reverse charge, with exemption reason VATEX-EU-AE) for a
zero rate to a business in another EU country, Z otherwise: see ``common.tax_category``. Composition decides
the rates; this module only labels them. The snapshot keeps VAT per rate *and country* (Belgian and Dutch VAT at
21 % apart); EN 16931 has one breakdown per category and rate, so the rows are added up per category and rate
(``common.vat_per_category``).

The seller's company register (BT-30 legal registration identifier, BT-33 additional legal information): the
Belgian enterprise number (scheme 0208) or the Dutch KvK number (scheme 0106) as ``PartyLegalEntity/CompanyID``,
the register entry as printed ("RPR Brussel 0403.170.701", "KvK 12345678") as ``CompanyLegalForm``.

A line finance corrected (an adjusted held session) states its net amount, the correction included, like any
line; what the CPO charged, our fees and the correction are given as item properties.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lxml import etree

from app.billing.documents.common import (
    BELGIAN_ENTERPRISE_SCHEME,
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

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

# Peppol Electronic Address Scheme (EAS) per VAT-number country, for parties outside Belgium.
VAT_EAS = {
    "BE": "9925",
    "NL": "9944",
    "FR": "9957",
    "DE": "9930",
    "LU": "9938",
    "AT": "9914",
    "IT": "0211",
    "ES": "9920",
    "PT": "9946",
    "IE": "9935",
    "DK": "0198",
    "SE": "9955",
    "FI": "0213",
    "PL": "9945",
}
# UNCL4461 payment means: 59 SEPA direct debit, 48 bank card, 58 SEPA credit transfer.
PAYMENT_MEANS = {"sepa_debit": "59", "card": "48", None: "58"}


def endpoint(party: dict[str, Any]) -> tuple[str, str] | None:
    """(scheme, identifier) of a party's Peppol electronic address."""
    vat_number = (party.get("vat_number") or "").replace(" ", "").replace(".", "").upper()
    company_id = enterprise_number(vat_number)
    if company_id:
        return BELGIAN_ENTERPRISE_SCHEME, company_id
    if vat_number[:2] in VAT_EAS:
        return VAT_EAS[vat_number[:2]], vat_number
    if party.get("email"):
        return "EM", party["email"]
    return None


class _Builder:
    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        self.currency = snapshot["currency"]
        self.sign = xml_sign(snapshot)
        self.credit_note = snapshot["kind"] == "credit_note"

    def el(self, parent: etree._Element, tag: str, text: str | None = None, **attributes: str) -> etree._Element:
        prefix, name = tag.split(":")
        element = etree.SubElement(parent, f"{{{CAC if prefix == 'cac' else CBC}}}{name}", attributes)
        if text is not None:
            element.text = text
        return element

    def money(self, parent: etree._Element, tag: str, minor: int) -> None:
        self.el(parent, tag, amount_text(minor * self.sign, self.currency), currencyID=self.currency)

    def tax_category(self, parent: etree._Element, tag: str, rate: str, *, with_reason: bool) -> None:
        category = tax_category(self.snapshot, rate)
        element = self.el(parent, tag)
        self.el(element, "cbc:ID", category)
        self.el(element, "cbc:Percent", decimal_text(Decimal(rate)))
        if with_reason and category == REVERSE_CHARGE:
            self.el(element, "cbc:TaxExemptionReasonCode", REVERSE_CHARGE_REASON_CODE)
            self.el(element, "cbc:TaxExemptionReason", REVERSE_CHARGE_REASON)
        self.el(self.el(element, "cac:TaxScheme"), "cbc:ID", "VAT")

    def party(self, parent: etree._Element, tag: str, data: dict[str, Any], name: str, *, seller: bool = False) -> None:
        party = self.el(self.el(parent, tag), "cac:Party")
        address = endpoint(data)
        if address:
            self.el(party, "cbc:EndpointID", address[1], schemeID=address[0])
        if data.get("customer_number"):
            self.el(self.el(party, "cac:PartyIdentification"), "cbc:ID", data["customer_number"])
        if data.get("sepa_creditor_id"):
            self.el(self.el(party, "cac:PartyIdentification"), "cbc:ID", data["sepa_creditor_id"], schemeID="SEPA")
        self.el(self.el(party, "cac:PartyName"), "cbc:Name", name)
        postal = self.el(party, "cac:PostalAddress")
        if data.get("street"):
            self.el(postal, "cbc:StreetName", data["street"])
        if data.get("city"):
            self.el(postal, "cbc:CityName", data["city"])
        if data.get("postal_code"):
            self.el(postal, "cbc:PostalZone", data["postal_code"])
        self.el(self.el(postal, "cac:Country"), "cbc:IdentificationCode", data["country"])
        if data.get("vat_number"):
            tax_scheme = self.el(party, "cac:PartyTaxScheme")
            self.el(tax_scheme, "cbc:CompanyID", data["vat_number"])
            self.el(self.el(tax_scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
        legal = self.el(party, "cac:PartyLegalEntity")
        self.el(legal, "cbc:RegistrationName", name)
        register = company_register(data) if seller else None
        company_id = enterprise_number(data.get("vat_number"))
        if register and register.number and register.scheme:
            self.el(legal, "cbc:CompanyID", register.number, schemeID=register.scheme)
        elif company_id:
            self.el(legal, "cbc:CompanyID", company_id, schemeID=BELGIAN_ENTERPRISE_SCHEME)
        if register:  # BT-33, the seller's additional legal information (Peppol allows it for the seller only)
            self.el(legal, "cbc:CompanyLegalForm", register.text)
        contact_name = data.get("name") if data.get("company_name") else None
        if contact_name or data.get("email"):
            contact = self.el(party, "cac:Contact")
            if contact_name:
                self.el(contact, "cbc:Name", contact_name)
            if data.get("email"):
                self.el(contact, "cbc:ElectronicMail", data["email"])

    def payment_mandate(self, means: etree._Element, reference: str, debited_account: str | None) -> None:
        """``cac:PaymentMandate`` of a SEPA direct debit (PEPPOL-EN16931-R061): the mandate reference (BT-89) and,
        when known, the debited account (BT-91). UBL 2.1 orders PaymentMeans as PaymentMeansCode, PaymentID, ...,
        PayeeFinancialAccount, PaymentMandate, and PaymentMandate as ID, ..., PayerFinancialAccount: callers append
        it after everything else in PaymentMeans."""
        mandate = self.el(means, "cac:PaymentMandate")
        self.el(mandate, "cbc:ID", reference)
        account = (debited_account or "").replace(" ", "").upper()
        if account:
            self.el(self.el(mandate, "cac:PayerFinancialAccount"), "cbc:ID", account)

    def build(self) -> etree._Element:
        s = self.snapshot
        seller, buyer, totals = s["seller"], s["buyer"], s["totals"]
        namespace = CREDIT_NOTE_NS if self.credit_note else INVOICE_NS
        root = etree.Element(
            f"{{{namespace}}}{'CreditNote' if self.credit_note else 'Invoice'}",
            nsmap={None: namespace, "cac": CAC, "cbc": CBC},
        )
        self.el(root, "cbc:CustomizationID", CUSTOMIZATION_ID)
        self.el(root, "cbc:ProfileID", PROFILE_ID)
        self.el(root, "cbc:ID", s["number"])
        self.el(root, "cbc:IssueDate", s["issue_date"])
        if self.credit_note:
            self.el(root, "cbc:CreditNoteTypeCode", "381")
        else:
            if s.get("due_date"):
                self.el(root, "cbc:DueDate", s["due_date"])
            self.el(root, "cbc:InvoiceTypeCode", "380")
        self.el(root, "cbc:DocumentCurrencyCode", self.currency)
        # PEPPOL-EN16931-R003: a buyer reference or an order reference is required.
        self.el(root, "cbc:BuyerReference", buyer.get("customer_number") or s["number"])
        period = self.el(root, "cac:InvoicePeriod")
        self.el(period, "cbc:StartDate", s["period"]["start"])
        self.el(period, "cbc:EndDate", s["period"]["end"])
        if self.credit_note:
            reference = self.el(self.el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
            self.el(reference, "cbc:ID", s["credits_invoice"]["number"])
            if s["credits_invoice"].get("issue_date"):
                self.el(reference, "cbc:IssueDate", s["credits_invoice"]["issue_date"])
        self.party(root, "cac:AccountingSupplierParty", seller, seller["name"], seller=True)
        self.party(root, "cac:AccountingCustomerParty", buyer, buyer_display_name(buyer))

        payment = s.get("payment") or {}
        method = payment.get("method")
        means = self.el(root, "cac:PaymentMeans")
        self.el(means, "cbc:PaymentMeansCode", PAYMENT_MEANS.get(method, "1"))
        self.el(means, "cbc:PaymentID", payment.get("reference") or s["number"])
        if PAYMENT_MEANS.get(method) == "58" and seller.get("iban"):
            # BR-61: a credit transfer names the payee's account.
            account = self.el(means, "cac:PayeeFinancialAccount")
            self.el(account, "cbc:ID", seller["iban"].replace(" ", ""))
        mandate_reference = str(payment.get("mandate_reference") or "").strip()
        if method == "sepa_debit" and mandate_reference:
            self.payment_mandate(means, mandate_reference, payment.get("debited_account"))
        if not self.credit_note and payment.get("terms_days"):
            terms = self.el(root, "cac:PaymentTerms")
            self.el(terms, "cbc:Note", f"Payment within {payment['terms_days']} days")

        tax_total = self.el(root, "cac:TaxTotal")
        self.money(tax_total, "cbc:TaxAmount", totals["vat"])
        for row in vat_per_category(s):
            subtotal = self.el(tax_total, "cac:TaxSubtotal")
            self.money(subtotal, "cbc:TaxableAmount", row["base"])
            self.money(subtotal, "cbc:TaxAmount", row["vat"])
            self.tax_category(subtotal, "cac:TaxCategory", row["rate"], with_reason=True)

        monetary = self.el(root, "cac:LegalMonetaryTotal")
        self.money(monetary, "cbc:LineExtensionAmount", totals["subtotal"])
        self.money(monetary, "cbc:TaxExclusiveAmount", totals["subtotal"])
        self.money(monetary, "cbc:TaxInclusiveAmount", totals["total"])
        self.money(monetary, "cbc:PayableAmount", totals["total"])

        for line in sorted(s["lines"], key=lambda line: line["position"]):
            self.line(root, line)
        return root

    def line(self, root: etree._Element, line: dict[str, Any]) -> None:
        priced = priced_quantity(line, self.currency, self.sign)
        element = self.el(root, "cac:CreditNoteLine" if self.credit_note else "cac:InvoiceLine")
        self.el(element, "cbc:ID", str(line["position"]))
        quantity_tag = "cbc:CreditedQuantity" if self.credit_note else "cbc:InvoicedQuantity"
        self.el(element, quantity_tag, decimal_text(priced.quantity), unitCode=priced.unit_code)
        self.money(element, "cbc:LineExtensionAmount", line["amount"])
        session = line.get("session")
        if session and session.get("start") and session.get("end"):
            period = self.el(element, "cac:InvoicePeriod")
            self.el(period, "cbc:StartDate", local_date(session["start"], self.snapshot))
            self.el(period, "cbc:EndDate", local_date(session["end"], self.snapshot))
        item = self.el(element, "cac:Item")
        self.el(item, "cbc:Name", line["description"] or line["kind"])
        if session and session.get("evse_id"):
            self.el(self.el(item, "cac:SellersItemIdentification"), "cbc:ID", session["evse_id"])
        self.tax_category(item, "cac:ClassifiedTaxCategory", line["vat_rate"], with_reason=False)
        if session:
            correction = line_correction(line)
            properties = (
                ("Session", session.get("cdr_id")),
                ("kWh", session.get("kwh")),
                ("CPO price", amount_text(line["cpo_cost"] * self.sign, self.currency)),
                ("Fees", amount_text(line["fees"] * self.sign, self.currency)),
                ("Correction", amount_text(correction * self.sign, self.currency) if correction else None),
                ("Card", session.get("card")),
            )
            for name, value in properties:
                if value:
                    prop = self.el(item, "cac:AdditionalItemProperty")
                    self.el(prop, "cbc:Name", name)
                    self.el(prop, "cbc:Value", str(value))
        price = self.el(element, "cac:Price")
        self.el(price, "cbc:PriceAmount", price_text(priced.price), currencyID=self.currency)
        if priced.base_quantity is not None:
            self.el(price, "cbc:BaseQuantity", decimal_text(priced.base_quantity), unitCode=priced.unit_code)


def build_ubl(snapshot: dict[str, Any]) -> etree._Element:
    check_snapshot(snapshot)
    return _Builder(snapshot).build()


def render_ubl(snapshot: dict[str, Any]) -> bytes:
    """The Peppol BIS Billing 3.0 UBL Invoice or CreditNote of ``snapshot`` (UTF-8 XML bytes)."""
    xml: bytes = etree.tostring(build_ubl(snapshot), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml
