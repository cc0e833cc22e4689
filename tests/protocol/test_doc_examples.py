"""Every `curl` example against /filter or /prioritize in the README and docs/placement.md gives exactly the
answer shown under it."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.server import REPO, Served

pytestmark = pytest.mark.process

EXAMPLE = re.compile(r"```sh\n(curl [^\n]*)\n```\n```json\n(.*?)\n```", re.S)
VERBS = ("/filter", "/prioritize")  # stateless: safe against the shared server
DOCS = ("README.md", "docs/placement.md")


def examples() -> list:
    found = []
    text = "\n".join((REPO / doc).read_text() for doc in DOCS)
    for command, answer in EXAMPLE.findall(text):
        url = shlex.split(command)[-1]
        path = "/" + url.split("/", 1)[1]
        if path in VERBS:
            found.append(pytest.param(command, path, answer, id=f"{path}-{len(found)}"))
    assert len(found) >= 4, f"{DOCS} lost their curl examples"
    return found


@pytest.mark.parametrize(("command", "path", "answer"), examples())
def test_doc_curl_answers_as_shown(server: Served, command: str, path: str, answer: str) -> None:
    args = shlex.split(command)
    data = args[args.index("--data") + 1]
    body = (REPO / data[1:]).read_bytes() if data.startswith("@") else data.encode()

    response = server.post(path, body)

    assert response.data.decode().removesuffix("\n") == answer  # a code block cannot show the final newline
