"""The catalog's rules as pure functions over plain data: no database, no HTTP.

``names`` (Backstage's naming rule, entity references), ``descriptors`` (Backstage descriptor
YAML read into what the catalog should hold) and ``registration`` (which services an event of
another service names). A rule answers with a value or raises a domain error of
:mod:`catalog.errors`.
"""
