"""The command line (click's CliRunner): check-policy, simulate, allocate, release, and their exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from extender.app import create_app
from extender.cli.commands import EXIT_INVALID, EXIT_NO, EXIT_OK, EXIT_STORE, main
from extender.config.settings import Settings
from tests.allocation.test_allocations_http import SAMPLE, on_site
from tests.conftest import FIXTURES, POLICY_DIR

CONF_DIR = FIXTURES / "global-scheduler-conf"
SAMPLES = POLICY_DIR / "samples"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("CONFIG_BASE", "SITE_EXTENDER_POLICY", "SITE_EXTENDER_INVENTORY", "SITE_EXTENDER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(POLICY_DIR.parent)
    return CliRunner()


@pytest.fixture
def client(tmp_path: Path):
    return create_app({"SETTINGS": Settings(policy=POLICY_DIR, data_dir=tmp_path / "http"), "TESTING": True}).test_client()


@pytest.mark.parametrize("command", [[], ["serve"], ["check-policy"], ["simulate"], ["allocate"], ["release"],
                                     ["resources"]],
                         ids=["main", "serve", "check-policy", "simulate", "allocate", "release", "resources"])
def test_every_command_has_help_with_the_exit_codes(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Exit codes:" in result.output and "3  the allocation store cannot be used" in result.output


# --- check-policy -------------------------------------------------------------------------------------


def test_check_policy_summarises_the_sample_inventory(runner: CliRunner) -> None:
    result = runner.invoke(main, ["check-policy"])
    assert result.exit_code == EXIT_OK, result.output
    sites = json.loads((POLICY_DIR / "inventory" / "sites.json").read_text())["sites"]
    regions = sorted({s["region"] for s in sites})
    lines = result.output.splitlines()
    assert lines[0] == "policy policy/policy.yaml: valid"
    assert f"sites: {len(sites)} in {len(regions)} region(s)" in lines
    for region in regions:
        ids = [s["id"] if s["status"].lower() not in ("offline", "sellout") else f"{s['id']} ({s['status']})"
               for s in sites if s["region"] == region]
        assert f"  {region} ({len(ids)}): {', '.join(ids)}" in lines


def test_check_policy_reads_the_original_conf_directory_as_it_is(runner: CliRunner) -> None:
    result = runner.invoke(main, ["check-policy", str(CONF_DIR)])
    assert result.exit_code == EXIT_OK, result.output
    assert result.output.splitlines()[:2] == [f"policy {CONF_DIR / 'edgecloud_policy.yaml'}: valid", f"inventory {CONF_DIR}"]
    assert "  region1 (1): site1" in result.output
    assert "  region1/eip_type_name: 18 free of 20" in result.output  # size 20, used 2
    assert "  region1/az1/pool1: SAS, 2000 GB (0 provisioned)" in result.output


def test_check_policy_lists_every_problem_with_file_and_field(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, broken)
    text = (broken / "policy.yaml").read_text()
    (broken / "policy.yaml").write_text(text.replace("- name: Flavor\n", "- name: Flavr\n", 1))
    flavors = json.loads((broken / "inventory" / "flavors.json").read_text())
    flavors["flavors"][1]["ram"] = "lots"
    (broken / "inventory" / "flavors.json").write_text(json.dumps(flavors))

    result = runner.invoke(main, ["check-policy", str(broken)])
    assert result.exit_code == EXIT_INVALID
    lines = result.stderr.splitlines()
    assert lines[0] == "2 problem(s):"
    index = [p["name"] for p in yaml.safe_load(text)["predicates"]].index("Flavor")
    assert lines[1].startswith(f"  {broken / 'policy.yaml'}: predicates[{index}].name: unknown predicate 'Flavr'")
    assert lines[2] == f"  {broken / 'inventory' / 'flavors.json'}: Expected `int`, got `str` - at `$.flavors[1].ram`"


@pytest.mark.parametrize(("text", "problem"), [
    ("", "the policy is empty: it must list its predicates (and priorities)"),
    ("predicates:\n", "predicates: none listed, so every site would pass"),
    ("predicates: [{name: Flavor}]\npriorities:\n- name: Flavor\n  weigth: 4\n",
     "unknown field weigth (did you mean weight?) - at `$.priorities[0]`"),
], ids=["empty", "no-predicates", "misspelled-key"])
def test_check_policy_refuses_what_would_let_every_site_pass(runner: CliRunner, tmp_path: Path, text: str,
                                                            problem: str) -> None:
    broken = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, broken)
    (broken / "policy.yaml").write_text(text)

    result = runner.invoke(main, ["check-policy", str(broken)])

    assert result.exit_code == EXIT_INVALID
    assert result.stderr.splitlines()[1].startswith(f"  {broken / 'policy.yaml'}: {problem}")


def test_check_policy_of_a_missing_directory(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["check-policy", str(tmp_path / "nope")])
    assert result.exit_code == EXIT_INVALID
    assert f"{tmp_path / 'nope'}: policy file not found" in result.stderr


# --- simulate -----------------------------------------------------------------------------------------


def test_simulate_prints_the_table(runner: CliRunner, client) -> None:
    args = (SAMPLES / "filter-cache.json").read_bytes()
    result = runner.invoke(main, ["simulate", str(SAMPLES / "filter-cache.json")])
    assert result.exit_code == EXIT_OK, result.output
    filtered = client.post("/filter", data=args, content_type="application/json").get_json()
    scores = {h["Host"]: h["Score"] for h in client.post("/prioritize", data=args, content_type="application/json").get_json()}
    lines = result.output.splitlines()
    assert lines[0] == "pod default/smallvm, policy policy/policy.yaml"
    header = lines[1].split()
    assert header[:2] == ["SITE", "RESULT"] and header[-2:] == ["FINAL", "REASON"]
    summary_end = next(i for i, line in enumerate(lines) if line.endswith("node(s) pass"))
    rows = {line.split()[0]: line for line in lines[2:summary_end]}
    assert list(rows) == json.loads(args)["NodeNames"]
    for node in filtered["NodeNames"]:
        cells = rows[node].split()
        assert cells[1] == "pass" and cells[-1] == str(scores[node])
        assert len(cells) == len(header) - 1  # no reason
    for node, reason in filtered["FailedAndUnresolvableNodes"].items():
        assert rows[node].split()[1] == "unresolvable"
        assert rows[node].endswith(f"  {scores[node]}  {reason}")
    assert lines[summary_end] == f"{len(filtered['NodeNames'])} of {len(rows)} node(s) pass"


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.json")))
def test_simulate_json_is_byte_for_byte_what_the_routes_answer(runner: CliRunner, client, sample: str) -> None:
    args = (SAMPLES / sample).read_bytes()
    result = runner.invoke(main, ["simulate", "--json", str(SAMPLES / sample)])
    assert result.exit_code in (EXIT_OK, EXIT_NO)
    filtered = client.post("/filter", data=args, content_type="application/json").data
    prioritized = client.post("/prioritize", data=args, content_type="application/json").data
    assert result.stdout_bytes == filtered + b"\n" + prioritized + b"\n"


def test_simulate_exits_1_when_no_node_passes(runner: CliRunner, tmp_path: Path) -> None:
    args = json.loads((SAMPLES / "filter-cache.json").read_text())
    args["NodeNames"] = ["site3"]  # region2; the pod wants region1
    (tmp_path / "args.json").write_text(json.dumps(args))
    result = runner.invoke(main, ["simulate", str(tmp_path / "args.json")])
    assert result.exit_code == EXIT_NO
    assert "0 of 1 node(s) pass" in result.output.splitlines()


def test_simulate_refuses_what_is_not_extender_args(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "args.json").write_text('{"Pod": {}, "Nodes": []}')
    result = runner.invoke(main, ["simulate", str(tmp_path / "args.json")])
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == (f"site-extender: {tmp_path / 'args.json'}: invalid ExtenderArgs:"
                             " Expected `object | null`, got `array` - at `$.Nodes`\n")


def test_simulate_with_another_policy(runner: CliRunner) -> None:
    result = runner.invoke(main, ["simulate", "--policy", str(CONF_DIR), str(SAMPLES / "filter-cache.json")])
    # the conf/ inventory has site1 only: site2 and site3 are not in it
    assert result.exit_code == EXIT_OK, result.output
    assert "site2  unresolvable" in result.output
    assert "SiteAvailability: site site2 (node site2) is not in the inventory" in result.output


# --- allocate / release -------------------------------------------------------------------------------


def write(tmp_path: Path, body: dict, name: str = "req.json") -> str:
    (tmp_path / name).write_text(json.dumps(body))
    return str(tmp_path / name)


def test_allocate_answers_as_the_api_and_keeps_the_allocation(runner: CliRunner, tmp_path: Path, client) -> None:
    data = tmp_path / "data"
    result = runner.invoke(main, ["allocate", "--data-dir", str(data), str(CONF_DIR / "sample_allocation_req_body.json")])
    assert result.exit_code == EXIT_OK, result.output
    answer = json.loads(result.stdout)
    http = client.post("/v1/allocations", json=SAMPLE).get_json()  # a separate store: same placement
    http["allocation"]["id"] = answer["allocation"]["id"]
    assert answer == http

    # site2 holds 2 replicas of the sample; one more with the first kept does not fit if it lands there
    assert runner.invoke(main, ["allocate", "--data-dir", str(data), write(tmp_path, on_site("site2", 2))]).exit_code \
        == (EXIT_NO if answer["allocation"]["resource_groups"][0]["selected"]["node_id"] == "site2" else EXIT_OK)

    released = runner.invoke(main, ["release", "--data-dir", str(data), answer["allocation"]["id"]])
    assert released.exit_code == EXIT_OK and released.output == f"released {answer['allocation']['id']}\n"
    again = runner.invoke(main, ["release", "--data-dir", str(data), answer["allocation"]["id"]])
    assert again.exit_code == EXIT_NO
    assert again.stderr == f"site-extender: no allocation {answer['allocation']['id']} in {data / 'allocations.db'}\n"


def test_allocate_that_does_not_fit_prints_the_reasons_and_keeps_nothing(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["allocate", "--data-dir", str(tmp_path), write(tmp_path, on_site("site2", 3))])
    assert result.exit_code == EXIT_NO
    body = json.loads(result.stdout)
    assert body["error"] == "nothing allocated: 3 replica(s) of RTC asked, the sites can hold 2"
    assert body["reasons"]["site2"].startswith("holds 2 replica(s) of 1 VM(s) each; one more fails: Volume: SAS has 20 GB")
    assert result.stderr == "site-extender: nothing allocated: 3 replica(s) of RTC asked, the sites can hold 2\n"


def test_allocate_invalid_request_lists_the_fields(runner: CliRunner, tmp_path: Path) -> None:
    body = json.loads(json.dumps(SAMPLE))
    body["allocation"]["replicas"] = 0
    body["allocation"]["resource_group"]["resources"][0]["storage"] = {"NVME": 1}
    path = write(tmp_path, body)
    result = runner.invoke(main, ["allocate", "--data-dir", str(tmp_path), path])
    assert result.exit_code == EXIT_INVALID
    assert result.stderr.splitlines() == [
        f"site-extender: {path}: invalid allocation request:",
        "  allocation.replicas: must be > 0, got 0",
        "  allocation.resource_group.resources[0].storage.NVME: unknown volume type 'NVME'; known: SAS, SSD",
    ]


def test_allocate_without_a_writable_data_dir_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = runner.invoke(main, ["allocate", "--data-dir", str(tmp_path / "file" / "data"),
                                  str(CONF_DIR / "sample_allocation_req_body.json")])
    assert result.exit_code == EXIT_STORE
    assert result.stderr.startswith(f"site-extender: allocation store unavailable: cannot create the data directory {tmp_path / 'file' / 'data'}")


@pytest.mark.parametrize("command", [["allocate", str(CONF_DIR / "sample_allocation_req_body.json")],
                                     ["release", "some-id"]], ids=["allocate", "release"])
def test_with_the_state_in_the_cluster_allocate_and_release_refuse_and_name_the_api(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setenv("SITE_EXTENDER_STATE", "cluster")
    result = runner.invoke(main, [command[0], "--data-dir", str(tmp_path / "data"), *command[1:]])
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == ("site-extender: SITE_EXTENDER_STATE=cluster keeps the allocations in the cluster, where "
                             "this command cannot take its turn with the replicas: use the extender's allocation API "
                             "(POST /v1/allocations, DELETE /v1/allocations/ID on its API port) instead\n")
    assert not (tmp_path / "data").exists()  # nothing kept where no replica looks


def test_allocate_a_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["allocate", "--data-dir", str(tmp_path), str(tmp_path / "nope.json")])
    assert result.exit_code == EXIT_INVALID
    assert result.stderr == f"site-extender: cannot read {tmp_path / 'nope.json'}: No such file or directory\n"


def test_a_server_on_the_same_data_dir_counts_what_allocate_took(runner: CliRunner, tmp_path: Path) -> None:
    from tests.allocation.test_allocations_http import vm_args

    data = tmp_path / "shared"
    api = create_app({"SETTINGS": Settings(policy=POLICY_DIR, data_dir=data), "TESTING": True}).test_client()
    assert api.post("/filter", json=vm_args(["site2"])).get_json()["NodeNames"] == ["site2"]
    took = runner.invoke(main, ["allocate", "--data-dir", str(data), "--id", "cli-1", write(tmp_path, on_site("site2", 2))])
    assert took.exit_code == EXIT_OK, took.output
    assert api.post("/filter", json=vm_args(["site2"])).get_json()["NodeNames"] == []  # site2 holds 2: both taken
    assert api.get("/v1/allocations/cli-1").get_json() == json.loads(took.stdout)
    assert runner.invoke(main, ["allocate", "--data-dir", str(data), "--id", "cli-1", write(tmp_path, SAMPLE)]).exit_code == EXIT_NO
    assert api.delete("/v1/allocations/cli-1").status_code == 204
    assert api.post("/filter", json=vm_args(["site2"])).get_json()["NodeNames"] == ["site2"]


# --- resources ----------------------------------------------------------------------------------------


GPU_REQUEST = {"flavors": [{"flavorID": "p2s.2xlarge.8"}, {"flavorID": "c6.large.2"}],
               "resourceCommonInfo": {"selector": {"regions": [{"region": "region1"}]}}}


@pytest.mark.parametrize("document", [
    pytest.param(GPU_REQUEST, id="a-vm-request"),
    pytest.param({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vm", "annotations": {
        "site-extender.io/vm": json.dumps(GPU_REQUEST)}}, "spec": {"containers": []}}, id="a-pod"),
    pytest.param({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vms"}, "spec": {"template": {
        "metadata": {"annotations": {"site-extender.io/vm": yaml.safe_dump(GPU_REQUEST)}},
        "spec": {"containers": []}}}}, id="a-deployment-yaml-annotation"),
])
def test_resources_of_a_vm_with_two_flavors_of_two_types(runner: CliRunner, tmp_path: Path, document: dict) -> None:
    """The smallest vCPU and RAM of the two, on the whole site's figures only (the types differ)."""
    path = tmp_path / "vm.yaml"
    path.write_text(yaml.safe_dump(document))
    result = runner.invoke(main, ["resources", str(path)])
    assert result.exit_code == 0, result.output
    figures = {"site-extender.io/vm": "1", "site-extender.io/vcpu": "2", "site-extender.io/ram-mb": "4096",
               "site-extender.io/instances": "1"}
    assert yaml.safe_load(result.output) == {"resources": {"requests": figures, "limits": figures}}


def test_resources_of_one_site_node(runner: CliRunner) -> None:
    result = runner.invoke(main, ["resources", "--site", "site1"])
    assert result.exit_code == 0, result.output
    site1 = yaml.safe_load(result.output)["site1"]
    assert (site1["site-extender.io/vcpu.gpu"], site1["site-extender.io/ram-mb.gpu"]) == ("40", "262144")


@pytest.mark.parametrize("args, document, code, message", [
    pytest.param(["--site", "site99"], None, 1, "site-extender: no site 'site99' in the inventory", id="no-such-site"),
    pytest.param([], {"flavors": [{"flavorID": "c6.larg.2"}]}, 2, "unknown flavor 'c6.larg.2'", id="unknown-flavor"),
    pytest.param([], {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}, 2,
                 "not a VM pod: no site-extender.io/vm annotation and no spec.virtualMachine", id="plain-pod"),
    pytest.param([], {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}, 2,
                 "a Service without spec.template", id="no-pod-template"),
])
def test_resources_says_what_is_wrong(runner: CliRunner, tmp_path: Path, args: list[str], document: dict | None,
                                      code: int, message: str) -> None:
    if document is not None:
        path = tmp_path / "input.yaml"
        path.write_text(yaml.safe_dump(document))
        args = [str(path)]
    result = runner.invoke(main, ["resources", *args])
    assert result.exit_code == code
    assert message in result.output
