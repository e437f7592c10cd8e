"""Reliability tier: real `firehook serve`/`worker` processes, real databases, real faults."""
