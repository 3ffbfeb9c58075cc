"""The driver portal door (HTML at ``/``): dashboard and access rules. Domain pages live in each domain's
``views.py`` and use :mod:`app.accounts.access`."""
