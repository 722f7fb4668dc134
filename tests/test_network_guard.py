import socket

import pytest


def test_guard_refuses_other_hosts() -> None:
    sock = socket.socket()
    try:
        with pytest.raises(ConnectionRefusedError, match="fake the network"):
            sock.connect(("93.184.216.34", 80))
    finally:
        sock.close()
