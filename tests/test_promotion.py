"""Promotion (V6): flows of one environment → a branch, a commit and a pull request
(checked by a GitHub fake against the documented API); once merged, the target
environment deploys exactly the merged content."""
from __future__ import annotations

import json

from sidecar.api.gen.flowgitops.v1 import gitops_pb2 as pb
from sidecar.core.schedule import Trigger
from tests import flowgen
from tests.constants import CANARY, GIT_USER
from tests.servers.githttp import GitHttpServer
from tests.servers.providers import FakeGitHub


class GitBranches(dict):
    """The fake's branch table, falling back to the real repository's refs."""

    def __init__(self, git_dir, factory):
        super().__init__()
        self.git_dir, self.factory = git_dir, factory

    def _real(self, name):
        r = self.factory.git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}", cwd=self.git_dir, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def __contains__(self, name):
        return dict.__contains__(self, name) or self._real(name) is not None

    def __getitem__(self, name):
        return dict.__getitem__(self, name) if dict.__contains__(self, name) else self._real(name)


def test_promote_opens_a_pull_request_and_the_target_deploys_the_merged_content(
        flowapp, nodered_open_server, repos, running_sidecar, make_sidecar, tmp_path):
    remote = repos.create("org/flows")
    remote.commit({"README.md": "environments"}, "Start")
    git = GitHttpServer(repos.root, GIT_USER, CANARY).start()
    fake = FakeGitHub(token=CANARY)
    try:
        fake.add_repo("org/flows", {})
        fake.repos["org/flows"].branches = GitBranches(remote.path, repos)
        # the source environment ("test", push mode) runs three flows
        flowapp.deploy(flowgen.example(tabs=3), "full")
        source = running_sidecar(flowapp, git.url_for("org/flows"), protocol="https", extra={
            "mode": "push", "repository": {"provider": "github", "username": "global.SECRETS.git.username",
                                           "password": "global.SECRETS.git.token", "layout": "split"},
            "promotion": {"api_base": fake.api_root}})
        source.app.service.wait_idle(30)
        res = source.stub.Promote(pb.PromoteRequest(flow_ids=["t1"], target_environment="production"), metadata=source.md)
        assert res.number == 1 and res.branch.startswith("promote/test-to-production-")
        assert "production/flows/flow-1.json" in res.files and "production/subflows/double-it.json" not in res.files
        assert fake.errors == []  # the request matched GitHub's documented shape
        pr = fake.repos["org/flows"].pulls[1]
        assert pr["title"] == "Promote Flow 1 from test to production"
        assert CANARY not in json.dumps(pr)

        # a reviewer edits the promoted flow on the branch, then the PR is merged
        work = repos.root / ".work" / "org" / "flows"
        repos.git("fetch", "-q", "origin", cwd=work)
        repos.git("checkout", "-q", "-B", "review", f"origin/{res.branch}", cwd=work)
        promoted = json.loads((work / "production/flows/flow-1.json").read_text())
        promoted[0]["label"] = "Flow 1 (reviewed)"
        (work / "production/flows/flow-1.json").write_text(json.dumps(promoted, indent=4))
        who = ("-c", "user.name=Rita Reviewer", "-c", "user.email=rita@example.com")
        repos.git(*who, "commit", "-qam", "Review edit", cwd=work)
        repos.git("push", "-q", "origin", f"review:{res.branch}", cwd=work)
        repos.git("checkout", "-q", "main", cwd=work)
        repos.git("pull", "-q", "origin", "main", cwd=work)
        repos.git(*who, "merge", "-q", "--no-ff", "-m", "Merge pull request #1", f"origin/{res.branch}", cwd=work)
        repos.git("push", "-q", "origin", "main", cwd=work)
        merged = remote.head()
        fake.merge(1, merged)
        assert source.app.promoter is not None

        # the target environment ("production", promotion mode) deploys its folder at the merged commit
        target = make_sidecar(nodered_open_server, remote.file_url, extra={"environment": "production", "mode": "promotion",
                                                                          "data_dir": str(tmp_path / "target-data")})
        nodered_open_server.reset()
        job = target.store.job(target.engine.run(Trigger("force")))
        assert job.status == "succeeded", job.error_message
        flows, _ = nodered_open_server.flows()
        assert next(n for n in flows if n["id"] == "t1")["label"] == "Flow 1 (reviewed)"  # exactly what was merged
        assert not any(n["id"] in ("t0", "t2") for n in flows)  # only the promoted flow
        assert target.board.current()["local"]["sha"] == merged
    finally:
        fake.stop()
        git.stop()
