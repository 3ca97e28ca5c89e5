"""Tandem changes service."""
