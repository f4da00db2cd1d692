"""The DEFAULT outbound policy, in the private network namespace (scripts/netns): a camera on the
"LAN" (10.77.0.1) plays, while redirects and playlist entries to the cloud metadata address, loopback
and their IPv6 / IPv4-mapped forms are never connected. The metadata addresses are bound on the
namespace's own loopback device, so a listener the test owns sees any connection that is made.

    PYTHONPATH=$PWD/src scripts/netns tests/ingest/test_egress_netns.py -m webrtc
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livesight.core.clock import SystemClock
from tests.ingest.test_egress import GENERIC, Trap, first_error, pull, refusals, serve_http
from tests.ingest.test_pull import write_hls
from tests.support.polling import wait_for
from tests.support.rtsp import FakeRtspServer, rtp_packets
from tests.support.server import run_server

pytestmark = [pytest.mark.webrtc, pytest.mark.timeout(120)]
LAN = "10.77.0.1"
# the default policy, with no host-name narrowing: nothing outside the namespace exists to reach
DEFAULT_POLICY = {"outbound_allow_cidrs": None, "source_allowed_hosts": None}


def add_address(address: str) -> bool:
    family = "-6" if ":" in address else "-4"
    prefix = "128" if ":" in address else "32"
    # nodad: an IPv6 address is usable at once, not "tentative" for a moment (a bind then failed, EADDRNOTAVAIL)
    extra = ["nodad"] if ":" in address else []
    command = ["ip", family, "addr", "add", f"{address}/{prefix}", "dev", "lo", *extra]
    done = subprocess.run(command, capture_output=True)
    return done.returncode == 0 or b"exists" in done.stderr


@pytest.fixture(scope="module")
def traps() -> Iterator[dict[str, Trap]]:
    assert add_address("169.254.169.254")
    made = {"metadata": Trap("169.254.169.254"), "loopback": Trap("127.0.0.1")}
    if add_address("fd00:ec2::254"):  # IPv6 may be off in the namespace
        made["metadata6"] = Trap("fd00:ec2::254")
    yield made
    for trap in made.values():
        trap.close()


def test_default_policy_refuses_metadata_and_loopback_on_every_hop(
    tmp_path: Path, traps: dict[str, Trap], caplog: Any
) -> None:
    caplog.set_level(logging.INFO)
    media = tmp_path / "hls"
    media.mkdir()
    write_hls(media, frames=10)
    playlist = (media / "live.m3u8").read_text()
    metadata, loopback = traps["metadata"], traps["loopback"]
    redirects = {
        "/metadata.m3u8": f"http://{metadata.netloc}/latest/meta-data/",
        "/mapped.m3u8": f"http://[::ffff:169.254.169.254]:{metadata.port}/latest/meta-data/",
        "/loopback.m3u8": f"http://{loopback.netloc}/admin",
    }
    if "metadata6" in traps:
        redirects["/metadata6.m3u8"] = f"http://{traps['metadata6'].netloc}/latest/meta-data/"
    (media / "segment.m3u8").write_text(playlist.replace("live0.ts", f"http://{metadata.netloc}/live0.ts"))
    httpd = serve_http(media, redirects, host=LAN)
    base = f"http://{LAN}:{httpd.server_address[1]}"
    try:
        with (
            FakeRtspServer(host="169.254.169.254") as metadata_rtsp,
            FakeRtspServer(host=LAN, redirect_to=metadata_rtsp.url) as camera,
            run_server(tmp_path, clock=SystemClock(), host=LAN, **DEFAULT_POLICY) as live,
        ):
            sources = [("hls", base + path) for path in [*redirects, "/segment.m3u8"]]
            sources += [("rtsp", camera.url), ("rtsp", metadata_rtsp.url), ("hls", f"http://{loopback.netloc}/x")]
            pulled = [pull(live, kind, url) for kind, url in sources]
            errors = [first_error(c, sid) for c, sid in pulled]
            assert all(trap.hits == [] for trap in traps.values())
            assert metadata_rtsp.connections == []
            assert all(e.startswith(GENERIC) for e in errors), errors
            wait_for(lambda: len(refusals(caplog)) >= len(sources), 20, what="every refusal in the log")
            for c, _ in pulled:
                c.close()
        assert all(trap.hits == [] for trap in traps.values())
        assert metadata_rtsp.connections == []
    finally:
        httpd.shutdown()


def test_default_policy_lets_a_lan_camera_play(tmp_path: Path) -> None:
    with (
        FakeRtspServer(host=LAN, packets=rtp_packets(frames=20)) as camera,
        run_server(tmp_path, clock=SystemClock(), host=LAN, **DEFAULT_POLICY) as live,
    ):
        c, sid = pull(live, "rtsp", camera.url)
        wait_for(lambda: (c.get(f"/v1/streams/{sid}").json()["last_frame_index"] or 0) >= 15, 20, what="frames")
        c.close()
