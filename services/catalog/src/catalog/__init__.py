"""Tandem's service catalog: who owns what."""
