"""Payment methods through Stripe (customers, SetupIntents, saved cards and SEPA mandates)."""
