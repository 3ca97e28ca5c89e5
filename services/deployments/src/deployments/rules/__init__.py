"""Deployment rules as pure functions over plain data: the gate decision and DORA arithmetic.
No I/O; the operations beside them load the facts and apply these."""
