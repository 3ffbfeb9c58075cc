"""The back office door (HTML at ``/backoffice``) for support, finance and admin staff."""
