"""The ``firehook`` command line."""
