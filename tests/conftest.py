import os
import socket

import pytest

# Keep BLAS to one thread per worker: the suite runs with pytest-xdist on 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection fails at once: code under test must not wait on the network."""

    def deny(*args, **kwargs):
        raise OSError("network access denied by the test")

    monkeypatch.setattr(socket, "create_connection", deny)
