"""Tandem deployments service."""
