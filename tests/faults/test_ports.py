"""Real-process tests pick their ports below the kernel's ephemeral range, where no
outgoing connection can take one between the pick and the node's bind."""

from __future__ import annotations

import socket

from tools.faults.cluster import PORTS_LOW, _ephemeral_low, free_base_port


def test_ports_are_picked_free_and_below_the_ephemeral_range() -> None:
    for _ in range(20):
        base = free_base_port(12)
        assert base >= PORTS_LOW and base + 12 <= _ephemeral_low()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", base + 11))
