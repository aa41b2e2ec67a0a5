"""The API's one implementation, shared by the native gRPC and the gRPC-web front ends.

Methods are named after the RPCs in protos/flowgitops/v1/gitops.proto and take and
return the generated messages. Failures are `ApiError`s carrying a gRPC status
code name; each front end turns them into its own wire form. Blocking work (git,
the Flow App) runs in worker threads, never on the event loop.
"""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

from ..app import App, ConfigLocked
from ..core.config import ConfigError, Violation, merge, validate
from ..core.errors import SyncError
from . import convert
from .events import EventHub
from .gen.flowgitops.v1 import gitops_pb2 as pb

HEARTBEAT_SECONDS = 15.0


class ApiError(Exception):
    """`code` is a grpc.StatusCode name (e.g. "FAILED_PRECONDITION")."""

    def __init__(self, code: str, message: str, violations: list[Violation] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.violations = violations or []


# How reason codes of SyncError map to gRPC status codes.
_UNAVAILABLE = ("git_unreachable", "git_timeout", "nodered_unreachable", "nodered_flows_not_running",
                "provider_unreachable", "provider_rate_limited")


def from_sync_error(err: SyncError) -> ApiError:
    if err.code in _UNAVAILABLE:
        return ApiError("UNAVAILABLE", f"{err.code}: {err.message}")
    if err.code in ("git_auth_failed", "nodered_auth_failed", "git_host_key_rejected"):
        return ApiError("FAILED_PRECONDITION", f"{err.code}: {err.message}")
    return ApiError("FAILED_PRECONDITION", f"{err.code}: {err.message}")


class GitOpsApi:
    def __init__(self, app: App, hub: EventHub, heartbeat: float = HEARTBEAT_SECONDS, webhooks=None) -> None:
        self.app = app
        self.webhooks = webhooks
        self.hub = hub
        self.heartbeat = heartbeat

    def _status(self) -> pb.Status:
        return convert.status(self.app.board.current(), self.app.cfg.sync.interval)

    def _require_configured(self) -> None:
        if not self.app.cfg.configured:
            raise ApiError("FAILED_PRECONDITION", "no repository is configured yet: save a configuration first")

    # --- status ------------------------------------------------------------
    async def GetStatus(self, request: pb.GetStatusRequest) -> pb.GetStatusResponse:
        return pb.GetStatusResponse(status=self._status())

    async def WatchStatus(self, request: pb.WatchStatusRequest) -> AsyncIterator[pb.WatchStatusResponse]:
        sub = self.hub.open()  # registered before the snapshot: no event can fall in between
        try:
            yield pb.WatchStatusResponse(snapshot=self._status())
            async for kind, payload in sub.events(self.heartbeat):
                if kind == "message":  # already a WatchStatusResponse, built once for all streams
                    yield payload
                elif kind == "heartbeat":
                    yield pb.WatchStatusResponse(heartbeat=pb.Heartbeat(at=convert.ts(time.time())))
        finally:
            sub.close()

    # --- configuration -----------------------------------------------------
    async def GetConfig(self, request: pb.GetConfigRequest) -> pb.GetConfigResponse:
        facts = self.app.board.facts()
        return pb.GetConfigResponse(config=convert.config(self.app.cfg), locked=facts.configured and not facts.paused,
                                    environment=self.app.cfg.environment, mode=self.app.cfg.mode)

    async def ValidateConfig(self, request: pb.ValidateConfigRequest) -> pb.ValidateConfigResponse:
        try:
            candidate = merge(self.app.cfg, convert.config_changes(request.config))
            problems = validate(candidate, self.app.secrets.exists)
        except ConfigError as err:
            problems = err.violations
        return pb.ValidateConfigResponse(valid=not problems, violations=[
            pb.FieldViolation(field=v.field, description=v.message) for v in problems])

    async def SaveConfig(self, request: pb.SaveConfigRequest) -> pb.SaveConfigResponse:
        changes = convert.config_changes(request.config)
        try:
            result = await asyncio.to_thread(self.app.save_config, changes)
        except ConfigLocked as err:
            raise ApiError("FAILED_PRECONDITION", str(err)) from None
        except ConfigError as err:
            raise ApiError("INVALID_ARGUMENT", "the configuration is not valid", err.violations) from None
        error = result["error"] or {}
        return pb.SaveConfigResponse(config=convert.config(self.app.cfg), remote_head=result["remote_head"],
                                     connect_error_code=error.get("code", ""), connect_error_message=error.get("message", ""),
                                     status=self._status())

    # --- controls ----------------------------------------------------------
    async def ForcePull(self, request: pb.ForcePullRequest) -> pb.ForcePullResponse:
        self._require_configured()
        if self.app.board.facts().paused:
            raise ApiError("FAILED_PRECONDITION", "sync is paused: resume it to pull")
        return pb.ForcePullResponse(result=self.app.service.trigger("force"))

    async def Pause(self, request: pb.PauseRequest) -> pb.PauseResponse:
        self._require_configured()
        await asyncio.to_thread(self.app.service.pause)
        return pb.PauseResponse(status=self._status())

    async def Resume(self, request: pb.ResumeRequest) -> pb.ResumeResponse:
        self._require_configured()
        await asyncio.to_thread(self.app.service.resume)
        return pb.ResumeResponse(status=self._status())

    async def GetPlan(self, request: pb.GetPlanRequest) -> pb.GetPlanResponse:
        self._require_configured()
        try:
            plan = await asyncio.to_thread(self._plan)
        except SyncError as err:
            raise from_sync_error(err) from None
        return pb.GetPlanResponse(plan=convert.plan(plan))

    def _plan(self) -> dict:
        with self.app.engine.lock:  # never beside a running job on the same clone
            return self.app.engine.plan()

    # --- jobs and approvals ------------------------------------------------
    async def ListJobs(self, request: pb.ListJobsRequest) -> pb.ListJobsResponse:
        limit = request.limit or 20
        if limit < 0 or limit > 500:
            raise ApiError("INVALID_ARGUMENT", "limit must be between 1 and 500",
                           [Violation("limit", "must be between 1 and 500")])
        jobs = await asyncio.to_thread(self.app.store.jobs, limit)
        return pb.ListJobsResponse(jobs=[convert.job(j) for j in jobs])

    async def RetryJob(self, request: pb.RetryJobRequest) -> pb.RetryJobResponse:
        self._require_configured()
        if self.app.board.facts().paused:
            raise ApiError("FAILED_PRECONDITION", "sync is paused: resume it to retry")
        try:
            return pb.RetryJobResponse(result=self.app.service.retry(request.job_id))
        except LookupError as err:
            raise ApiError("NOT_FOUND", str(err)) from None
        except ValueError as err:
            raise ApiError("FAILED_PRECONDITION", str(err)) from None

    async def ApproveDeploy(self, request: pb.ApproveDeployRequest) -> pb.ApproveDeployResponse:
        pending = self.app.board.facts().pending_commit
        if not pending:
            raise ApiError("FAILED_PRECONDITION", "there is no deploy request waiting for approval")
        if request.commit and request.commit != pending and not pending.startswith(request.commit):
            raise ApiError("FAILED_PRECONDITION", f"the revision waiting for approval is {pending[:8]}, not {request.commit[:8]}")
        self.app.service.trigger("approve")
        return pb.ApproveDeployResponse(commit=pending)

    async def RejectDeploy(self, request: pb.RejectDeployRequest) -> pb.RejectDeployResponse:
        pending = self.app.board.facts().pending_commit
        if not pending:
            raise ApiError("FAILED_PRECONDITION", "there is no deploy request waiting for approval")
        if request.commit and request.commit != pending and not pending.startswith(request.commit):
            raise ApiError("FAILED_PRECONDITION", f"the revision waiting for approval is {pending[:8]}, not {request.commit[:8]}")
        await asyncio.to_thread(self.app.engine.reject)
        return pb.RejectDeployResponse(commit=pending)

    async def GetRecovery(self, request: pb.GetRecoveryRequest) -> pb.GetRecoveryResponse:
        return pb.GetRecoveryResponse(recovery=convert.recovery(self.app.board.facts().recovery))

    async def GetWebhook(self, request: pb.GetWebhookRequest) -> pb.GetWebhookResponse:
        if self.webhooks is None:
            raise ApiError("UNAVAILABLE", "the webhook endpoint is not running")
        info = self.webhooks.info()
        last = info.get("last") or {}
        secret = ""
        if request.reveal_secret:
            secret = await asyncio.to_thread(self.webhooks.reveal_secret) or ""
        # The poll (a timer job) applied the remote head, and no webhook announced that commit.
        applied = self.app.store.get("applied") or {}
        job = self.app.store.job(applied["job"]) if applied.get("job") else None
        # (Bitbucket's merge events name the merge commit by a 12-character abbreviation.)
        announced, commit = last.get("after") or "", applied.get("commit") or ""
        looks_broken = bool(info["enabled"] and job is not None and job.trigger == "timer"
                            and not (announced and commit.startswith(announced)))
        return pb.GetWebhookResponse(enabled=info["enabled"], paths=info["paths"], provider=info["provider"],
                                     secret_source=info["secret_source"], secret_shown=info["secret_shown"] or bool(secret),
                                     secret=secret, last_after=last.get("after", ""), last_at=convert.ts(last.get("at")),
                                     looks_broken=looks_broken)

    async def Promote(self, request: pb.PromoteRequest) -> pb.PromoteResponse:
        self._require_configured()
        if not request.flow_ids or not request.target_environment:
            raise ApiError("INVALID_ARGUMENT", "flow_ids and target_environment are required",
                           [Violation("flow_ids", "choose at least one flow"), Violation("target_environment", "is required")])
        try:
            out = await asyncio.to_thread(self._promote, list(request.flow_ids), request.target_environment,
                                          request.title, request.body)
        except SyncError as err:
            if err.code == "promotion_invalid":
                raise ApiError("INVALID_ARGUMENT", err.message) from None
            raise from_sync_error(err) from None
        return pb.PromoteResponse(**out)

    def _promote(self, flow_ids, target, title, body) -> dict:
        with self.app.engine.lock:
            return self.app.promoter.promote(flow_ids, target, title, body)

    async def SuggestSecretPaths(self, request: pb.SuggestSecretPathsRequest) -> pb.SuggestSecretPathsResponse:
        if request.limit < 0 or request.limit > 500:
            raise ApiError("INVALID_ARGUMENT", "limit must be between 0 and 500", [Violation("limit", "must be between 0 and 500")])
        paths = await asyncio.to_thread(self.app.secrets.suggest, request.prefix, request.limit or 50)
        return pb.SuggestSecretPathsResponse(paths=paths)
