"""Bookkeeping of the chapters' multi-model experiments, kept out of the notebooks so that the code on the page teaches."""
