"""The OCPI door: the routes partners call (``/ocpi/versions`` and the 2.2.1 modules in ``v221``), and who is
calling (``auth``). It uses the protocol (``roaming.ocpi``) and the services of ``partners``, ``receive`` and
``send``; nothing in roaming imports it."""
