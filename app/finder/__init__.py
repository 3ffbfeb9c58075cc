"""The charger finder: where a driver can charge and what it will cost them, before charging.

``services`` is the one entry point every door calls (portal map, JSON API): :func:`~app.finder.services.search_nearby`,
:func:`~app.finder.services.search_along_route` and :func:`~app.finder.services.location_details`, answering the
typed dataclasses of ``results``. The rooms beside it: ``queries`` (a door's raw parameters → a typed query, or an
error naming the parameter), ``filters`` (connector standards, power, AC/DC, availability, operator, opening hours,
our network), ``candidates`` (the one query that reads candidate locations in a place: what must hold for the same
connector), ``nearest`` (PostgreSQL: the index walked nearest first, a page in one statement), ``cheapest`` (the
candidates of a cheapest-first search with what their prices depend on), ``spatial`` (the index on SQLite and
PostgreSQL), ``distance`` (exact geodesic distance and its fast bounds), ``page`` (the page's locations in one
plain statement, JSON read as text), ``prices`` (the driver's all-in price, as the rating estimate computes it,
for a whole page), ``tariff_versions`` and ``driver_plan`` (what a price is read from: the tariff versions and the
driver's plan, in one statement), ``sql`` (ids as one parameter), ``tariff_words`` (a CPO tariff in words),
``power`` (a connector's usable power from real feeds), ``opening_hours`` (open now, in the location's own time
zone), ``route`` (Google polylines and the corridor along a route), ``navigation`` (links to navigation apps),
``cursors`` (stable pagination).
``models`` holds the finder's tables; ``geocoding`` and ``gazetteer`` turn typed places into coordinates.
See docs/packages/finder.md.
"""
