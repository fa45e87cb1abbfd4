"""Readers for the binary formats symtool deals with, one module per format.

Readers take a path (or a binary file object), read lazily with bounds
checks against the file size, and raise :class:`symtool.errors.FormatError`
on anything malformed.
"""
