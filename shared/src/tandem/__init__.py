"""Tandem's common library, shared by every service: one of each platform mechanism."""
