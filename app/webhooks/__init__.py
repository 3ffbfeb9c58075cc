"""Webhooks: the door where Stripe tells us how payments ended (signed, no cookie, no CSRF)."""
