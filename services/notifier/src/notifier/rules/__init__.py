"""The notifier's rules as pure functions over plain data: no database, no HTTP.

``matching`` (which subscriptions want an event), ``retries`` (when to try again, when to give
up, when to disable), ``destinations`` (which receiver addresses may be called: no server-side
request forgery), ``messages`` (a fact as a chat message a person reads in one glance),
``signing`` (Standard Webhooks signatures) and ``lifecycle`` (a subscription's states).
"""
