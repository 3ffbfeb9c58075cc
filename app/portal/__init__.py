"""The driver portal door (HTML at ``/``): landing, dashboard and access rules, and the charging controls
(``/charging``: the live panel the dashboard polls, remote start and stop, in ``charging.py`` with the view model in
``live.py``). Domain pages live in each domain's ``views.py`` and use :mod:`app.accounts.access`."""
