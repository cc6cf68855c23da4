"""The ``simnet`` command (a first version: ``simnet demo``)."""
