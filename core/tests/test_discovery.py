"""Multicast discovery (contract 2.9) on the loopback interface: circusd answers a configured
group, circusctl --discover finds it; empty or unset multicast_endpoint binds nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from circus.discovery import MulticastAddress
from circus.testing import CircusdProcess

GROUP = "239.255.42.7"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def udp_sockets(pid: int) -> list[str]:
    return [f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.Process(pid).net_connections("udp")]


def circusctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "circus.circusctl", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_configured_group_answers_and_circusctl_finds_the_daemon(tmp_path: Path) -> None:
    port = free_udp_port()
    multicast = f"udp://{GROUP}:{port}?interface=127.0.0.1"
    config = f"[circus]\nmulticast_endpoint = {multicast}\n[watcher:w]\ncmd = sleep 60\n"
    with CircusdProcess(config, tmp_path) as daemon:
        assert udp_sockets(daemon.pid) == [f"{GROUP}:{port}"]  # the group only, not 0.0.0.0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # 0.19's client side
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton("127.0.0.1"))
            sock.settimeout(20)
            sock.sendto(b"anything at all", (GROUP, port))
            answer, _ = sock.recvfrom(1024)
        assert json.loads(answer) == {"endpoint": daemon.endpoint}
        found = circusctl("--discover", multicast, "--timeout", "20", "status")
        assert (found.returncode, found.stdout, found.stderr) == (0, "w: active\n", "")


@pytest.mark.parametrize("line", ["", "multicast_endpoint =\n"])
def test_unset_or_empty_multicast_endpoint_binds_nothing(tmp_path: Path, line: str) -> None:
    with CircusdProcess(f"[circus]\n{line}[watcher:w]\ncmd = sleep 60\n", tmp_path) as daemon:
        assert daemon.call("status")["statuses"] == {"w": "active"}
        assert udp_sockets(daemon.pid) == []
        assert "discovery" not in daemon.log_text()


def test_unusable_group_disables_discovery_with_a_warning(tmp_path: Path) -> None:
    config = "[circus]\nmulticast_endpoint = udp://10.1.2.3:12027\n[watcher:w]\ncmd = sleep 60\n"
    with CircusdProcess(config, tmp_path) as daemon:
        assert daemon.call("status")["statuses"] == {"w": "active"}
        assert udp_sockets(daemon.pid) == []
        assert "multicast discovery disabled" in daemon.log_text()
        assert "10.1.2.3 is not a multicast address" in daemon.log_text()


def test_circusctl_discover_without_answer_is_one_line() -> None:
    multicast = f"udp://{GROUP}:{free_udp_port()}?interface=127.0.0.1"
    result = circusctl("--discover", multicast, "--timeout", "0.5", "status")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"circusctl: no circusd answered on {multicast} within 0.5s"
    ]
    bad = circusctl("--discover", "udp://1.2.3.4:5", "status")
    assert bad.returncode == 2
    assert "--discover: invalid multicast endpoint 'udp://1.2.3.4:5'" in bad.stderr


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tcp://239.1.1.1:5", "expected udp://GROUP:PORT"),
        ("udp://239.1.1.1", "a port is required"),
        ("udp://239.1.1.1:99999", "out of range"),
        ("udp://239.1.1.1:5?iface=lo", "unknown parameter(s) iface"),
        ("udp://239.1.1.1:5?interface=lo", "interface: "),
    ],
)
def test_bad_multicast_endpoints(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid multicast endpoint") as info:
        MulticastAddress.parse(text)
    assert fragment in str(info.value)


def test_default_0_19_group_parses() -> None:
    assert MulticastAddress.parse("udp://237.219.251.97:12027") == MulticastAddress(
        "237.219.251.97", 12027, "0.0.0.0"
    )
