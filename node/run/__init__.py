"""Running a node: the ``relance-node`` command line, the composition root
(``daemon``) and the hooks a test entry point may give it, settings, logs, TLS,
backups, state sync, governance files and the genesis ceremony.
"""
