"""One billed Claude call: admit (route, rate limits, budget), then settle or abandon.

Shared by the chat turn, the partner API and the job runner, so every path is
limited, routed and billed the same way.
"""
