"""Bookkeeping of the chapters' experiments (data preparation, scoring, tables), kept off the pages."""
