"""Change enablement's rules as pure functions over plain data: no database, no HTTP.

Each module is named after the noun whose operations (one level up) apply it: ``lifecycle``
(the change model of each type and whether a move may be made now), ``approvals`` (by count,
and by ownership), ``freezes``, ``risk``, ``standard_changes`` (the template catalog) and
``success_scores``. A rule answers with a value or raises a domain error of
:mod:`changes.errors`.
"""
