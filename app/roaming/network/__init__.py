"""The roaming network as operations sees it: per partner and hub, who it is, what it brings and how the exchange
with it goes; and how many charge points our cards work at. Read services only (no writes, no Flask request
objects); the back office and the portal render them.

Every figure is an aggregate the database computes, in a fixed number of statements however many partners,
locations or log rows there are (no statement per partner, no rows loaded only to be counted in Python):

- ``figures``: the typed results the pages show;
- ``grouped``: the statements grouped by partner. The infrastructure a partner brings (locations, EVSEs that
  are not ``REMOVED``, their connectors, the EVSEs ``AVAILABLE`` now) is grouped over the locations it delivered
  (``Location.partner_id``); its authorization answers of the last 24 hours are counted per answer and reason
  over the index on (``partner_id``, ``created_at``);
- ``overview``: the overview and one partner's row. The infrastructure counts read whole tables (about a
  second for 100,000 locations on a busy server) and change slowly: the overview keeps them per process for
  ``OPERATIONS_FIGURES_CACHE_SECONDS`` (default 60) and says when they were counted; everything else is read
  at each call. "Last received" per module comes from what we store: a location's or session's
  ``last_updated`` (the CPO's clock), a tariff version's or CDR's ``received_at`` (ours), a hub's ClientInfo
  ``last_updated``; "last sent" from token deliveries (``delivered_at``) and the authorization log (our
  answers). The newest row of a big table is found per partner by a correlated ``ORDER BY ... LIMIT 1`` on an
  index that starts with ``partner_id`` (migration 13c3d0a3e003): one index probe per partner inside the one
  statement that lists the partners;
- ``partner``: what only one partner's page shows (its parties, failed deliveries, quarantined objects);
- ``reach``: ``charge_points_reachable()``, what the landing page says, on the finder's rules
  (``app.roaming.places``: visible locations whose party a registered partner reaches).
"""
