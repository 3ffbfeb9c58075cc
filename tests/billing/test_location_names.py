"""A CDR names its location in the CPO's own spelling; the session history and the invoice line find the location we
hold whatever the case (OCPI ids are CiStrings), so the driver sees its name and not the bare id."""

from __future__ import annotations

import datetime as dt

from app.billing import session_history as history
from app.billing.invoicing.composition import billable_charges
from app.extensions import db
from tests.billing.sessions import rated_session
from tests.billing.test_portal_billing import _driver
from tests.finder.builders import add_location, connector, evse

OCT = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)
TYPE_2 = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 32,
}


def test_a_location_held_in_another_case_names_the_session(app, client):
    user, card = _driver()
    # The CPO pushed its location as "loc1"; its CDRs say "LOC1" (tests/billing/sessions.py).
    add_location(52.09, 5.12, evse("E1", connector(TYPE_2)), id="loc1", name="Laadplein Centraal")
    charge = rated_session(user.account.id, card.id, OCT)
    db.session.flush()

    page = history.session_page(user.account.id, history.session_filters("2026-10", ""), 1)
    assert [line.location for line in page.sessions] == ["Laadplein Centraal"]
    billable = billable_charges([user.account.id], OCT + dt.timedelta(days=30))[user.account.id]
    assert [row.location_name for row in billable] == ["Laadplein Centraal"]
    assert [row.charge_id for row in billable] == [charge.id]
