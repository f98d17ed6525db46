"""Real-process tests pick their ports below the kernel's ephemeral range, where no
outgoing connection can take one between the pick and the node's bind."""

from __future__ import annotations

import socket

import pytest

from node.devnet import network as devnet
from node.devnet.network import port_is_free
from tools.faults.cluster import PORTS_LOW, _ephemeral_low, free_base_port


def test_ports_are_picked_free_and_below_the_ephemeral_range() -> None:
    for _ in range(20):
        base = free_base_port(12)
        assert base >= PORTS_LOW and base + 12 <= _ephemeral_low()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", base + 11))


def _leave_time_wait(port: int) -> None:
    """Serve one connection on ``port`` and close the server's side first: its socket
    lingers in TIME_WAIT, as after a node stopped by Ctrl-C."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the side that closes first keeps TIME_WAIT
            client.recv(1)


def test_a_port_in_time_wait_is_free_for_a_new_devnet() -> None:
    port = free_base_port(1)
    _leave_time_wait(port)
    assert port_is_free(port)
    devnet._check_free([port])  # relance-node devnet's check: no "port busy"


def test_a_port_someone_listens_on_is_busy() -> None:
    port = free_base_port(1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        assert not port_is_free(port)
        with pytest.raises(devnet.DevnetError, match="busy"):
            devnet._check_free([port])
