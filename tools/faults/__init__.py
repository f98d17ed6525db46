"""The fault harness: real node processes on 127.0.0.1, faults injected from outside.

Owns the pieces a fault scenario is made of, each usable alone from tests:

- ``loop``      a background asyncio loop for the async parts (proxies, workload);
- ``proxy``     a TCP proxy per directed link that cuts, delays, drops, duplicates
                and reorders whole frames, per direction of traffic;
- ``procs``     the node processes: start, SIGTERM, SIGKILL, SIGSTOP/SIGCONT, restart;
- ``cluster``   a devnet whose every link goes through a proxy, with its processes;
- ``workload``  a bounded client workload recording each call (invoked, ok, failed,
                unknown) with its transaction id;
- ``checkers``  checks over the honest nodes' final state (stores, journals, logs);
- ``scenarios`` the scenarios of issue 4 and their runner (``python -m tools.faults``).

An edge of the system: may import anything in ``node``; nothing imports it but tests.
"""
