"""The ``coopfed`` command and the node it runs: the shell around the protocol kernel.

``coopfed.app`` composes the web application from the feature packages
(``actors``, ``inbox``, ``outbox``, ``admin``, ``clientapi``) over the kernel
(``federation``); ``coopfed.cli`` holds one module per command group; the rest
are the runtime (embedded PostgreSQL, the identity file, logging).  Nothing
below this package imports it.
"""
