"""The image's launcher (docker/entrypoint.sh) keeps cross-origin protection on and exception details out of the
page — checked against a real Streamlit server started by that very script, on loopback.

The server runs a two-line stub page (a file uploader, then an exception carrying a server path) instead of the
app: what is tested is the server and the launcher's flags, which do not depend on the page, and the stub
starts in a second instead of importing torch. SPACE_ID is set, so the Hugging Face exception (a SameSite=None
XSRF cookie) is in force: even with it, a foreign origin gets neither a WebSocket nor an upload."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parent.parent
EVIL = "http://evil.example"
SECRET = "/srv/secret/server-path.py"
STUB = f"""import streamlit as st
st.file_uploader("weights")
raise RuntimeError("failed at {SECRET}")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    (site / "app").mkdir()
    (site / "app/streamlit_app.py").write_text(STUB)
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "SPACE_ID": "tests/cross-origin", "UNLEARNING_LAB_RUNS": str(site / "runs")}
    log = open(site / "server.log", "w")
    process = subprocess.Popen(["sh", str(REPO / "docker/entrypoint.sh"), f"--server.port={port}",
                                "--server.address=127.0.0.1"], cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if urllib.request.urlopen(f"http://{host}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the entrypoint's server did not become healthy: " + (site / "server.log").read_text()[-2000:])
        yield host
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def run_page(stream):
    """Ask for a script run over an open same-origin WebSocket, as the app's own page does; returns
    (session id, messages up to the end of the run)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    back = BackMsg()
    back.rerun_script.query_string = ""
    stream.send(back.SerializeToString())
    messages, session_id = [], None
    deadline = time.time() + 60
    while time.time() < deadline:
        message = ForwardMsg.FromString(stream.recv(timeout=60))
        messages.append(message)
        if message.WhichOneof("type") == "new_session":
            session_id = message.new_session.initialize.session_id
        if message.WhichOneof("type") == "script_finished":
            break
    assert session_id, "no session started"
    return session_id, messages


def same_origin(host: str):
    return connect(f"ws://{host}/_stcore/stream", origin=f"http://{host}", subprotocols=["streamlit"], open_timeout=30)


def test_a_websocket_from_a_foreign_origin_is_refused(server):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{server}/_stcore/stream", origin=EVIL, subprotocols=["streamlit"], open_timeout=30)
    assert refused.value.response.status_code == 403
    with same_origin(server):                                       # the app's own origin is accepted
        pass


def test_an_upload_without_the_xsrf_token_is_refused_and_one_with_it_works(server):
    with same_origin(server) as stream:
        session_id, _ = run_page(stream)
        url = f"http://{server}/_stcore/upload_file/{session_id}/file-1"
        files = {"file": ("model.pt", b"weights", "application/octet-stream")}
        foreign = requests.put(url, files=files, headers={"Origin": EVIL}, timeout=30)
        assert foreign.status_code == 403, foreign.text                # a page elsewhere cannot upload into a session
        assert foreign.headers.get("Access-Control-Allow-Origin") not in ("*", EVIL)

        page = requests.get(f"http://{server}/_stcore/health", timeout=30)   # the page's first call sets the cookie
        cookie = page.headers["Set-Cookie"]
        assert cookie.startswith("_streamlit_xsrf=") and "SameSite=None" in cookie and "Secure" in cookie
        token = cookie.split(";")[0].split("=", 1)[1]
        own = requests.put(url, files=files, timeout=30, headers={
            "Origin": f"http://{server}", "X-Xsrftoken": token, "Cookie": f"_streamlit_xsrf={token}"})
        assert own.status_code == 204, own.text                        # the app's own page still uploads


def test_exceptions_reach_the_page_without_message_type_or_traceback(server):
    with same_origin(server) as stream:
        _, messages = run_page(stream)
    shown = [m.delta.new_element.exception for m in messages
             if m.WhichOneof("type") == "delta" and m.delta.new_element.WhichOneof("type") == "exception"]
    assert shown, "the stub's exception was not shown at all"
    for exception in shown:
        assert SECRET not in exception.message and not exception.stack_trace and not exception.type
    assert all(SECRET.encode() not in m.SerializeToString() for m in messages)
