"""Accepting declarations: validate, pseudonymise, deduplicate, publish, confirm.

Order of work for a batch (a single declaration is a batch of one):

1. each item is validated on its own (schema, clock, registered checkpoint), so one bad
   item never costs the others;
2. valid items are *claimed* in Redis by ``declaration_id``; an id already ``done`` is a
   duplicate, one ``pending`` is being published by another request right now;
3. claimed items are pseudonymised and published together; ``accepted`` only after the
   broker acknowledged each one;
4. acknowledged ids are confirmed, failed ones released (their retry will be accepted).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from ingest_api.access import EVERYWHERE, Area
from ingest_api.errors import StoreUnavailableError
from ingest_api.metrics import ApiMetrics
from ingest_api.publisher import KafkaPublisher, Message
from ingest_api.store import SeenStore
from vhc_common.pseudonym import Pseudonymiser
from vhc_common.schemas import DeclarationEvent, DeclarationIn
from vhc_common.topics import DECLARATIONS

__all__ = ["FieldError", "IngestService", "ItemOutcome"]

Status = Literal["accepted", "duplicate", "invalid", "forbidden", "unavailable", "in_progress"]

_DECLARATION = TypeAdapter(DeclarationIn)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field, in FastAPI's error shape (``loc`` within the declaration)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self, prefix: tuple[str | int, ...] = ()) -> dict[str, Any]:
        return {"loc": [*prefix, *self.loc], "msg": self.msg, "type": self.type}


@dataclass(slots=True)
class ItemOutcome:
    status: Status
    declaration_id: str | None = None
    errors: list[FieldError] = field(default_factory=list)


class IngestService:
    def __init__(
        self,
        *,
        publisher: KafkaPublisher,
        seen: SeenStore,
        pseudonymiser: Pseudonymiser,
        metrics: ApiMetrics,
        max_future_skew_s: float,
        retention_days: int,
        registry_synced: Callable[[], bool] = lambda: True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._publisher = publisher
        self._seen = seen
        self._pseudonymiser = pseudonymiser
        self._metrics = metrics
        self._max_skew = timedelta(seconds=max_future_skew_s)
        self._retention = timedelta(days=retention_days)
        self._registry_synced = registry_synced
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._gathering: dict[Area, list[tuple[Any, asyncio.Future[ItemOutcome]]]] = {}

    async def submit_one(self, raw: Any, *, area: Area = EVERYWHERE) -> ItemOutcome:
        """One declaration (the single route). Declarations that arrive together (in the
        same turn of the event loop, from several connections) are submitted as one batch:
        one registry-and-claim script, one hand-over to the producer and one confirmation
        for all of them instead of one each (each outcome is its own; a failure of the
        shared calls is raised to each caller). The same id sent twice at once is the
        batch's repeat: the later one is a duplicate of the first."""
        future: asyncio.Future[ItemOutcome] = asyncio.get_running_loop().create_future()
        if not self._gathering:
            asyncio.get_running_loop().call_soon(self._submit_gathered)
        self._gathering.setdefault(area, []).append((raw, future))
        return await future

    def _submit_gathered(self) -> None:
        gathered, self._gathering = self._gathering, {}
        for area, waiting in gathered.items():
            task = asyncio.ensure_future(self._submit_for(area, waiting))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _submit_for(self, area: Area,
                          waiting: list[tuple[Any, asyncio.Future[ItemOutcome]]]) -> None:
        try:
            outcomes = await self.submit([raw for raw, _ in waiting], area=area)
        except BaseException as exc:  # each caller gets it (answered as it was before)
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(waiting, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def submit(self, raw_items: Sequence[Any], *,
                     area: Area = EVERYWHERE) -> list[ItemOutcome]:
        """Each item's outcome; a checkpoint outside ``area`` (the front-end key's scope)
        is ``forbidden``."""
        now = self._clock()
        latest, earliest = now + self._max_skew, now - self._retention  # once a batch
        outcomes: list[ItemOutcome] = []
        parsed: dict[int, DeclarationIn] = {}
        for index, raw in enumerate(raw_items):
            try:
                # The single route's body comes validated by FastAPI (a batch's items are
                # plain dicts): validated once.
                item = raw if type(raw) is DeclarationIn else _DECLARATION.validate_python(raw)
            except ValidationError as exc:
                outcomes.append(ItemOutcome("invalid", _raw_id(raw), _field_errors(exc)))
                continue
            errors = self._clock_errors(item, latest, earliest)
            outcomes.append(ItemOutcome("invalid" if errors else "accepted",
                                        str(item.declaration_id), errors))
            if not errors:
                parsed[index] = item
        await self._publish(parsed, outcomes, received_at=now, area=area)
        for status, count in Counter(outcome.status for outcome in outcomes).items():
            self._metrics.declarations.labels(status).inc(count)
        return outcomes

    def _clock_errors(self, item: DeclarationIn, latest: datetime,
                      earliest: datetime) -> list[FieldError]:
        if item.scanned_at > latest:
            return [FieldError(("scanned_at",),
                               f"is in the future by more than {self._max_skew.seconds} s",
                               "future_time")]
        if item.scanned_at < earliest:
            return [FieldError(("scanned_at",),
                               f"is older than the retention period ({self._retention.days} "
                               "days)", "too_old")]
        return []

    async def _publish(self, parsed: dict[int, DeclarationIn], outcomes: list[ItemOutcome],
                       *, received_at: datetime, area: Area) -> None:
        # The same id twice in one batch: the first one wins, later ones are duplicates.
        first: dict[str, int] = {}
        repeats: dict[int, int] = {}
        for index in parsed:
            did = outcomes[index].declaration_id
            assert did is not None  # a parsed item's outcome carries its id
            if did in first:
                repeats[index] = first[did]
            else:
                first[did] = index
        # Registered and not seen: one script answers both, for every item at once.
        owner = uuid.uuid4().hex  # this request: only it may release its claims
        claims = await self._seen.claim_registered(
            [(did, parsed[index].checkpoint_id) for did, index in first.items()],
            owner=owner, area=area)
        synced = self._registry_synced()
        to_send: list[tuple[str, int]] = []
        for (did, index), claim in zip(first.items(), claims, strict=True):
            if claim == "lost" or (claim == "unknown" and not synced):
                # The view is still being rebuilt from Kafka (or Redis just lost it):
                # "unknown" may be wrong, and a front end would drop a 422. Ask for a
                # retry instead.
                outcomes[index] = ItemOutcome("unavailable", did)
            elif claim == "unknown":
                outcomes[index] = ItemOutcome("invalid", did, [FieldError(
                    ("checkpoint_id",),
                    f"checkpoint {parsed[index].checkpoint_id!r} is not registered",
                    "unknown_checkpoint",
                )])
            elif claim == "forbidden":
                outcomes[index] = ItemOutcome("forbidden", did, [FieldError(
                    ("checkpoint_id",), "the checkpoint lies outside this key's area",
                    "forbidden")])
            elif claim == "done":
                outcomes[index].status = "duplicate"
            elif claim == "pending":
                outcomes[index].status = "in_progress"
            else:
                to_send.append((did, index))
        messages = [Message(DECLARATIONS, parsed[index].checkpoint_id.encode(),
                            self._event(parsed[index], received_at).model_dump_json().encode())
                    for _, index in to_send]
        started = self._clock()
        errors = await self._publisher.publish_many(messages)
        self._metrics.publish_seconds.observe((self._clock() - started).total_seconds())
        acked = [did for (did, _), e in zip(to_send, errors, strict=True) if e is None]
        failed = [did for (did, _), e in zip(to_send, errors, strict=True) if e is not None]
        # Confirm first: what Kafka acknowledged must be remembered (if that fails, the
        # answer is 503 and the retry is deduplicated by the worker). A failed release only
        # leaves this request's claims to expire: logged and counted, the answer stands.
        await self._seen.confirm(acked)
        try:
            await self._seen.release(failed, owner=owner)
        except StoreUnavailableError as exc:
            self._metrics.dependency_errors.labels("redis").inc()
            log.warning("claims of %d unpublished declarations not released (they expire "
                        "in the pending TTL): %s", len(failed), exc)
        for (_, index), error in zip(to_send, errors, strict=True):
            outcomes[index].status = "accepted" if error is None else "unavailable"
        for index, first_index in repeats.items():
            # A repeat shares its first copy's fate; once that is in Kafka it is a duplicate.
            status = outcomes[first_index].status
            outcomes[index].status = "duplicate" if status == "accepted" else status
            outcomes[index].errors = list(outcomes[first_index].errors)

    def _event(self, item: DeclarationIn, received_at: datetime) -> DeclarationEvent:
        # Every field comes from a validated DeclarationIn or the pseudonymiser's PersonRef:
        # construct without validating again (a third of a batch's cost was re-validation).
        return DeclarationEvent.model_construct(
            declaration_id=item.declaration_id,
            checkpoint_id=item.checkpoint_id,
            scanned_at=item.scanned_at,
            received_at=received_at,
            person=self._pseudonymiser.person(item.person),
            temperature_c=item.temperature_c,
            symptoms=tuple(item.symptoms),
            contact=item.contact,
            travel_from=tuple(dict.fromkeys(item.travel_from)),
        )


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [FieldError(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                   r"[0-9a-fA-F]{12}$")


def _raw_id(raw: Any) -> str | None:
    """The item's id, echoed only when it looks like an id: an invalid item's text may be
    personal (a name typed in the wrong field)."""
    if isinstance(raw, dict):
        value = raw.get("declaration_id")
        if isinstance(value, str) and _UUID.match(value):
            return value
    return None
