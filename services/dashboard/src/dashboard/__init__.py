"""Tandem dashboard: a live board fed by the incidents, changes and deployments topics."""
