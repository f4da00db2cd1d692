from tests.support.server import LiveServer


def test_create_and_get(server: LiveServer) -> None:
    key = server.new_key()
    with server.client(key) as c:
        created = c.post("/v1/streams")
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        got = c.get(f"/v1/streams/{sid}")
        assert got.status_code == 200
        assert got.json()["state"] == "active"
