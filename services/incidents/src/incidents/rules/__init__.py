"""Incident rules as pure functions over plain data: the lifecycle, priority and SLA policy,
duration statistics. No I/O; the operations beside them apply these."""
