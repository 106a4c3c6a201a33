"""The training and evaluation loops of a trial, all on one engine (``engine``)."""
