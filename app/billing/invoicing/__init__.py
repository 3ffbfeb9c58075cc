"""Invoicing: composing a month per account, numbering, freezing the snapshot, credit notes."""
