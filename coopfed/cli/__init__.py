"""The ``coopfed`` command: ``main`` builds the parser, one module per command group."""
