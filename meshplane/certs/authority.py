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
step, and the phase is read from them, so a restart resumes a rotation, or an abort, where it
stood, and on several replicas any of them takes a command while the leader runs the steps,
each a compare-and-set on the stored states; "every connected proxy" is every replica's.
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
from cryptography.exceptions import InvalidSignature

from meshplane.certs.ca import (
    Authority,
    IssuedLeaf,
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

__all__ = ["EDGE_TTL", "MAX_OVERLAP", "CaConfig", "CaStatus", "CertificateAuthority", "RootInfo"]

log = logging.getLogger(__name__)

EDGE_TTL = dt.timedelta(days=30)  # an edge certificate the mesh issues; renewed at two thirds
MAX_OVERLAP = dt.timedelta(days=365)  # the longest both roots may stay trusted in a rotation
_RETRY_SECONDS = 30.0  # the longest the renewal loop sleeps, and its pause after a failure
# Seconds between renewal attempts while the store is unreachable (the store logs the outage).
_RENEW_RETRY_SECONDS = 1.0
_MOVING = ("incoming", "outgoing")  # root states that exist only during a rotation
_CONVERGED_POLL_S = 0.05  # how often a rotation step asks whether every proxy caught up

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
    pem: str  # the root certificate: public, what clients of a mesh-issued certificate trust


@dataclass(frozen=True, slots=True)
class CaStatus:
    phase: str  # idle | adding-root | reissuing | overlap
    trust_domain: str
    identity_version: int
    roots: list[RootInfo]
    detail: str


class CertificateAuthority:
    """Issues leaves per identity, renews them before expiry, and rotates roots in phases.

    Every replica runs one over the shared database: the database holds the CA's state, and
    each reads what the others wrote (`hear`, `watch`). Any replica issues a new identity's
    first leaf (two at once converge on the first stored) and takes the operator's rotation
    commands (stored as states); only the leader (`set_leading`) renews leaves and runs the
    rotation's steps. Leaves that name this server's host names (`ensure_server`) are its own:
    never stored, renewed and re-issued by the replica that uses them.
    """

    def __init__(
        self,
        repo: IdentityRepo,
        box: SecretBox,
        config: CaConfig,
        *,
        clock: Clock = _utc_now,
        rng: random.Random | None = None,
        converged: Converged = _always,
        leading: bool = True,
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
        self._loaded = 0  # the CA generation the state holds everything of
        self._state = IdentityState(config.trust_domain)
        self._subscribers: list[Callable[[IdentityState], None]] = []
        self._lock = asyncio.Lock()
        self._rotation: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # the stored state changed: rotation steps look again
        self._renewals = asyncio.Event()  # wakes the renewal loop (leadership, new issuer)
        self._heard = asyncio.Event()  # another replica wrote (see `hear`)
        self._leading = leading
        self._detail = ""
        self._failed = ""  # why the rotation task stopped, until a command or step changes it
        self.converged = converged

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> IdentityState:
        return self._state

    @property
    def leading(self) -> bool:
        return self._leading

    def subscribe(self, subscriber: Callable[[IdentityState], None]) -> None:
        self._subscribers.append(subscriber)

    def _publish(self) -> None:
        """Announce the state: its version is the CA generation it holds everything of, so
        versions compare across replicas (a rotation step waits for every replica's proxies)."""
        bundle: list[str] = []
        for row in self._rows.values():
            if row.state != "retired":
                pem = self._cas[row.id].root_pem()
                if pem not in bundle:
                    bundle.append(pem)
        self._state = IdentityState(
            self.config.trust_domain, self._loaded, tuple(bundle), dict(self._leaves)
        )
        for subscriber in self._subscribers:
            subscriber(self._state)

    def _issuing_row(self) -> CaAuthorityRow | None:
        return next((r for r in self._rows.values() if r.state == "issuing"), None)

    def _issuing(self) -> tuple[int, Authority]:
        row = self._issuing_row()
        if row is None:
            raise RuntimeError("no issuing CA")
        return row.id, self._cas[row.id]

    async def _reload(self) -> bool:
        """Read what was stored since the state's generation (every replica's writes, this
        one's too); True if anything was. Called under the lock."""
        changes = await self._repo.changes_since(self._loaded)
        if changes.generation <= self._loaded:
            return False
        before = {r.id: _rotation_fields(r) for r in self._rows.values()}
        for row in changes.authorities:
            if row.id not in self._cas:
                key = self._box.open(row.key_sealed)
                self._cas[row.id] = load_authority(row.cert_pem, key, row.chain_pem)
        self._rows = {row.id: row for row in changes.authorities}
        for leaf_row in changes.leaves:
            held = self._leaves.get(leaf_row.subject)
            if leaf_row.subject in self._host_names:
                continue  # this server's own leaf: never the one stored
            if held is None or held.serial != leaf_row.serial:
                self._leaves[leaf_row.subject] = self._leaf_from_row(leaf_row)
        self._loaded = changes.generation
        if before != {r.id: _rotation_fields(r) for r in self._rows.values()}:
            self._failed = ""  # a command (or a step) moved the rotation: it may run again
            self._renewals.set()  # the issuer may have changed: own leaves follow it
        self._changed.set()
        return True

    async def _commit(self) -> None:
        """After a write: hold what is stored now (with every other replica's writes before
        it) and announce it."""
        await self._reload()
        self._publish()

    # -- start-up and following other replicas -------------------------------------------

    async def start(self) -> None:
        """Load the CA from the database, creating a root on first start; resume a rotation."""
        async with self._lock:
            await self._reload()
            if self._issuing_row() is None:
                root = await self._new_root()
                if await self._repo.add_authority(self._row(root, "issuing"), unless=("issuing",)):
                    log.info(
                        "created root CA serial=%x trust_domain=%s",
                        root.cert.serial_number,
                        self.config.trust_domain,
                    )
                await self._reload()  # or the root another replica created at the same time
            self._publish()
        self._kick()

    def hear(self, generation: int) -> None:
        """A CA write was committed (told by the revision listener, on the loop): `watch`
        reads it unless the state holds it already."""
        if generation > self._loaded:
            self._heard.set()

    async def watch(self, every: float = 1.0) -> None:
        """Follow the writes of other replicas, at each notice and every `every` seconds (for
        notices missed), forever; a failed read is tried again at the next one."""
        while True:
            await _wait(self._heard, every)
            self._heard.clear()
            try:
                if await self._repo.generation() > self._loaded:
                    await self.follow()
            except Exception as exc:  # the store reports its outages; anything else is logged
                if not isinstance(exc, Unavailable):
                    log.warning("reading the CA's changes failed error=%s; retrying", exc)

    async def follow(self) -> None:
        """Read and announce what other replicas stored; the leader's rotation looks again."""
        async with self._lock:
            if await self._reload():
                self._publish()
        self._kick()

    def set_leading(self, leading: bool) -> None:
        """This replica became (or stopped being) the leader: it runs renewals and rotation
        steps only while leading (store/leader.py)."""
        self._leading = leading
        self._renewals.set()
        if leading:
            self._kick()
        elif self._rotation is not None:
            self._rotation.cancel()  # the new leader goes on from the stored state
            self._rotation = None

    def _row(
        self, authority: Authority, state: str, overlap: float | None = None
    ) -> CaAuthorityRow:
        return CaAuthorityRow(
            cert_pem=authority.cert_pem(),
            chain_pem=authority.chain_pem(),
            key_sealed=self._box.seal(authority.key_pem()),
            state=state,
            created_at=self._clock(),
            overlap_seconds=overlap,
        )

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
                await self._reload()  # another replica may have issued them
                missing = [s for s in missing if s not in self._leaves]
            if missing:
                await self._issue(missing, replace=False)
                await self._commit()

    async def ensure_server(self, subject: str, host_names: Iterable[str]) -> None:
        """Issue `subject` a fresh leaf that also names `host_names` (DNS names or IP addresses),
        for a server that clients check by host name; its renewals keep naming them. Such a
        leaf is this replica's own: not stored, renewed and re-issued here."""
        self._host_names[subject] = tuple(dict.fromkeys(host_names))
        await self.rotate_leaves([subject])

    async def rotate_leaves(self, subjects: Iterable[str] | None = None) -> list[Leaf]:
        """Re-issue leaves now (all when `subjects` is None); Envoy swaps them over SDS."""
        async with self._lock:
            chosen = list(self._leaves) if subjects is None else list(dict.fromkeys(subjects))
            issued = await self._issue(chosen, replace=True)
            await self._commit()
        log.info("rotated leaves count=%d", len(issued))
        return issued

    async def _issue(self, subjects: list[str], *, replace: bool) -> list[Leaf]:
        """Issue a leaf to each subject from the issuing root and store the shared ones
        (`replace` False keeps a leaf stored meanwhile); the caller commits."""
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
            if subject in self._host_names:
                self._leaves[subject] = leaf
                continue
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
        if rows:
            await self._repo.save_leaves(rows, replace=replace)
        return issued

    async def issue_edge(self, hostnames: Iterable[str]) -> IssuedLeaf:
        """A server certificate for `hostnames` from the issuing root (an edge certificate the
        mesh issues, `tls-certificates` with `issuer: mesh`), valid EDGE_TTL at most; not
        stored here: the store keeps it as the resource's certificate and sealed key."""
        async with self._lock:
            _, authority = self._issuing()
        return await asyncio.to_thread(
            issue_leaf,
            authority,
            "",
            self._clock(),
            ttl=EDGE_TTL,
            key_type=self.config.key_type,
            dns_names=tuple(dict.fromkeys(hostnames)),
        )

    def issuing_serial(self) -> str | None:
        """The serial (hex) of the root that issues now; None before the CA has one."""
        row = self._issuing_row()
        return None if row is None else format(self._cas[row.id].cert.serial_number, "x")

    def issues_now(self, chain_pem: str) -> bool:
        """Whether the root that issues now signed the leaf of `chain_pem` (an edge
        certificate the mesh issued): after a root rotation promotes a new root, those of the
        old one are to be issued again before it leaves the trust bundle."""
        row = self._issuing_row()
        if row is None:
            return False
        try:
            leaf = x509.load_pem_x509_certificate(chain_pem.encode())
            leaf.verify_directly_issued_by(self._cas[row.id].cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    def leaves(self) -> list[Leaf]:
        return [self._leaves[s] for s in sorted(self._leaves)]

    def _renews(self, subject: str, leaf: Leaf, now: dt.datetime) -> bool:
        """Whether this replica renews `leaf` now: the leader the stored ones when due; each
        replica its own when due or signed by a root that no longer issues."""
        if subject in self._host_names:
            row = self._issuing_row()
            issuer = format(self._cas[row.id].cert.serial_number, "x") if row else ""
            return leaf.renew_at <= now or leaf.issuer_serial != issuer
        return self._leading and leaf.renew_at <= now

    async def run(self) -> None:
        """Renew leaves at their renewal time, forever (until cancelled).

        A renewal that fails is tried again, the loop outliving it so that leaves never silently
        expire: every second while the store is unreachable (the store reports the outage once),
        else (issuer unusable, a bug) logged and tried again at most 30 s later.
        """
        retry = _RETRY_SECONDS
        while True:
            self._renewals.clear()
            now = self._clock()
            due = [s for s, leaf in self._leaves.items() if self._renews(s, leaf, now)]
            if due:
                try:
                    async with self._lock:
                        await self._issue(due, replace=True)
                        await self._commit()
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
            await _wait(self._renewals, max(wait, 0.05))

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

    # -- root rotation: commands (any replica) -------------------------------------------

    async def start_root_rotation(
        self, new: Authority | None = None, overlap: dt.timedelta | None = None
    ) -> CaStatus:
        """Begin rotating to `new` (a fresh root when None) with `overlap` (the config's if None).

        Raises UnusableAuthority if `new` cannot sign the mesh's leaves (certs/checks.py), and
        Conflict if a rotation is under way, stopped on an error, or `new` is already trusted.
        """
        async with self._lock:
            await self._reload()
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
            seconds = (self.config.overlap if overlap is None else overlap).total_seconds()
            row = self._row(new, "incoming", seconds)
            if not await self._repo.add_authority(row, unless=_MOVING):
                raise Conflict("a root rotation was started at the same time (another replica)")
            self._detail = "new root added to the trust bundle"
            await self._commit()
        self._kick()
        return self.status()

    async def finish_rotation(self) -> CaStatus:
        """End the overlap now: the old root leaves the trust bundle once leaves are re-issued.

        A rotation that stopped on an error goes on from where it stopped, without overlap.
        Conflict if no rotation is under way, or it is being aborted.
        """
        async with self._lock:
            await self._reload()
            if self._phase() in ("idle", "aborting"):
                raise Conflict("no root rotation is waiting to finish")
            await self._repo.finish(self._clock())
            self._failed = ""
            await self._commit()
        self._kick()
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
            await self._reload()
            phase = self._phase()
            if phase == "idle":
                raise Conflict("no root rotation to abort")
            if phase == "aborting":
                if not self._failed:
                    raise Conflict("the root rotation is being aborted already")
            else:
                await self._go_back()
            self._failed = ""
            await self._commit()
        self._kick()
        return self.status()

    async def _go_back(self) -> None:
        """Store the abort: the new root retires at once if it signed nothing yet; else the
        previous root issues again with no overlap and the others are outgoing now."""
        previous = await self._previous_root()
        expect = {r.id: r.state for r in self._rows.values() if r.state != "retired"}
        incoming = [i for i, state in expect.items() if state == "incoming"]
        if incoming:
            await self._repo.set_states({i: ("retired", None) for i in incoming}, expect=expect)
            self._detail = "rotation aborted: the new root left the trust bundle"
            log.info("ca rotation aborted phase=adding-root")
            return
        now = self._clock()
        states = {i: ("outgoing", now) for i in expect if i != previous}
        await self._repo.set_states(
            {**states, previous: ("issuing", None)}, overlap={previous: 0.0}, expect=expect
        )
        self._detail = "going back to the previous root"
        log.info("ca rotation aborting: back to root id=%d", previous)

    async def wait_rotation(self) -> None:
        """Wait until the rotation task ends: finished, or stopped on an error (see status())."""
        if self._rotation is not None:
            await asyncio.shield(self._rotation)

    def _unfinished(self) -> bool:
        """A rotation has begun and not ended (running, or stopped on an error)."""
        return any(r.state in _MOVING for r in self._rows.values())

    def _phase(self) -> str:
        """The rotation's phase, read from the roots' states (the same on every replica)."""
        rows = list(self._rows.values())
        if any(r.state == "incoming" for r in rows):
            return "adding-root"
        outgoing = [r for r in rows if r.state == "outgoing"]
        issuing = self._issuing_row()
        if not outgoing or issuing is None:
            return "idle"
        if any(r.id > issuing.id for r in outgoing):  # an older root issues again
            return "aborting"
        return "reissuing" if issuing.overlap_seconds is not None else "overlap"

    def _refuse_if_rotating(self) -> None:
        if not self._unfinished():
            return
        if self._failed:
            raise Conflict(
                f"the last root rotation stopped on an error in phase {self._phase()!r}: "
                "abort it (`meshplane ca abort`) or finish it (`meshplane ca finish`) first"
            )
        raise Conflict(f"a root rotation is already in phase {self._phase()!r}")

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

    # -- root rotation: the steps (the leader) -------------------------------------------

    def _kick(self) -> None:
        """On the leader, make the rotation task look at the stored state: start it when a
        rotation is unfinished and it is not running (unless it stopped on an error nothing
        has changed since), else wake it."""
        if not self._leading or not self._unfinished():
            return
        if self._rotation is not None and not self._rotation.done():
            self._changed.set()
        elif not self._failed:
            self._rotation = asyncio.create_task(self._rotate(), name="meshplane-ca-rotation")

    async def _stop_rotation(self) -> None:
        """Cancel the rotation task (a stop, or leadership lost); the stored state remains."""
        task, self._rotation = self._rotation, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _rotate(self) -> None:
        """Take the step the stored state calls for, and again, until the rotation ended.
        Every step is a compare-and-set on the roots' states: one that finds them changed (a
        command, another leader) stores nothing, and the next look decides anew."""
        try:
            while self._unfinished():
                self._changed.clear()
                try:
                    await self._step()
                except Conflict:
                    async with self._lock:
                        await self._commit()
        except Exception as exc:
            log.exception("ca rotation failed phase=%s", self._phase())
            self._failed = (
                f"failed ({type(exc).__name__}; see the control plane's log): "
                "`meshplane ca abort` goes back to the previous root, `meshplane ca finish` retries"
            )
            return
        log.info("ca rotation finished")

    async def _step(self) -> None:
        issuing = self._issuing_row()
        assert issuing is not None
        if any(r.state == "incoming" for r in self._rows.values()):
            if await self._wait_converged("the new trust bundle"):
                await self._promote()
        elif issuing.overlap_seconds is not None:
            await self._reissue()
            if await self._wait_converged(f"leaves from the {self._which()} root"):
                await self._begin_overlap()
        else:
            await self._retire_when_due()

    def _which(self) -> str:
        return "previous" if self._phase() == "aborting" else "new"

    async def _promote(self) -> None:
        """adding-root -> reissuing: the new root signs; the old one stays trusted."""
        async with self._lock:
            old = self._issuing_row()
            new = next(r for r in self._rows.values() if r.state == "incoming")
            assert old is not None
            retire_at = self._clock() + dt.timedelta(seconds=new.overlap_seconds or 0.0)
            await self._repo.set_states(
                {old.id: ("outgoing", retire_at), new.id: ("issuing", None)},
                expect={old.id: "issuing", new.id: "incoming"},
            )
            await self._commit()

    async def _reissue(self) -> None:
        """Re-issue every stored leaf the issuing root did not sign."""
        self._detail = f"re-issuing every leaf from the {self._which()} root"
        async with self._lock:
            _, authority = self._issuing()
            serial = format(authority.cert.serial_number, "x")
            stale = [
                s
                for s, leaf in self._leaves.items()
                if leaf.issuer_serial != serial and s not in self._host_names
            ]
            if stale:
                await self._issue(stale, replace=True)
                await self._commit()

    async def _begin_overlap(self) -> None:
        """reissuing -> overlap: every outgoing root retires the rotation's overlap from now."""
        async with self._lock:
            issuing = self._issuing_row()
            assert issuing is not None
            assert issuing.overlap_seconds is not None
            retire_at = self._clock() + dt.timedelta(seconds=issuing.overlap_seconds)
            outgoing = [r.id for r in self._rows.values() if r.state == "outgoing"]
            await self._repo.set_states(
                {i: ("outgoing", retire_at) for i in outgoing},
                overlap={issuing.id: None},
                expect={issuing.id: "issuing"} | {i: "outgoing" for i in outgoing},
            )
            await self._commit()
        if self._phase() == "overlap":
            self._detail = (
                f"both roots trusted until {retire_at.isoformat()} or `meshplane ca finish`"
            )

    async def _retire_when_due(self) -> None:
        """overlap -> idle: the outgoing roots leave the trust bundle at their time (sooner
        when a command changes the stored state)."""
        outgoing = [r for r in self._rows.values() if r.state == "outgoing"]
        retire_at = max((r.retire_at for r in outgoing if r.retire_at), default=self._clock())
        delay = (retire_at - self._clock()).total_seconds()
        if delay > 0 and await _wait(self._changed, delay):
            return  # the stored state changed: look again
        aborted = self._phase() == "aborting"
        async with self._lock:
            await self._repo.set_states(
                {r.id: ("retired", None) for r in outgoing},
                expect={r.id: "outgoing" for r in outgoing},
            )
            await self._commit()
        if aborted:
            self._detail = "rotation aborted: the previous root issues again, the new one left"
        else:
            self._detail = "rotation finished; only the new root is trusted"

    async def _wait_converged(self, what: str) -> bool:
        """Wait until every proxy holds the current state: True then (or after the timeout,
        logged), False as soon as the stored state changed (the step looks again)."""
        version = self._state.version
        deadline = asyncio.get_running_loop().time() + self.config.convergence_timeout
        while not await self.converged(version):
            if self._changed.is_set():
                return False
            if asyncio.get_running_loop().time() > deadline:
                log.warning(
                    "ca rotation phase=%s: not every proxy acknowledged; going on", self._phase()
                )
                return True
            self._detail = f"waiting for every proxy to acknowledge {what}"
            await asyncio.sleep(_CONVERGED_POLL_S)
        return True

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
                    self._cas[row.id].root_pem(),
                )
            )
        phase = self._phase()
        detail = self._failed or self._detail
        if phase != "idle" and not self._leading and not self._failed:
            detail = f"{phase}: the leader replica runs the steps"
        return CaStatus(phase, self.config.trust_domain, self._state.version, roots, detail)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `event`; whether it was set. (`asyncio.timeout`, not
    `wait_for`, which on Python 3.11 can swallow a cancellation that meets the event.)"""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _rotation_fields(row: CaAuthorityRow) -> tuple[str, dt.datetime | None, float | None]:
    return row.state, row.retire_at, row.overlap_seconds


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
