"""Collection: Stripe payments of finalized invoices, refunds of credit notes, dunning, and their tasks."""
