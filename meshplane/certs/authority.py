"""The running certificate authority: issues, renews and rotates, and announces each change.

Owns the CA's I/O (database, clock, randomness); the arithmetic is in ca.py. Every change produces
a new IdentityState and calls the subscribers (the snapshot builder), which push it over SDS.

Root rotation never breaks a connection because each step waits until every connected proxy has
acknowledged the previous one (`converged`):
  adding-root  the new root joins the trust bundle; the old one still signs
  reissuing    the new root signs; every leaf is re-issued from it; both roots stay trusted
  overlap      both trusted until the overlap ends or the operator finishes the rotation
  idle         the old root has left the bundle
An abort walks back the same way (see abort_rotation): in adding-root the new root simply leaves;
later, the previous root signs again, every leaf is re-issued from it ("aborting"), and the new
root leaves once every proxy holds its new leaf. The database holds the roots' states after each
step, so a restart resumes a rotation, or an abort, where it stood.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from cryptography import x509

from meshplane.certs.ca import (
    Authority,
    KeyType,
    UnusableAuthority,
    issue_leaf,
    load_authority,
    new_root,
)
from meshplane.certs.checks import check_import
from meshplane.certs.keystore import SecretBox
from meshplane.errors import Conflict, Unavailable
from meshplane.model import IdentityState, Leaf, Subject
from meshplane.store import CaAuthorityRow, CaLeafRow, IdentityRepo

__all__ = ["MAX_OVERLAP", "CaConfig", "CaStatus", "CertificateAuthority", "RootInfo"]

log = logging.getLogger(__name__)

MAX_OVERLAP = dt.timedelta(days=365)  # the longest both roots may stay trusted in a rotation
_RETRY_SECONDS = 30.0  # the longest the renewal loop sleeps, and its pause after a failure
# Seconds between renewal attempts while the store is unreachable (the store logs the outage).
_RENEW_RETRY_SECONDS = 1.0
_MOVING = ("incoming", "outgoing")  # root states that exist only during a rotation

Clock = Callable[[], dt.datetime]
Converged = Callable[[int], Awaitable[bool]]  # version -> every proxy holds at least it


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _always(_: int) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class CaConfig:
    trust_domain: str = "meshplane.local"
    key_type: KeyType = "ecdsa"
    leaf_ttl: dt.timedelta = dt.timedelta(hours=24)
    root_ttl: dt.timedelta = dt.timedelta(days=3650)
    renew_fraction: float = 0.5  # renew at about half of a leaf's lifetime...
    jitter: float = 0.1  # ...give or take 10 %, so renewals do not all land at once
    overlap: dt.timedelta = dt.timedelta(hours=1)  # both roots trusted after re-issuing
    convergence_timeout: float = 300.0  # seconds a rotation step waits for every proxy


@dataclass(frozen=True, slots=True)
class RootInfo:
    id: int
    serial: str
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    state: str  # issuing | incoming | outgoing | retired
    retire_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class CaStatus:
    phase: str  # idle | adding-root | reissuing | overlap
    trust_domain: str
    identity_version: int
    roots: list[RootInfo]
    detail: str


class CertificateAuthority:
    """Issues leaves per identity, renews them before expiry, and rotates roots in phases."""

    def __init__(
        self,
        repo: IdentityRepo,
        box: SecretBox,
        config: CaConfig,
        *,
        clock: Clock = _utc_now,
        rng: random.Random | None = None,
        converged: Converged = _always,
    ) -> None:
        """`converged(version)` tells whether every proxy holds the identity state of at least
        `version`; each rotation step waits on it (default: no proxies to wait for)."""
        self._repo = repo
        self._box = box
        self.config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._rows: dict[int, CaAuthorityRow] = {}
        self._cas: dict[int, Authority] = {}
        self._leaves: dict[str, Leaf] = {}
        self._host_names: dict[str, tuple[str, ...]] = {}  # subject -> DNS names and IPs to add
        self._state = IdentityState(config.trust_domain)
        self._subscribers: list[Callable[[IdentityState], None]] = []
        self._lock = asyncio.Lock()
        self._rotation: asyncio.Task[None] | None = None
        self._finish = asyncio.Event()
        self._phase = "idle"
        self._detail = ""
        self._undoing = False  # the rotation task goes back to the previous root (abort)
        self.converged = converged

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> IdentityState:
        return self._state

    def subscribe(self, subscriber: Callable[[IdentityState], None]) -> None:
        self._subscribers.append(subscriber)

    def _publish(self) -> None:
        bundle: list[str] = []
        for row in self._rows.values():
            if row.state != "retired":
                pem = self._cas[row.id].root_pem()
                if pem not in bundle:
                    bundle.append(pem)
        self._state = IdentityState(
            self.config.trust_domain, self._state.version + 1, tuple(bundle), dict(self._leaves)
        )
        for subscriber in self._subscribers:
            subscriber(self._state)

    def _issuing(self) -> tuple[int, Authority]:
        for row in self._rows.values():
            if row.state == "issuing":
                return row.id, self._cas[row.id]
        raise RuntimeError("no issuing CA")

    # -- start-up ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the CA from the database, creating a root on first start; resume a rotation."""
        for row in await self._repo.authorities():
            self._rows[row.id] = row
            self._cas[row.id] = load_authority(
                row.cert_pem, self._box.open(row.key_sealed), row.chain_pem
            )
        if not any(r.state == "issuing" for r in self._rows.values()):
            root = await self._new_root()
            await self._add(root, "issuing")
            log.info(
                "created root CA serial=%x trust_domain=%s",
                root.cert.serial_number,
                self.config.trust_domain,
            )
        for leaf_row in await self._repo.leaves():
            self._leaves[leaf_row.subject] = self._leaf_from_row(leaf_row)
        self._publish()
        if self._unfinished():
            self._start_rotation(None)

    async def _add(self, authority: Authority, state: str) -> int:
        row = await self._repo.add_authority(
            CaAuthorityRow(
                cert_pem=authority.cert_pem(),
                chain_pem=authority.chain_pem(),
                key_sealed=self._box.seal(authority.key_pem()),
                state=state,
                created_at=self._clock(),
            )
        )
        self._rows[row.id] = row
        self._cas[row.id] = authority
        return row.id

    def _leaf_from_row(self, row: CaLeafRow) -> Leaf:
        cert = x509.load_pem_x509_certificate(row.cert_chain_pem.encode())
        issuer = self._cas.get(row.authority_id)
        uri = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return Leaf(
            subject=row.subject,
            spiffe_id=uri.get_values_for_type(x509.UniformResourceIdentifier)[0],
            cert_chain_pem=row.cert_chain_pem,
            key_pem=self._box.open(row.key_sealed),
            serial=row.serial,
            issuer_serial=format(issuer.cert.serial_number, "x") if issuer else "",
            not_before=row.not_before,
            not_after=row.not_after,
            renew_at=row.renew_at,
        )

    # -- issuing -------------------------------------------------------------------------

    async def ensure(self, subjects: Iterable[str]) -> None:
        """Make sure each identity (a `Subject`'s text) has a valid leaf."""
        async with self._lock:
            missing = [s for s in dict.fromkeys(subjects) if s not in self._leaves]
            if missing:
                await self._issue(missing)
                self._publish()

    async def ensure_server(self, subject: str, host_names: Iterable[str]) -> None:
        """Issue `subject` a fresh leaf that also names `host_names` (DNS names or IP addresses),
        for a server that clients check by host name; its renewals keep naming them."""
        self._host_names[subject] = tuple(dict.fromkeys(host_names))
        await self.rotate_leaves([subject])

    async def rotate_leaves(self, subjects: Iterable[str] | None = None) -> list[Leaf]:
        """Re-issue leaves now (all when `subjects` is None); Envoy swaps them over SDS."""
        async with self._lock:
            chosen = list(self._leaves) if subjects is None else list(dict.fromkeys(subjects))
            issued = await self._issue(chosen)
            self._publish()
        log.info("rotated leaves count=%d", len(issued))
        return issued

    async def _issue(self, subjects: list[str]) -> list[Leaf]:
        authority_id, authority = self._issuing()
        now = self._clock()
        rows: list[CaLeafRow] = []
        issued: list[Leaf] = []
        for subject in subjects:
            identity = Subject.parse(subject).spiffe_id(self.config.trust_domain)
            made = await asyncio.to_thread(
                issue_leaf,
                authority,
                identity,
                now,
                ttl=self.config.leaf_ttl,
                key_type=self.config.key_type,
                **_split_host_names(self._host_names.get(subject, ())),
            )
            lifetime = made.not_after - made.not_before
            share = self.config.renew_fraction * (
                1 + self._rng.uniform(-self.config.jitter, self.config.jitter)
            )
            renew_at = made.not_before + lifetime * share
            rows.append(
                CaLeafRow(
                    subject=subject,
                    cert_chain_pem=made.cert_chain_pem,
                    key_sealed=self._box.seal(made.key_pem),
                    serial=made.serial,
                    authority_id=authority_id,
                    not_before=made.not_before,
                    not_after=made.not_after,
                    renew_at=renew_at,
                )
            )
            leaf = Leaf(
                subject,
                identity,
                made.cert_chain_pem,
                made.key_pem,
                made.serial,
                format(authority.cert.serial_number, "x"),
                made.not_before,
                made.not_after,
                renew_at,
            )
            issued.append(leaf)
        await self._repo.save_leaves(rows)
        for leaf in issued:
            self._leaves[leaf.subject] = leaf
        return issued

    def leaves(self) -> list[Leaf]:
        return [self._leaves[s] for s in sorted(self._leaves)]

    async def run(self) -> None:
        """Renew leaves at their renewal time, forever (until cancelled).

        A renewal that fails is tried again, the loop outliving it so that leaves never silently
        expire: every second while the store is unreachable (the store reports the outage once),
        else (issuer unusable, a bug) logged and tried again at most 30 s later.
        """
        retry = _RETRY_SECONDS
        while True:
            now = self._clock()
            due = [leaf.subject for leaf in self._leaves.values() if leaf.renew_at <= now]
            if due:
                try:
                    async with self._lock:
                        await self._issue(due)
                        self._publish()
                except Unavailable:
                    # Nothing was saved or published, and the leaves stay valid long past their
                    # renewal time: try again shortly.
                    await asyncio.sleep(_RENEW_RETRY_SECONDS)
                    continue
                except Exception as exc:
                    log.warning("renewal failed count=%d error=%s; retrying", len(due), exc)
                    await asyncio.sleep(retry)
                    continue
                log.info("renewed leaves count=%d", len(due))
            upcoming = [leaf.renew_at for leaf in self._leaves.values()]
            wait = min([(t - self._clock()).total_seconds() for t in upcoming] + [retry])
            await asyncio.sleep(max(wait, 0.05))

    async def _new_root(self) -> Authority:
        """A fresh self-signed root of the configured key type and lifetime (generating the
        key blocks, so it runs on a thread)."""
        return await asyncio.to_thread(
            new_root,
            self.config.trust_domain,
            self._clock(),
            ttl=self.config.root_ttl,
            key_type=self.config.key_type,
        )

    # -- root rotation -------------------------------------------------------------------

    async def start_root_rotation(
        self, new: Authority | None = None, overlap: dt.timedelta | None = None
    ) -> CaStatus:
        """Begin rotating to `new` (a fresh root when None) with `overlap` (the config's if None).

        Raises UnusableAuthority if `new` cannot sign the mesh's leaves (certs/checks.py), and
        Conflict if a rotation is under way, stopped on an error, or `new` is already trusted.
        """
        async with self._lock:
            self._refuse_if_rotating()
            if new is None:
                new = await self._new_root()
            else:
                await asyncio.to_thread(
                    check_import,
                    new,
                    self._clock(),
                    trust_domain=self.config.trust_domain,
                    min_lifetime=self.config.leaf_ttl,
                )
                self._refuse_if_trusted(new)
            await self._add(new, "incoming")
            self._finish.clear()
            self._undoing = False
            self._phase, self._detail = "adding-root", "new root added to the trust bundle"
            self._publish()
            self._start_rotation(self.config.overlap if overlap is None else overlap)
        return self.status()

    async def finish_rotation(self) -> CaStatus:
        """End the overlap now: the old root leaves the trust bundle once leaves are re-issued.

        A rotation that stopped on an error goes on from where it stopped, without overlap.
        Conflict if no rotation is under way, or it is being aborted.
        """
        async with self._lock:
            if self._undoing or not self._unfinished():
                raise Conflict("no root rotation is waiting to finish")
            self._finish.set()
            if self._rotation is None or self._rotation.done():
                self._start_rotation(dt.timedelta(0))
        return self.status()

    async def abort_rotation(self) -> CaStatus:
        """Go back to the root that issued before the rotation, without breaking a connection.

        adding-root: no leaf is signed by the new root yet, so it leaves the trust bundle at once.
        reissuing, overlap: the previous root issues again; every leaf is re-issued from it while
        both roots stay trusted; once every proxy holds its new leaf, the new root leaves the
        trust bundle (phase "aborting", then "idle"). An abort that stopped on an error goes on.
        Conflict if there is nothing to abort, an abort is under way, or the previous root can no
        longer sign leaves (expired, or expiring within a leaf lifetime): finish instead.
        """
        async with self._lock:
            if not self._unfinished():
                raise Conflict("no root rotation to abort")
            if self._undoing and self._rotation is not None and not self._rotation.done():
                raise Conflict("the root rotation is being aborted already")
            if not self._undoing:
                previous = await self._previous_root()
                await self._stop_rotation()
                incoming = [r.id for r in self._rows.values() if r.state == "incoming"]
                if incoming:
                    await self._set_states({i: ("retired", None) for i in incoming})
                    self._publish()
                    self._phase = "idle"
                    self._detail = "rotation aborted: the new root left the trust bundle"
                    log.info("ca rotation aborted phase=adding-root")
                    return self.status()
                now = self._clock()
                trusted = [r.id for r in self._rows.values() if r.state != "retired"]
                states = {i: ("outgoing", now) for i in trusted if i != previous}
                await self._set_states({**states, previous: ("issuing", None)})
                self._undoing = True
            self._finish.set()
            self._phase, self._detail = "aborting", "going back to the previous root"
            log.info("ca rotation aborting: back to root id=%d", self._issuing()[0])
            self._start_rotation(dt.timedelta(0))
        return self.status()

    async def wait_rotation(self) -> None:
        """Wait until the rotation task ends: finished, or stopped on an error (see status())."""
        if self._rotation is not None:
            await asyncio.shield(self._rotation)

    def _unfinished(self) -> bool:
        """A rotation has begun and not ended (running, or stopped on an error)."""
        return any(r.state in _MOVING for r in self._rows.values())

    def _refuse_if_rotating(self) -> None:
        if self._rotation is not None and not self._rotation.done():
            raise Conflict(f"a root rotation is already in phase {self._phase!r}")
        if self._unfinished():
            raise Conflict(
                f"the last root rotation stopped on an error in phase {self._phase!r}: "
                "abort it (`meshplane ca abort`) or finish it (`meshplane ca finish`) first"
            )

    def _refuse_if_trusted(self, new: Authority) -> None:
        for row in self._rows.values():
            if row.state != "retired" and self._cas[row.id].cert == new.cert:
                raise Conflict(f"the mesh already trusts this certificate (root id {row.id})")

    async def _previous_root(self) -> int:
        """The root to go back to: the outgoing one most recently issuing, if it can still sign."""
        outgoing = [r for r in self._rows.values() if r.state == "outgoing"]
        if not outgoing:  # adding-root: the previous root still issues
            return self._issuing()[0]
        row = max(outgoing, key=lambda r: (r.retire_at or self._clock(), r.id))
        try:
            await asyncio.to_thread(
                check_import,
                self._cas[row.id],
                self._clock(),
                trust_domain=self.config.trust_domain,
                min_lifetime=self.config.leaf_ttl,
            )
        except UnusableAuthority as exc:
            raise Conflict(
                f"cannot go back to the previous root (id {row.id}): {exc}; "
                "finish the rotation instead (`meshplane ca finish`)"
            ) from None
        return row.id

    def _start_rotation(self, overlap: dt.timedelta | None) -> None:
        self._rotation = asyncio.create_task(self._rotate(overlap), name="meshplane-ca-rotation")

    async def _stop_rotation(self) -> None:
        """Cancel the rotation task; called under the lock, so it waits outside every write."""
        task, self._rotation = self._rotation, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _set_states(self, states: dict[int, tuple[str, dt.datetime | None]]) -> None:
        """Move CAs to new states, in the database (one transaction) and then in memory."""
        await self._repo.set_states(states)
        for row_id, (state, retire_at) in states.items():
            self._rows[row_id] = replace_row(self._rows[row_id], state, retire_at)

    async def _wait_converged(self, what: str) -> None:
        version = self._state.version
        deadline = asyncio.get_running_loop().time() + self.config.convergence_timeout
        while not await self.converged(version):
            if asyncio.get_running_loop().time() > deadline:
                log.warning(
                    "ca rotation phase=%s: not every proxy acknowledged; going on", self._phase
                )
                return
            self._detail = f"waiting for every proxy to acknowledge {what}"
            await asyncio.sleep(0.02)

    async def _rotate(self, overlap: dt.timedelta | None = None) -> None:
        """Run the remaining steps; `overlap` None (resumed at start-up) keeps the stored one."""
        try:
            await self._rotation_steps(overlap)
        except Exception as exc:
            log.exception("ca rotation failed phase=%s", self._phase)
            self._detail = (
                f"failed ({type(exc).__name__}; see the control plane's log): "
                "`meshplane ca abort` goes back to the previous root, `meshplane ca finish` retries"
            )

    async def _rotation_steps(self, overlap: dt.timedelta | None) -> None:
        if any(r.state == "incoming" for r in self._rows.values()):
            self._phase = "adding-root"
            await self._wait_converged("the new trust bundle")
            async with self._lock:
                old_id, _ = self._issuing()
                new_id = next(r.id for r in self._rows.values() if r.state == "incoming")
                retire_at = self._clock() + (self.config.overlap if overlap is None else overlap)
                await self._set_states({old_id: ("outgoing", retire_at), new_id: ("issuing", None)})
        which = "previous" if self._undoing else "new"
        self._phase = "aborting" if self._undoing else "reissuing"
        self._detail = f"re-issuing every leaf from the {which} root"
        async with self._lock:
            _, authority = self._issuing()
            serial = format(authority.cert.serial_number, "x")
            stale = [s for s, leaf in self._leaves.items() if leaf.issuer_serial != serial]
            if stale:
                await self._issue(stale)
            self._publish()
        await self._wait_converged(f"leaves from the {which} root")
        retire_at = await self._begin_overlap(overlap)
        if not self._undoing:
            self._phase = "overlap"
            self._detail = (
                f"both roots trusted until {retire_at.isoformat()} or `meshplane ca finish`"
            )
        delay = max((retire_at - self._clock()).total_seconds(), 0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finish.wait(), timeout=delay)
        async with self._lock:
            outgoing = [r.id for r in self._rows.values() if r.state == "outgoing"]
            await self._set_states({i: ("retired", None) for i in outgoing})
            self._publish()
        self._phase = "idle"
        if self._undoing:
            self._detail = "rotation aborted: the previous root issues again, the new one left"
        else:
            self._detail = "rotation finished; only the new root is trusted"
        self._undoing = False
        log.info("ca rotation finished")

    async def _begin_overlap(self, overlap: dt.timedelta | None) -> dt.datetime:
        """Every outgoing root retires `overlap` from now (the overlap follows re-issuing).

        Resumed at start-up (`overlap` None), the latest stored retirement time holds for all.
        """
        async with self._lock:
            outgoing = [r for r in self._rows.values() if r.state == "outgoing"]
            now = self._clock()
            if overlap is not None:
                retire_at = now + overlap
            else:
                retire_at = max((r.retire_at for r in outgoing if r.retire_at), default=now)
            if any(r.retire_at != retire_at for r in outgoing):
                await self._set_states({r.id: ("outgoing", retire_at) for r in outgoing})
            return retire_at

    # -- reporting -----------------------------------------------------------------------

    def status(self) -> CaStatus:
        roots = []
        for row in self._rows.values():
            cert = self._cas[row.id].cert
            roots.append(
                RootInfo(
                    row.id,
                    format(cert.serial_number, "x"),
                    cert.subject.rfc4514_string(),
                    cert.not_valid_before_utc,
                    cert.not_valid_after_utc,
                    row.state,
                    row.retire_at,
                )
            )
        return CaStatus(
            self._phase, self.config.trust_domain, self._state.version, roots, self._detail
        )


def _split_host_names(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """issue_leaf's keywords: IP addresses apart from DNS names."""
    dns: list[str] = []
    ips: list[str] = []
    for name in names:
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name)
    return {"dns_names": tuple(dns), "ip_addresses": tuple(ips)}


def replace_row(row: CaAuthorityRow, state: str, retire_at: dt.datetime | None) -> CaAuthorityRow:
    """A detached copy of `row` with a new state (rows are plain records once loaded)."""
    return CaAuthorityRow(
        id=row.id,
        cert_pem=row.cert_pem,
        chain_pem=row.chain_pem,
        key_sealed=row.key_sealed,
        state=state,
        created_at=row.created_at,
        retire_at=retire_at,
    )
