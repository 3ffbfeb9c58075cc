"""Customer care: what is done for a driver across their account, cards, plan, payments and charging history.

Support's search over accounts and cards, support notes and re-sent confirmations, the driver's data export
(GDPR access) and closing an account (cards blocked, plan ended, logins erased, anonymised after the legal
retention). Support's reads of one account: its sessions and CDRs with the billed price (``charging_history``),
one session's price built up part by part (``price_breakdown``), its authorizations (``authorization_history``),
its activity from the audit log (``activity``), the places and operators they name (``charge_points``) and the
words for stored codes in the agent's language (``wording``). These use cases orchestrate several domains, so
they sit above them, just under the doors: the back office (support) and the driver's own pages here
(``views``) call them.
"""
