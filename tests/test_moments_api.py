"""The moments API through the real server: the 2015 road trip of the shared roll (synced with
`camroll sync`, read by the real ingest) is one trip with all its photos; events cover every dated
photo; dates filter; owners, scopes and bad input."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROLL, Server, make_user
from tests.test_sync_e2e import all_assets, sync

pytestmark = pytest.mark.backends("sqlite")
DEMO = ROLL / "pigallery2" / "demo"
# The road trip: Yosemite on 12 June 2015, a 17-day silence, then Moab, the Sierra and Williams
# up to 3 July. Berkeley (where it set off, the same morning) is home, not the trip; the two
# photos of 11 July have no GPS and nothing says the owner was still away.
TRIP = {
    *("IMG_6220.jpg", "IMG_6253.jpg", "IMG_6263.jpg", "IMG_6296.jpg", "IMG_6297.jpg"),
    *("IMG_6368.jpg", "IMG_8751.jpg", "IMG_6455.jpg", "IMG_8808.jpg", "IMG_8824.jpg"),
    *("IMG_8943.jpg", "IMG_8994.jpg", "IMG_9037.jpg", "wild-1.jpg", "IMG_9398-2.jpg"),
    *("wild-2.jpg", "IMG_9516.jpg", "wild-3.jpg"),
}
UNDATED = {"Chars_exiftool.jpg"}  # no capture time: on no timeline, in no moment


@pytest.fixture
def road_trip(server: Server, env: dict, tmp_path: Path) -> tuple[httpx.Client, dict[str, str]]:
    roll = tmp_path / "roll"
    roll.mkdir()
    photos = sorted(DEMO.glob("*.jpg"))
    assert {p.name for p in photos} >= TRIP | UNDATED, "shared demo photos missing"
    for p in photos:
        shutil.copy(p, roll / p.name)
    token = make_user("moments@example.org")
    client = server.client(token)
    client.put("/api/consent", json={"scopes": {"cloud_processing": True, "places": True}})
    result = sync(server, token, env, roll)
    assert result["failed"] == [] and result["jobs"]["failed"] == 0, result
    names = {a["id"]: Path(a["device_path"]).name for a in all_assets(client)}
    assert len(names) == len(photos)
    return client, names


def test_road_trip_is_one_trip_with_all_its_photos(
    road_trip: tuple[httpx.Client, dict[str, str]], server: Server
) -> None:
    client, names = road_trip
    r = client.get("/api/moments", params={"kind": "trip"})
    assert r.status_code == 200, r.text
    trips = r.json()
    assert len(trips) == 1, [t["title"] for t in trips]
    trip = trips[0]
    assert {names[a] for a in trip["asset_ids"]} == TRIP
    assert trip["count"] == len(TRIP) == len(trip["asset_ids"])
    assert trip["title"] == "Road trip: Yosemite Valley, Moab and Williams"
    assert (trip["start_date"], trip["end_date"]) == ("2015-06-12", "2015-07-03")
    # Instants in UTC: 12:42 in Yosemite (PDT) is 19:42 UTC.
    assert datetime.fromisoformat(trip["start_utc"]).utcoffset().total_seconds() == 0
    assert trip["start_utc"].startswith("2015-06-12T19:42")
    assert trip["places"][0] == "Yosemite Valley" and "Moab" in trip["places"]
    assert trip["distance_from_home_km"] > 100
    assert trip["cover_asset_id"] in trip["asset_ids"]
    assert client.get(trip["cover_url"]).status_code == 200
    assert client.get(f"/api/moments/{trip['id']}").json() == trip

    # Events: every dated photo is in exactly one, in time order; a trip's events lie inside it.
    events = client.get("/api/moments", params={"kind": "event"}).json()
    members = [a for e in events for a in e["asset_ids"]]
    assert sorted(members) == sorted(a for a, n in names.items() if n not in UNDATED)
    assert [e["start_utc"] for e in events] == sorted(e["start_utc"] for e in events)
    yosemite = next(e for e in events if "IMG_6220.jpg" in {names[a] for a in e["asset_ids"]})
    assert yosemite["places"] == ["Yosemite Valley, California, United States"]
    assert yosemite["title"] == "Yosemite Valley, 12 June 2015"
    # Day and week summaries, by local date.
    day = client.get("/api/moments/days/2015-06-12").json()
    assert day["count"] == 7 and day["places"] == [
        "Berkeley, California, United States",
        "Yosemite Valley, California, United States",
    ]
    assert day["first_local"].startswith("2015-06-12T10:29")
    week = client.get("/api/moments/weeks/2015/27").json()  # Mon 29 June - Sun 5 July
    assert [d["day"] for d in week["days"]] == ["2015-06-29", "2015-07-01", "2015-07-03"]
    assert week["count"] == 12 and week["places"][0] == "Moab, Utah, United States"
    # Local wall times have no offset, and the schema says so (not an RFC 3339 date-time);
    # a week with no photo has no first or last time.
    assert datetime.fromisoformat(day["first_local"]).tzinfo is None
    empty = client.get("/api/moments/weeks/2001/1").json()
    assert (empty["count"], empty["first_local"], empty["last_local"]) == (0, None, None)
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    for name in ("DayOut", "WeekOut"):
        for field in ("first_local", "last_local"):
            assert "date-time" not in str(schemas[name]["properties"][field]), (name, field)
    assert client.get("/api/moments/weeks/2014/53").status_code == 422  # 2014 has 52
    assert client.get("/api/moments/weeks/9999/52").status_code == 422  # ends in year 10000
    assert client.get("/api/moments/days/2015-02-30").status_code == 422
    everything = client.get("/api/moments").json()
    assert {m["kind"] for m in everything} == {"trip", "event"}
    assert len(everything) == len(events) + 1

    # Dates filter by local date, inclusive; a trip overlapping the range is listed.
    july = client.get("/api/moments", params={"from": "2015-07-01", "to": "2015-07-03"}).json()
    assert {m["kind"] for m in july} == {"trip", "event"}
    assert all(m["end_date"] >= "2015-07-01" and m["start_date"] <= "2015-07-03" for m in july)
    assert client.get("/api/moments", params={"from": "2016-01-01"}).json() == []

    # Bad input is a clear 4xx.
    assert (
        client.get("/api/moments", params={"from": "2015-07-03", "to": "2015-07-01"}).status_code
        == 400
    )
    assert client.get("/api/moments", params={"from": "yesterday"}).status_code == 422
    assert client.get("/api/moments", params={"kind": "holiday"}).status_code == 422
    assert client.get("/api/moments/nope").status_code == 404
    assert client.get("/api/moments/" + "x" * 200).status_code == 422

    # Another owner sees none of it: the same id is 404, and trips need their own `places`.
    other = server.client(make_user("other@example.org"))
    assert other.get(f"/api/moments/{trip['id']}").status_code == 404
    assert other.get("/api/moments").json() == []
    assert other.get("/api/moments", params={"kind": "trip"}).status_code == 403
    assert httpx.get(f"{server.url}/api/moments").status_code == 401

    # Without `places`: no trips, and events keep their photos but say nothing about places.
    client.put("/api/consent", json={"scopes": {"places": False}})
    assert client.get("/api/moments", params={"kind": "trip"}).status_code == 403
    assert client.get(f"/api/moments/{trip['id']}").status_code == 404
    blind = client.get("/api/moments").json()
    assert blind and all(m["kind"] == "event" for m in blind)
    assert all(m["places"] == [] and m["distance_from_home_km"] is None for m in blind)
    assert sorted(a for m in blind for a in m["asset_ids"]) == sorted(members)
