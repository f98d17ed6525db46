"""The CLI wallet for every role: an edge, talks to nodes over HTTP."""
