"""Session rules: the fast validate check, and every change inside the request's unit of work.

No SQL and no HTTP types here. One instance of each class per process; the unit of work
is passed to each call (`db=`, keyword-only).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from session_service.audit.events import EventType
from session_service.audit.refusals import RefusalAggregator
from session_service.audit.service import AuditService
from session_service.core.clock import Clock
from session_service.core.context import RequestContext
from session_service.core.db import job_scope
from session_service.core.errors import RefusalRecord
from session_service.core.ids import (
    WEAK_RUN,
    is_weak,
    new_session_id,
    new_token,
    parse_token,
    token_digest,
)
from session_service.core.settings import AuditValidations, Settings
from session_service.deletions.service import DeletionQueue
from session_service.sessions.errors import (
    ClientTokensDisabled,
    InvalidReason,
    SessionExists,
    SessionIdExhausted,
    SessionInvalid,
    SessionNotFound,
    TokenReplaced,
    WeakClientToken,
    WrongSessionStatus,
)
from session_service.sessions.models import SessionStatus, TokenEnd
from session_service.sessions.repository import SessionLookup, SessionRepository
from session_service.sessions.schemas import DetailsUpdate, ResetReason
from session_service.sessions.snapshot import SessionSnapshot

log = structlog.get_logger(__name__)

SLIDING = (SessionStatus.ACTIVE, SessionStatus.PENDING_VERIFICATION)

# The first try plus at most three retries on a unique violation (SPEC §3.1).
MAX_ID_ATTEMPTS = 4


# What validate says for a token that stopped working, by why it stopped (`ENDED`: the
# session was erased or removed after expiry, which is told like an unknown token).
_ENDED_REASONS = {
    TokenEnd.ROTATED: InvalidReason.ROTATED,
    TokenEnd.RESET: InvalidReason.RESET,
    TokenEnd.UPGRADED: InvalidReason.UPGRADED,
    TokenEnd.ENDED: InvalidReason.NOT_FOUND,
}


async def _why_invalid(
    digest: str | None,
    session: SessionSnapshot | None,
    now: datetime,
    *,
    repository: SessionRepository,
    max_age: timedelta,
) -> InvalidReason | None:
    """Why a presented token cannot be used, or None; a tombstone is read only on a miss."""
    if digest is None:
        return InvalidReason.MALFORMED
    if session is None:
        ended = await repository.token_end(digest)
        return InvalidReason.NOT_FOUND if ended is None else _ENDED_REASONS[ended]
    return invalid_reason(session, now, max_age=max_age)


# A reset presenting a token that one of these ended is told to use its replacement.
_REPLACED = (TokenEnd.ROTATED, TokenEnd.RESET)


def _digest_of(raw_token: str | None) -> str | None:
    """The digest of a well-formed token; None for a missing or malformed one."""
    token = parse_token(raw_token)
    return None if token is None else token_digest(token)


@dataclass(frozen=True, slots=True)
class Validation:
    """The outcome of checking a token: a session, or the reason it is unusable."""

    session: SessionSnapshot | None
    reason: InvalidReason | None


@dataclass(frozen=True, slots=True)
class Issued:
    """A session and the token just issued for it: the one place the token exists."""

    session: SessionSnapshot
    token: uuid.UUID


def invalid_reason(
    session: SessionSnapshot | None, now: datetime, *, max_age: timedelta
) -> InvalidReason | None:
    """Why `session` cannot be used at `now`, or None when it can.

    Idle expiry (`expires_at`, capped at the absolute end) and the absolute lifetime
    (`max_age` after creation; also for rows completed before it existed) both end it.
    """
    if session is None:
        return InvalidReason.NOT_FOUND
    if session.status == SessionStatus.RESET:
        return InvalidReason.RESET
    if session.status == SessionStatus.EXPIRED:
        return InvalidReason.EXPIRED
    if session.expires_at is not None and session.expires_at <= now:
        return InvalidReason.EXPIRED
    if session.created_at + max_age <= now:
        return InvalidReason.EXPIRED
    return None


class SessionValidator:
    """Checks tokens for `POST /session/validate`, the hot path: no request transaction.

    One statement on a pooled connection (`SessionLookup`); a failed check is counted by
    the refusal aggregator (only the first of its kind is written at once). Routes that
    act on the session load it inside their own transaction instead (`SessionService.hold`).
    """

    def __init__(
        self,
        *,
        lookup: SessionLookup,
        maker: async_sessionmaker[AsyncSession],
        audit: AuditService,
        refusals: RefusalAggregator,
        settings: Settings,
        clock: Clock,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self.lookup = lookup
        self.maker = maker
        self.audit = audit
        self.refusals = refusals
        self.settings = settings
        self.clock = clock
        # Told each outcome (`valid` or the reason), for metrics; must be cheap.
        self.observe = observe

    async def validate(self, raw_token: str | None, *, ctx: RequestContext) -> Validation:
        """Check a token before a user action; a valid check slides the idle expiry."""
        now = self.clock()
        digest = _digest_of(raw_token)
        session = None if digest is None else await self._touch(digest, now)
        max_age = self.settings.session_max_age
        if session is not None and invalid_reason(session, now, max_age=max_age) is None:
            if self.observe is not None:
                self.observe("valid")
            if self.settings.audit_validations == AuditValidations.ALL:
                async with job_scope(self.maker) as db:
                    await self.audit.record(
                        EventType.SESSION_VALIDATED, db=db, ctx=ctx, session_id=session.id
                    )
            return Validation(session=session, reason=None)
        async with job_scope(self.maker) as db:
            reason = await _why_invalid(
                digest, session, now, repository=SessionRepository(db), max_age=max_age
            )
        assert reason is not None
        if self.observe is not None:
            self.observe(reason.value)
        # Counted, not written each time: a flood of bad tokens costs no table.
        await self.refusals.refuse(
            EventType.SESSION_VALIDATION_FAILED,
            ctx=ctx,
            code=reason.value,
            session_id=session.id if session is not None else None,
            details={"reason": reason.value, "token_given": raw_token is not None},
        )
        log.info("session_invalid", reason=reason.value)
        return Validation(session=None, reason=reason)

    async def _touch(self, digest: str, now: datetime) -> SessionSnapshot | None:
        return await self.lookup.touch(
            digest,
            now=now,
            seen_before=now - self.settings.last_seen_throttle,
            idle_ttl=self.settings.session_idle_ttl,
            pending_ttl=self.settings.pending_ttl,
            max_age=self.settings.session_max_age,
        )


class SessionService:
    """Session changes in the caller's unit of work, each audited in it."""

    def __init__(
        self,
        *,
        audit: AuditService,
        deletions: DeletionQueue,
        settings: Settings,
        clock: Clock,
        new_id: Callable[[], uuid.UUID] = new_session_id,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self.audit = audit
        self.deletions = deletions
        # Told each holder check's outcome (`valid` or the reason), for metrics; cheap.
        self.observe = observe
        self.settings = settings
        self.clock = clock
        self.new_id = new_id

    async def hold(
        self, raw_token: str | None, *, db: AsyncSession, ctx: RequestContext, lock: bool
    ) -> SessionSnapshot:
        """The caller's valid session, read in this unit of work (and locked, for changes).

        Locked (`lock=True`), the session cannot be reset, erased or changed by anyone else
        until this unit of work ends, so what the caller does next acts on a live session.
        A token replaced while this request waited for the lock is `TokenReplaced` (409).
        A valid visit slides the idle expiry, as validate does. Anything else raises
        `SessionInvalid`, whose failure event is written once this unit of work is gone.
        """
        now = self.clock()
        digest = _digest_of(raw_token)
        repository = SessionRepository(db)
        session = None if digest is None else await repository.get_by_token(digest, lock=lock)
        if session is not None and session.token_digest != digest:
            raise TokenReplaced(
                "This session's token was replaced while the request waited (details given "
                "or a reset in another tab); send the newest token and try again."
            )
        reason = await _why_invalid(
            digest, session, now, repository=repository, max_age=self.settings.session_max_age
        )
        if self.observe is not None:
            self.observe(reason.value if reason is not None else "valid")
        if reason is not None:
            log.info("session_invalid", reason=reason.value)
            raise SessionInvalid(
                reason,
                record=RefusalRecord(
                    EventType.SESSION_VALIDATION_FAILED.value,
                    code=reason.value,
                    session_id=session.id if session is not None else None,
                    details={"reason": reason.value, "token_given": raw_token is not None},
                ),
            )
        assert session is not None
        if (
            session.status in SLIDING
            and session.last_seen_at <= now - self.settings.last_seen_throttle
        ):
            ttl = (
                self.settings.session_idle_ttl
                if session.status == SessionStatus.ACTIVE
                else self.settings.pending_ttl
            )
            expires_at = min(now + ttl, self._end(session))
            await repository.slide(session.id, now=now, expires_at=expires_at)
            session = replace(session, last_seen_at=now, expires_at=expires_at)
        if self.settings.audit_validations == AuditValidations.ALL:
            await self.audit.record(
                EventType.SESSION_VALIDATED, db=db, ctx=ctx, session_id=session.id
            )
        return session

    async def recheck(self, session: SessionSnapshot, *, db: AsyncSession) -> InvalidReason | None:
        """Why the token `session` was held with no longer opens it (rotated, reset, erased,
        expired), or None: for answers that last (live streams) and check again as they go.
        A read only: no slide, no audit, no lock."""
        repository = SessionRepository(db)
        digest = session.token_digest
        current = None if digest is None else await repository.get_by_token(digest)
        if current is not None and current.id != session.id:
            return InvalidReason.NOT_FOUND
        return await _why_invalid(
            digest,
            current,
            self.clock(),
            repository=repository,
            max_age=self.settings.session_max_age,
        )

    async def open(
        self, *, db: AsyncSession, proposed_token: uuid.UUID | None, ctx: RequestContext
    ) -> Issued:
        """Create an active session and its token (the client's proposal, if allowed)."""
        now = self.clock()
        repository = SessionRepository(db)
        if proposed_token is not None:
            self._check_proposal(proposed_token)
            # A token that ever belonged to a session never starts one again (no
            # resurrection after erasure or expiry); the answer does not tell which.
            if await repository.token_end(token_digest(proposed_token)) is not None:
                raise SessionExists("This token is, or was, another session's.")
        issued = await self._insert_fresh(
            repository, now=now, ctx=ctx, previous_session_id=None, proposed=proposed_token
        )
        session = issued.session
        await self.audit.record(
            EventType.SESSION_CREATED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={"token_source": "server" if proposed_token is None else "client"},
        )
        log.info("session_opened", session_id=str(session.id))
        return issued

    async def reset(
        self,
        raw_old_token: str | None,
        *,
        db: AsyncSession,
        reason: ResetReason,
        ctx: RequestContext,
    ) -> Issued:
        """Replace the caller's session: the old one (if any) becomes `reset`, a new one starts.

        The old token stops working. A token already replaced (by a reset or by details
        given, in another tab or a racing request) is `TokenReplaced` (409), not a second
        new session: of racing resets with one token, one succeeds and one token stays live.
        The browser then takes the newest token it stored, or resets without a token.
        The old session's rows stay until cleanup removes them (SESSION_IDLE_TTL later), but
        nothing serves its files any more: their objects are queued for deletion here.
        """
        now = self.clock()
        repository = SessionRepository(db)
        digest = _digest_of(raw_old_token)
        old = None if digest is None else await repository.get_by_token(digest, lock=True)
        ended = None
        if digest is not None and (old is None or old.token_digest != digest):
            ended = await repository.token_end(digest)
        if (old is not None and old.token_digest != digest) or ended in _REPLACED:
            raise TokenReplaced(
                "This token was already replaced (a reset, or details given in another tab); "
                "use the newest token, or reset without one."
            )
        if old is not None and digest is not None:
            await repository.retire_token(old.id, digest, now=now, status=SessionStatus.RESET)
            await self.deletions.queue_files(old.id, db=db)
            old_state = "found"
        elif digest is None:
            old_state = "absent" if raw_old_token is None else "malformed"
        else:
            old_state = "unknown" if ended is None else "ended"
        previous = old.id if old is not None else None
        issued = await self._insert_fresh(
            repository, now=now, ctx=ctx, previous_session_id=previous, proposed=None
        )
        session = issued.session
        if old is not None:
            await self.audit.record(
                EventType.SESSION_SUPERSEDED,
                db=db,
                ctx=ctx,
                session_id=old.id,
                details={"new_session_id": str(session.id), "reason": reason.value},
            )
        await self.audit.record(
            EventType.SESSION_RESET,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={
                "reason": reason.value,
                "previous_session_id": str(previous) if previous else None,
                "old_token": old_state,
                "superseded": old is not None,
            },
        )
        log.info("session_reset", session_id=str(session.id), reason=reason.value)
        return issued

    async def submit_details(
        self,
        session: SessionSnapshot,
        details: DetailsUpdate,
        *,
        db: AsyncSession,
        ctx: RequestContext,
    ) -> Issued:
        """Store name and email with consent under a new token; the session awaits verification.

        Personal data is attached only under a token this service just issued, so a token
        planted in the browser (fixation) stops working here: the old token is buried
        (`rotated`) and the answer carries the new one. Completion does not rotate.
        Resubmitting while pending replaces the details. The audit event names the fields
        that changed, never their values (redaction: a keyed hash would still be
        pseudonymous personal data, and erasure must leave nothing linkable behind).
        """
        if session.status == SessionStatus.COMPLETED:
            raise WrongSessionStatus(
                SessionStatus.COMPLETED, "The session is verified; its details are final."
            )
        now = self.clock()
        email = str(details.email)
        token = new_token()
        repository = SessionRepository(db)
        updated = await repository.save_details(
            session.id,
            name=details.name,
            email=email,
            token_digest=token_digest(token),
            now=now,
            expires_at=min(now + self.settings.pending_ttl, self._end(session)),
        )
        if updated is None:  # unreachable while the caller holds the session's lock
            raise SessionInvalid(InvalidReason.RESET)
        await repository.bury([session.token_digest], now=now, reason=TokenEnd.ROTATED)
        changed = [
            field
            for field, old, new in (
                ("name", session.name, details.name),
                ("email", session.email, email),
            )
            if old != new
        ]
        await self.audit.record(
            EventType.SESSION_DETAILS_SUBMITTED,
            db=db,
            ctx=ctx,
            session_id=session.id,
            details={"changed": changed, "consent_user_data": True, "status": updated.status.value},
        )
        log.info("session_details_submitted", session_id=str(session.id), changed=changed)
        return Issued(session=updated, token=token)

    async def find(
        self, session_id: uuid.UUID, *, db: AsyncSession, lock: bool = False
    ) -> SessionSnapshot:
        """Any session by id, for services (`lock`: held until this unit of work ends)."""
        session = await self.get(session_id, db=db, lock=lock)
        if session is None:
            raise SessionNotFound("No session with this id.")
        return session

    async def get(
        self, session_id: uuid.UUID, *, db: AsyncSession, lock: bool = False
    ) -> SessionSnapshot | None:
        """Any session by id, or None (`lock`: held until this unit of work ends)."""
        return await SessionRepository(db).get(session_id, lock=lock)

    async def lineage(
        self, session: SessionSnapshot, *, db: AsyncSession, limit: int
    ) -> list[uuid.UUID]:
        """The ids of the sessions this one replaced by resets, newest first.

        Followed through the rows that still exist; the last id may name a row that cleanup
        has removed since (its audit events outlive it).
        """
        chain: list[uuid.UUID] = []
        repository = SessionRepository(db)
        previous = session.previous_session_id
        while previous is not None and previous not in chain and len(chain) < limit:
            chain.append(previous)
            row = await repository.get(previous)
            previous = None if row is None else row.previous_session_id
        return chain

    async def complete(
        self, session_id: uuid.UUID, *, db: AsyncSession, ctx: RequestContext
    ) -> SessionSnapshot:
        """A verified email: pending verification becomes completed; nothing else can."""
        now = self.clock()
        current = await self.find(session_id, db=db, lock=True)
        completed = await SessionRepository(db).complete(
            session_id, now=now, ends_at=self._end(current)
        )
        if completed is None:
            status = current.status.value
            max_age = self.settings.session_max_age
            if invalid_reason(current, now, max_age=max_age) is InvalidReason.EXPIRED:
                status = SessionStatus.EXPIRED.value
            raise WrongSessionStatus(
                status, f"Only a pending_verification session can be completed; it is {status}."
            )
        await self.audit.record(EventType.SESSION_COMPLETED, db=db, ctx=ctx, session_id=session_id)
        log.info("session_completed", session_id=str(session_id))
        return completed

    def _check_proposal(self, proposed_token: uuid.UUID) -> None:
        """Client-proposed tokens are off by default, and never accepted when made up."""
        if not self.settings.allow_client_tokens:
            raise ClientTokensDisabled(
                "This service issues session tokens itself; send the create without an id."
            )
        if is_weak(proposed_token):
            raise WeakClientToken(
                f"A proposed token must be random: no run of {WEAK_RUN} or more equal digits."
            )

    def _end(self, session: SessionSnapshot) -> datetime:
        """When the session ends however active it is (`SESSION_MAX_AGE` after creation)."""
        return session.created_at + self.settings.session_max_age

    async def remove(self, session_id: uuid.UUID, *, db: AsyncSession) -> None:
        """Delete the session row; its file rows go with it (erasure, in `privacy/`)."""
        await SessionRepository(db).delete(session_id, now=self.clock())

    async def _insert_fresh(
        self,
        repository: SessionRepository,
        *,
        now: datetime,
        ctx: RequestContext,
        previous_session_id: uuid.UUID | None,
        proposed: uuid.UUID | None,
    ) -> Issued:
        for _ in range(MAX_ID_ATTEMPTS):
            token = proposed or new_token()
            digest = token_digest(token)
            session = self._new(
                self.new_id(),
                digest,
                now=now,
                ctx=ctx,
                previous_session_id=previous_session_id,
            )
            if await repository.insert(session):
                return Issued(session=session, token=token)
            if proposed is not None and await repository.get_by_token(digest) is not None:
                raise SessionExists("This token is, or was, another session's.")
            log.warning("session_id_collision")
        raise SessionIdExhausted("Could not allocate a unique session id; try again.")

    def _new(
        self,
        session_id: uuid.UUID,
        digest: str,
        *,
        now: datetime,
        ctx: RequestContext,
        previous_session_id: uuid.UUID | None,
    ) -> SessionSnapshot:
        return SessionSnapshot(
            id=session_id,
            status=SessionStatus.ACTIVE,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            expires_at=now + min(self.settings.session_idle_ttl, self.settings.session_max_age),
            completed_at=None,
            name=None,
            email=None,
            consent_user_data=False,
            consent_given_at=None,
            client_ip=ctx.client_ip,
            user_agent=ctx.user_agent,
            previous_session_id=previous_session_id,
            storage_id=session_id,  # keys are `uploads/{session_id}/...` (SPEC §4)
            token_digest=digest,
        )
