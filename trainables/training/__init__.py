"""Training loops: plain functions on the one engine (trainables/engine.py), no Ray."""
