"""Tandem incidents service."""
