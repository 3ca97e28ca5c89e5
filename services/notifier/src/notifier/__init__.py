"""Tandem's notifier: signed webhooks and chat messages for every fact, with a delivery log."""
