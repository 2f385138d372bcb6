"""The values that flow through tiermem: turns, facts, journal events, hits and reports.

Every model is a pydantic model so that it validates on the way in, serialises the same
way to SQLite, to Qdrant payloads and to JSON exports, and documents its own schema.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

Role = Literal["user", "assistant"]
TurnKind = Literal["text", "tool_call", "tool_result"]
FactKind = Literal["semantic", "episodic"]
EventOp = Literal["add", "update", "invalidate", "noop", "forget", "forget_user"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC, aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)

    @model_validator(mode="after")
    def _utc_datetimes(self) -> Any:
        # Naive datetimes are taken as UTC so that comparisons never mix naive and aware.
        for name, value in self.__dict__.items():
            if isinstance(value, datetime) and value.tzinfo is not UTC:
                self.__dict__[name] = as_utc(value)
        return self


class Turn(_Model):
    """One message of a conversation, stored verbatim in the session tier."""

    id: str = Field(default_factory=new_id)
    user_id: str
    session_id: str
    seq: int = 0
    role: Role
    name: str | None = None
    content: str
    kind: TurnKind = "text"  # tool calls and results are turns too, stored as text
    created_at: datetime = Field(default_factory=utcnow)
    utc_offset: int | None = None  # minutes east of UTC where the turn was said (aware `at`)
    token_count: int = 0
    external_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Spans of `content` whose facts were forgotten: extraction never sees them again.
    forgotten: list[tuple[int, int]] = Field(default_factory=list)

    @property
    def extractable(self) -> Turn:
        """The turn as extraction sees it: the statements of forgotten facts left out."""
        if not self.forgotten:
            return self
        parts, at = [], 0
        for start, end in sorted(self.forgotten):
            parts.append(self.content[at:start])
            at = max(at, end)
        parts.append(self.content[at:])
        return self.model_copy(update={"content": " ".join(p.strip() for p in parts if p.strip())})

    @property
    def local_time(self) -> datetime:
        """When the turn was said, on the speaker's clock: what 'yesterday' is relative to."""
        return self.created_at + timedelta(minutes=self.utc_offset or 0)

    @property
    def ref(self) -> str:
        """The id that provenance records: the caller's own message id where given."""
        return self.external_id or self.id

    @property
    def speaker(self) -> str:
        return self.name or ("the user" if self.role == "user" else "the assistant")


class _Statement(_Model):
    """What a fact says, and where it came from: shared by candidates and stored facts."""

    kind: FactKind
    text: str
    subject: str
    attribute: str | None = None
    value: str | None = None
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    sources: list[str] = Field(default_factory=list)
    event_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    extractor: str | None = None  # what produced it: "rules", "claude:<model>", "caller" (remember())

    @property
    def index_text(self) -> str:
        """What is embedded and keyword-indexed: the text, plus the attribute it states
        when the wording hides it ('moved to Berlin' is found by 'where does Ana live')."""
        if self.attribute and self.value:
            plain = f"{self.subject} {self.attribute} {self.value}"
            if plain.lower() not in self.text.lower():
                return f"{self.text} ({plain}.)"
        ended = self.metadata.get("ends")  # reconcile.ENDS: news of an ending answers what it ended
        if isinstance(ended, str) and ended:
            return f"{self.text} (No longer: {ended})"
        return self.text


class Fact(_Statement):
    """A self-contained statement extracted from turns, stored in the long-term tier."""

    id: str = Field(default_factory=new_id)
    user_id: str
    valid_from: datetime = Field(default_factory=utcnow)
    invalid_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    expired_at: datetime | None = None
    superseded_by: str | None = None
    mentions: int = 1
    access_count: int = 0
    last_accessed_at: datetime | None = None
    updated_at: datetime | None = None  # record time of the last add, update or invalidation (None: never changed)

    @property
    def is_valid(self) -> bool:
        return self.invalid_at is None and self.expired_at is None

    def valid_at(self, when: datetime) -> bool:
        when = as_utc(when)
        return self.valid_from <= when and (self.invalid_at is None or self.invalid_at > when)


CandidateOp = Literal["state", "forget"]


class Candidate(_Statement):
    """What an extractor proposes; reconcile decides whether it becomes a fact.

    `operation` is what the speaker did: "state" something (reconcile decides whether it adds,
    restates, changes or ends what is stored), or ask to "forget" what `text` names ("Ana's
    passport number"; empty: what they said just before). A request to forget is never a fact.
    """

    valid_from: datetime
    operation: CandidateOp = "state"


class FactEvent(_Model):
    """One change to a fact: the journal row, and what `add()` returns."""

    op: EventOp
    fact_id: str
    user_id: str
    fact: Fact | None = None
    previous: Fact | None = None
    at: datetime = Field(default_factory=utcnow)
    reason: str = ""
    seq: int | None = None


class Summary(_Model):
    """A rolling summary of the turns evicted from the working window of a session."""

    user_id: str
    session_id: str
    covers_seq: int
    text: str
    created_at: datetime = Field(default_factory=utcnow)


class Profile(_Model):
    """The user's baked core profile: the byte-stable tier-1 text, and when it was baked."""

    user_id: str
    epoch: int = 0
    text: str = ""
    fact_ids: list[str] = Field(default_factory=list)
    baked_at: datetime = Field(default_factory=utcnow)
    changes_since: int = 0
    stale: bool = False


class ExtractionFailure(_Model):
    """A batch whose phase 2 failed; its turns stay pending and are retried."""

    batch_key: str
    user_id: str
    turn_ids: list[str]
    error: str
    attempts: int
    updated_at: datetime


class Hit(_Model):
    """A retrieved fact with its score and a breakdown of how the score was made."""

    fact: Fact
    score: float
    explain: dict[str, float] = Field(default_factory=dict)


class AddResult(_Model):
    """What `add()` did. The turns are always committed when it returns.

    `pending` is True while phase 2 (extract, reconcile, index) has not finished for these
    turns: in background mode, or when phase 2 failed inline (`error` says why; the batch is
    retried and nothing is lost). `events` holds the fact changes once phase 2 has run.
    """

    turns: list[Turn]
    events: list[FactEvent]
    pending: bool = False
    error: str | None = None

    @property
    def facts(self) -> list[Fact]:
        return [e.fact for e in self.events if e.fact is not None and e.op in ("add", "update")]


class Dropped(_Model):
    what: str
    why: str
    tokens: int = 0


class ContextReport(_Model):
    tokens: dict[str, int]
    budget: dict[str, int]
    dropped: list[Dropped] = Field(default_factory=list)
    prefix_tokens: int = 0
    cache_min_tokens: int = 0
    cacheable: bool = False
    profile_epoch: int = 0
    profile_facts: list[str] = Field(default_factory=list)  # ids of the facts the cached profile states
    notes: list[str] = Field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.tokens.values())


class Context(_Model):
    """A provider-ready request: pass `system` and `messages` to `messages.create`."""

    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    facts: list[Hit]
    report: ContextReport


class Backlog(TypedDict):
    """`backlog()`: turns waiting for phase 2 of add(), and the failures recorded for them."""

    pending_turns: int
    failures: list[ExtractionFailure]


class CallUsage(_Model):
    """One model call as the usage table records it (the response's usage, or a failure)."""

    purpose: str
    model: str
    user_id: str | None = None
    session_id: str | None = None
    input_tokens: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    output_tokens: int = 0
    attempts: int = 1
    outcome: str = "ok"
    service_tier: str | None = None
    request_id: str | None = None
    at: datetime = Field(default_factory=utcnow)

    @classmethod
    def of(cls, message: Any, **fields: Any) -> CallUsage:
        """From an SDK Message (or a batch result's message): input_tokens is only the
        uncached remainder; cache writes split by TTL where the API says so."""
        u = message.usage
        writes = getattr(u, "cache_creation_input_tokens", None) or 0
        split = getattr(u, "cache_creation", None)
        w5 = getattr(split, "ephemeral_5m_input_tokens", None) if split is not None else None
        w1 = getattr(split, "ephemeral_1h_input_tokens", None) if split is not None else None
        if w5 is None and w1 is None:
            w5, w1 = writes, 0  # no split reported: the default TTL is 5 minutes
        fields["model"] = getattr(message, "model", None) or fields.get("model")
        tier = fields.pop("service_tier", None) or getattr(u, "service_tier", None)
        request_id = getattr(message, "_request_id", None)
        return cls(input_tokens=u.input_tokens or 0, output_tokens=u.output_tokens or 0,
                   cache_read=getattr(u, "cache_read_input_tokens", None) or 0, cache_write_5m=w5 or 0,
                   cache_write_1h=w1 or 0, service_tier=tier if isinstance(tier, str) else None,
                   request_id=request_id if isinstance(request_id, str) else None, **fields)

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_write_5m + self.cache_write_1h + self.cache_read


class MemoryFile(_Model):
    """A file an agent keeps in memory (Claude's memory tool: /memories/...), per user.

    `version` counts its writes (1 for a new file): `write_file(..., if_version=v)` writes
    only over that version, so concurrent edits never lose one another.
    """

    path: str
    content: str
    version: int = 1
    fact_id: str | None = None  # the fact that makes the file searchable
    updated_at: datetime = Field(default_factory=utcnow)


class UsageTotals(_Model):
    """Model tokens and cost over a set of calls. `input_tokens` is the uncached part of the
    prompts; `prompt_tokens` adds cache writes and reads (what the model read in all)."""

    calls: int = 0
    attempts: int = 0
    failed: int = 0
    input_tokens: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0  # calls of models the price table does not know (not in cost_usd)

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_write_5m + self.cache_write_1h + self.cache_read

    @property
    def cache_read_share(self) -> float:
        """The share of prompt tokens served from the provider's cache."""
        return self.cache_read / self.prompt_tokens if self.prompt_tokens else 0.0


class UsageReport(_Model):
    """`Memory.usage()`: totals, and the same split by model and by purpose."""

    user_id: str | None = None
    session_id: str | None = None
    total: UsageTotals = Field(default_factory=UsageTotals)
    by_model: dict[str, UsageTotals] = Field(default_factory=dict)
    by_purpose: dict[str, UsageTotals] = Field(default_factory=dict)
