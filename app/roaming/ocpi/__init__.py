"""OCPI protocol support; one subpackage per version (``v221``)."""
