"""Bookkeeping of the chapters' experiments (data preparation, scoring, tables), kept out of the
notebooks so that the code on the page teaches."""
