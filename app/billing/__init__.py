"""Billing: monthly invoice runs, gapless numbering, credit notes, held sessions, PDFs and e-invoices, and
collecting payment through Stripe with dunning."""
