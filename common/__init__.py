"""Foundations every layer may import and that import nothing of ours.

Why a package of its own: ``search_spaces``, ``trainables``, ``orchestrator`` and ``reports``
all write files others read, share the results table's column names and raise the same
"bad input" exception; putting those in any one of them would make the others import it
against the layering in ``docs/design.md``.
"""
