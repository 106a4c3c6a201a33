"""The trial entry points Ray calls, and their context: no other trainables module imports ray."""
