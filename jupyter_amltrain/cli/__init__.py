"""The ``amltrain`` command line."""
