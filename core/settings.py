"""Every setting of the ledger in one place, read from the environment (prefix LEDGER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SCHEMA_NAME = r"^[a-z_][a-z0-9_]{0,62}$"
GROUP_NAME = r"^[a-z][a-z0-9-]{0,30}$"


class GroupStore(BaseModel):
    """Where a tenant group other than the home group keeps everything: a PostgreSQL
    schema, on the home group's server unless a URL of its own is given."""

    model_config = {"extra": "forbid"}

    database_url: SecretStr | None = None
    database_schema: str = Field(pattern=SCHEMA_NAME)
    read_from_standby: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    data_dir: Path = Field(default=Path(".ledger"), description="SQLite files and master key")
    database_url: SecretStr | None = Field(
        default=None, description="postgresql://… selects PostgreSQL instead of SQLite"
    )
    database_schema: str = Field(default="public", pattern=SCHEMA_NAME)
    read_from_standby: bool = Field(
        default=False, description="queries of the views go to a standby of the URL's"
        " hosts when one answers (read-your-writes kept: each waits until the standby has"
        " replayed what the primary had committed); writes and value reads stay on the"
        " primary")
    group_name: str = Field(
        default="home", pattern=GROUP_NAME, description="the name of the home group (the"
        " storage above, which holds the tenant directory), when there are tenant groups")
    groups: dict[str, GroupStore] = Field(
        default_factory=dict, description='tenant groups besides the home group (PostgreSQL):'
        ' JSON {"<name>": {"database_schema": "…", "database_url": "postgresql://…"}}')
    master_key: SecretStr | None = Field(default=None, description="base64 of 32 bytes")
    new_master_key: SecretStr | None = Field(default=None, description="for rotate-master")
    header_timeout: float = Field(
        default=10.0, gt=0, description="seconds a request's headers may take to arrive")
    body_timeout: float = Field(
        default=30.0, gt=0, description="seconds a request's body may take to arrive")
    keep_alive_timeout: float = Field(
        default=5.0, ge=1, description="seconds an idle kept-alive connection stays open")
    max_connections: int = Field(
        default=1024, ge=1, description="open connections past which requests are answered"
        " 503 (/healthz and /readyz excepted)")
    max_queued_requests: int = Field(
        default=4096, ge=1, description="commands and value reads waiting for the writer;"
        " more are refused with 503 overloaded")
    max_queued_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1, description="bytes of request bodies waiting for the"
        " writer; more are refused with 503 overloaded")
    idempotency_cache_bytes: int = Field(
        default=32 * 1024 * 1024, ge=0, description="bytes of recent idempotent outcomes"
        " kept in memory (older ones are read from the views)")
    idempotency_retention_hours: float = Field(
        default=48.0, ge=24, description="hours an Idempotency-Key is honoured; the server"
        " prunes older records (the contract promises at least 24)")
    master_rotation_wait: float = Field(
        default=15.0, ge=0, description="how long rotate-master waits for every running"
        " server to hold the new master key before it gives up, changing nothing")
    aws_account_id: str = Field(
        default="123456789012", pattern=r"^\d{12}$",
        description="the account id in the AWS façade's ARNs (they never route)")
    log_key: SecretStr | None = Field(
        default=None, description="the transparency logs' signer key (PRIVATE+KEY+…);"
        " unset: log.key in the data directory, made on first use")
    log_name: str = Field(
        default="secrets-ledger", pattern=r"^[A-Za-z0-9._/:-]{1,100}$",
        description="the log key's name when one is made, and the start of every tenant"
        " log's origin (<name>/tenants/<tenant>)")
    retired_log_keys: list[str] = Field(
        default_factory=list, description="verifier keys of retired log keys, still"
        " published (JSON list; with LEDGER_LOG_KEY)")
    checkpoint_interval: float = Field(
        default=0.5, gt=0, le=1.0, description="seconds between checkpoint rounds: a log"
        " with new leaves has a signed checkpoint within about this long")
    witnesses: list[str] = Field(
        default_factory=list, description='witnesses to submit checkpoints to: JSON list of'
        ' "<URL> <verifier key>"')
    feed_heartbeat: float = Field(
        default=15.0, gt=0, le=300, description="seconds between a change stream's"
        " heartbeats (each carries the cursor to resume from)")
    send_timeout: float = Field(
        default=30.0, gt=0, description="seconds a client may leave what the server sent"
        " unread (a slow subscriber): then its connection is closed, and it resumes from"
        " its last cursor")
    store_retry_timeout: float = Field(
        default=30.0, gt=0, description="seconds a write is retried while the database"
        " cannot be reached (a failover under way), and a commit whose connection was"
        " lost is asked after; then 503")
    bootstrap_token: SecretStr | None = None
    pool_size: int = Field(default=8, ge=1, le=100)
    read_your_writes_timeout: float = Field(default=5.0, gt=0)
    projection_poll_interval: float = Field(default=0.05, gt=0)
    readiness_max_lag: int = Field(default=1000, ge=0)
