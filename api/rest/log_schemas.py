"""The transparency log's response bodies (hashes in base64, as checkpoints carry them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from secrets_ledger.api.rest.schemas import SecretOut


class LogKeysOut(BaseModel):
    log_keys: list[str] = Field(description="verifier keys (name+id+base64), in use first")
    origin_prefix: str = Field(description="every tenant log's origin is this + tenant name")


class CheckpointOut(BaseModel):
    tree_size: int
    root_hash: str
    checkpoint: str = Field(description="the C2SP signed note, witness cosignatures too")


class InclusionOut(BaseModel):
    leaf_index: int
    tree_size: int
    proof: list[str]


class ConsistencyOut(BaseModel):
    old_size: int
    tree_size: int
    proof: list[str]


class LeafOut(BaseModel):
    leaf_index: int
    leaf_hash: str
    record: dict[str, Any] = Field(description="what the leaf covers: ciphertext, metadata")


class LeavesOut(BaseModel):
    leaves: list[LeafOut]


class ValueProofOut(BaseModel):
    event_version: int = Field(description="the stream version of the event that wrote it")
    leaf_index: int
    tree_size: int
    record: dict[str, Any]
    value_json: str = Field(description="the value as sealed, the commitment's input")
    opening: str
    inclusion: list[str]
    checkpoint: str


class SecretWithProofOut(SecretOut):
    proof: ValueProofOut | None = Field(default=None, description="with ?proof=true")
