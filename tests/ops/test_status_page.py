"""`GET /`, the status page: plain HTML that shows the policy in force and the last reload error, each
site's stock per flavor as a bar, and the recent decisions with their reasons; what a person sees is
checked in headless Chromium (the screenshot with JavaScript off), skipped when Chromium is not installed."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from extender.app import create_app
from extender.config.settings import Settings
from extender.ops.recent import MAX_DECISIONS
from tests.conftest import POLICY_DIR
from tests.server import serve

SAMPLES = POLICY_DIR / "samples"
RTC = SAMPLES / "allocations" / "rtc.json"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


class Text(HTMLParser):
    """The text a person reads (no markup), and the widths of the stock bars by their title."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.bars: dict[str, str] = {}
        self.scripts = 0
        self._title: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "span" and "bar" in (found.get("class") or ""):
            self._title = found.get("title")
        elif tag == "span" and self._title is not None:
            self.bars.setdefault(self._title, found.get("style") or "")
            self._title = None

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.parts.append(" ".join(data.split()))

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def read(html: str) -> Text:
    parser = Text()
    parser.feed(html)
    return parser


def copy_policy(tmp_path: Path) -> Path:
    target = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, target, ignore=shutil.ignore_patterns("samples"))
    return target


def test_the_page_shows_policy_sites_and_decisions(tmp_path: Path) -> None:
    policy = copy_policy(tmp_path)
    app = create_app({"SETTINGS": Settings(policy=policy, kube="none", data_dir=tmp_path / "data"), "TESTING": True})
    client = app.test_client()
    client.post("/filter", data=(SAMPLES / "filter-all-sites.json").read_bytes(), content_type="application/json")
    client.put("/v1/allocations/rtc-1", data=RTC.read_bytes(), content_type="application/json")

    response = client.get("/")

    assert response.status_code == 200 and response.mimetype == "text/html"
    page = read(response.get_data(as_text=True))
    assert page.scripts == 0
    assert f"Policy {policy / 'policy.yaml'}" in page.text
    assert "Generation 1," in page.text and "Last reload error none" in page.text
    assert "site4 Sellout region1 / az5 c6.large.2" in page.text
    assert page.bars["2 of 3 left"] == "width: 67%"  # site2 c6.large.2 after rtc-1 took one
    assert "filter default/demovm 2 of 12 pass RegionAndAZ: 6, SiteAvailability: 2, ExclusiveSite: 1, EipAvailability: 1" in page.text
    assert "site5: EipAvailability: pool region1-static of region1 has 0 left for site5 (size 16, used 16, placed 0)" in page.text

    (policy / "policy.yaml").write_text("predicates:\n- name: Flavr\n")
    assert app.extensions["site_extender"].policies.reload() is False
    page = read(client.get("/").get_data(as_text=True))
    assert "Last reload error" in page.text and "unknown predicate 'Flavr' (did you mean Flavor?)" in page.text
    assert "the last good policy keeps serving" in page.text


def test_the_decisions_kept_are_bounded(tmp_path: Path) -> None:
    app = create_app({"SETTINGS": Settings(policy=POLICY_DIR, kube="none", data_dir=tmp_path), "TESTING": True})
    client = app.test_client()
    body = json.loads((SAMPLES / "filter-cache.json").read_text())
    for i in range(MAX_DECISIONS + 20):
        body["Pod"]["metadata"]["name"] = f"vm-{i}"
        client.post("/filter", json=body)

    text = read(client.get("/").get_data(as_text=True)).text

    assert len(re.findall(r"filter default/vm-\d+ 2 of 3 pass", text)) == MAX_DECISIONS
    assert f"default/vm-{MAX_DECISIONS + 19} " in text and "default/vm-0 " not in text


def test_a_long_inventory_is_shown_in_part(tmp_path: Path) -> None:
    client = create_app({"SETTINGS": Settings(policy=POLICY_DIR, kube="none", data_dir=tmp_path), "TESTING": True}).test_client()
    text = read(client.get("/?sites=3").get_data(as_text=True)).text
    assert "Showing 3 of 12 sites" in text and "site3 active" in text and "site4 " not in text
    refused = client.get("/?sites=0")
    assert refused.status_code == 400
    assert refused.get_json() == {"error": "sites: expected a positive whole number of sites to show, got '0'"}


# --- in a browser ---------------------------------------------------------------------------------------


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium): the status page is not checked in a browser")


def browse(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90,
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.process
def test_a_person_sees_the_page_in_chromium(tmp_path: Path) -> None:
    binary = chromium()
    with serve(tmp_path, env={"SITE_EXTENDER_DATA_DIR": str(tmp_path / "data")}) as served:
        served.http.request("PUT", served.url + "/v1/allocations/rtc-1", body=RTC.read_bytes(),
                            headers={"Content-Type": "application/json"})
        served.post("/filter", (SAMPLES / "filter-all-sites.json").read_bytes())
        # --dump-dom serializes with the browser's own script engine; the page has no script of its own
        dom = browse(binary, tmp_path / "profile-dom", "--dump-dom", served.url + "/")
        shot = tmp_path / "status.png"
        picture = browse(binary, tmp_path / "profile-shot", "--disable-javascript",
                         f"--screenshot={shot}", "--window-size=1280,1600", served.url + "/")

    assert dom.returncode == 0, dom.stderr[-2000:]
    page = read(dom.stdout)
    assert page.scripts == 0
    assert "site-extender" in page.text and "Sites" in page.text and "Recent decisions" in page.text
    assert page.bars["2 of 3 left"] == "width: 67%"
    assert "filter default/demovm 2 of 12 pass" in page.text
    assert "site4: SiteAvailability: site site4 is Sellout" in page.text
    assert picture.returncode == 0, picture.stderr[-2000:]
    assert png_size(shot) == (1280, 1600)
