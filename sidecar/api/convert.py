"""Between the sidecar's plain values (status dicts, jobs, config) and the API messages."""
from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from ..adapters.store import Job
from ..core.config import Config
from .gen.flowgitops.v1 import gitops_pb2 as pb

STATE = {name: getattr(pb, f"SYNC_STATE_{name.upper()}") for name in
         ("not_configured", "paused", "in_sync", "behind", "syncing", "recovering", "pending_approval", "error")}
JOB_STATUS = {name: getattr(pb, f"JOB_STATUS_{name.upper()}") for name in
              ("running", "succeeded", "noop", "failed", "interrupted", "pending_approval", "approved", "rejected")}
# Editable repository fields carried by the API (others stay operator settings).
REPO_FIELDS = ("protocol", "url", "branch", "path", "flow_file", "provider", "username", "password",
               "ssh_key", "ssh_passphrase", "known_hosts")
SYNC_FIELDS = ("interval", "require_approval", "dependency_policy")


def ts(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    t = Timestamp()
    t.FromNanoseconds(int(seconds * 1e9))
    return t


def commit(d: dict | None) -> pb.Commit | None:
    if not d:
        return None
    return pb.Commit(sha=d["sha"], short_sha=d.get("short") or d["sha"][:8], author=d.get("author", ""),
                     email=d.get("email", ""), date=d.get("date", ""), subject=d.get("subject", ""),
                     body=d.get("body", ""), link=d.get("link", ""))


def status(s: dict, interval: int) -> pb.Status:
    out = pb.Status(
        state=STATE.get(s["state"], pb.SYNC_STATE_UNSPECIFIED), configured=s["configured"], paused=s["paused"],
        mode=s["mode"], environment=s["environment"], behind=s["behind"], phase=s["phase"], progress=s["progress"],
        reason_code=s["reason_code"], reason_message=s["reason_message"], pending_commit=s["pending_commit"],
        remote=commit(s["remote"]), local=commit(s["local"]), next_sync_at=ts(s["next_sync_at"]),
        last_sync_at=ts(s["last_sync_at"]), last_success_at=ts(s["last_success_at"]),
        consecutive_failures=s["consecutive_failures"], seq=s["seq"], interval_seconds=interval, health=s.get("health", ""),
        import_errors=[pb.FileImportError(path=e["path"], message=e["message"]) for e in s.get("import_errors") or []],
    )
    if s["drift"]:
        d = s["drift"]
        out.drift.CopyFrom(pb.Drift(rev=d.get("rev", ""), detected_at=ts(d.get("detected_at")),
                                    message=d.get("message", ""), backup_id=int(d.get("backup") or 0)))
    if s.get("recovery"):
        out.recovery.CopyFrom(recovery(s["recovery"]))
    if s["history_rewritten"]:
        h = s["history_rewritten"]
        out.history_rewritten.CopyFrom(pb.HistoryRewrite(from_sha=h["from"], to_sha=h["to"], at=ts(h.get("at"))))
    return out


def recovery(r: dict | None) -> pb.Recovery:
    r = r or {}
    return pb.Recovery(unresolved_types=r.get("unresolved_types", []), failed_modules=r.get("failed_modules", []),
                       restart_required=r.get("restart_required", []), installed=r.get("installed", []))


def job(j: Job | dict) -> pb.Job:
    d = j.to_dict() if isinstance(j, Job) else j
    return pb.Job(
        id=d["id"], trigger=d["trigger"], status=JOB_STATUS.get(d["status"], pb.JOB_STATUS_UNSPECIFIED), phase=d["phase"],
        from_commit=d["from_commit"], to_commit=d["to_commit"], started_at=ts(d["started_at"]),
        finished_at=ts(d["finished_at"]), duration_seconds=d.get("duration") or 0.0, attempts=d["attempts"],
        error_code=d["error_code"], error_message=d["error_message"], retry_of=d["retry_of"] or 0,
        detail_json=json.dumps(d["detail"], sort_keys=True),
    )


def config(cfg: Config) -> pb.Config:
    return pb.Config(
        repository=pb.RepositoryConfig(**{f: getattr(cfg.repository, f) for f in REPO_FIELDS}),
        sync=pb.SyncConfig(**{f: getattr(cfg.sync, f) for f in SYNC_FIELDS}),
    )


def config_changes(msg: pb.Config) -> dict:
    """The editable sections as plain data, ready for `App.save_config` / validation."""
    return {
        "repository": {f: getattr(msg.repository, f) for f in REPO_FIELDS},
        "sync": {f: getattr(msg.sync, f) for f in SYNC_FIELDS},
    }


def plan(p: dict) -> pb.Plan:
    return pb.Plan(
        commit=commit(p["commit"]), flow_file=p["flow_file"], applied_commit=p["applied_commit"],
        changes=[pb.PlanChange(**c) for c in p["changes"]], summary=p["summary"],
        types_needed=p["types_needed"], types_missing=p["types_missing"], node_count=p["node_count"],
    )

