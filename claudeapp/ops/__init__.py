"""Operators' read-only views across the layers (metrics, job log lines): above jobs, api and chat."""
