"""The JSON API door for the mobile app (``/api/v1``, OpenAPI at ``/api/v1/openapi.json``)."""
