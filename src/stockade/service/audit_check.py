"""How an audit log is judged (docs/audit.md): each stored row checked against its hash and signature,
then the whole log, genuine rows and signed head together, turned into named problems (edited, deleted,
inserted, reordered, truncated, bad_signature). Writing and signing are audit.py's; this half only reads.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS_HASH: Final = "0" * 64  # prev_hash of record 1

ProblemKind = Literal["edited", "deleted", "inserted", "reordered", "truncated", "bad_signature"]


def canonical_json(obj: Any) -> bytes:
    """The exact bytes that are hashed: sorted keys, no whitespace, UTF-8, no NaN/Infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def sig_ok(public_key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Problem:
    seq: int  # the record concerned (for ranges, the first one)
    kind: ProblemKind
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class Head:
    """Signed claim "the log has `seq` records and the last one hashes to `hash`"."""

    seq: int
    hash: str
    time: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "time": self.time, "signature": self.signature}


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    count: int  # records examined
    problems: list[Problem] = field(default_factory=list)
    head: Head | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "problems": [p.to_json() for p in self.problems],
            "head": self.head.to_json() if self.head else None,
        }


@dataclass(frozen=True)
class _Row:
    position: int  # the seq column: where the record is stored
    claimed: int | None  # the seq inside the (possibly forged) body
    prev_hash: str | None
    hash: str
    hash_ok: bool  # body hashes to `hash`
    sig_ok: bool  # `hash` is signed by the audit key
    time_ok: bool  # time column matches the body (export --since filters on it)

    @property
    def genuine(self) -> bool:
        return self.hash_ok and self.sig_ok


def check_row(public_key: Ed25519PublicKey, position: int, time: str, body: str, hash_: str, sig: str) -> _Row:
    try:
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise ValueError("body is not an object")
        hash_ok = hashlib.sha256(canonical_json(parsed)).hexdigest() == hash_
    except ValueError:  # includes JSONDecodeError
        return _Row(position, None, None, hash_, False, False, False)
    claimed = parsed.get("seq")
    prev = parsed.get("prev_hash")
    try:
        message = bytes.fromhex(hash_)
    except ValueError:
        message = b""
    return _Row(
        position=position,
        claimed=claimed if isinstance(claimed, int) and not isinstance(claimed, bool) else None,
        prev_hash=prev if isinstance(prev, str) else None,
        hash=hash_,
        hash_ok=hash_ok,
        sig_ok=bool(message) and sig_ok(public_key, sig, message),
        time_ok=parsed.get("time") == time,
    )


def _longest_increasing(values: list[int]) -> set[int]:
    """Indices of one longest strictly increasing subsequence (patience sorting)."""
    tails: list[int] = []  # tails[k]: smallest tail value of an increasing run of length k+1
    tail_idx: list[int] = []
    prev: list[int] = [-1] * len(values)
    for i, v in enumerate(values):
        k = bisect.bisect_left(tails, v)
        if k == len(tails):
            tails.append(v)
            tail_idx.append(i)
        else:
            tails[k] = v
            tail_idx[k] = i
        prev[i] = tail_idx[k - 1] if k > 0 else -1
    keep: set[int] = set()
    i = tail_idx[-1] if tail_idx else -1
    while i >= 0:
        keep.add(i)
        i = prev[i]
    return keep


def _ranges(seqs: list[int]) -> Iterator[tuple[int, int]]:
    start = end = None
    for s in seqs:
        if start is None or end is None:
            start = end = s
        elif s == end + 1:
            end = s
        else:
            yield start, end
            start = end = s
    if start is not None and end is not None:
        yield start, end


def _span(a: int, b: int) -> str:
    return f"record {a}" if a == b else f"records {a}..{b}"


def analyse(rows: list[_Row], head: Head | None, head_sig_ok: bool, anchor: tuple[int, str] | None) -> list[Problem]:
    """Every problem of a log, sorted: its rows (check_row), its signed head and an optional external
    anchor (seq, hash) an operator kept."""
    problems: list[Problem] = []
    by_seq = _genuine(rows, problems)
    upper = _against_head(rows, by_seq, head, head_sig_ok, problems)
    filled = _altered(rows, by_seq, upper, problems)
    missing = {s for s in range(1, upper + 1) if s not in by_seq} - filled
    last_present = max([*by_seq, *filled, 0])
    for a, b in _ranges(sorted(missing)):
        if a > last_present:
            problems.append(Problem(a, "truncated", f"{_span(a, b)} cut from the end (head says {upper})"))
        else:
            problems.append(Problem(a, "deleted", f"{_span(a, b)} missing"))
    if anchor is not None:
        a_seq, a_hash = anchor
        known = {p.seq for p in problems}
        if a_seq in by_seq and by_seq[a_seq].hash != a_hash:
            problems.append(Problem(a_seq, "edited", f"record {a_seq} differs from the external anchor"))
        elif a_seq not in by_seq and a_seq not in known:
            problems.append(Problem(a_seq, "truncated", f"anchored record {a_seq} is missing (rolled back?)"))
    problems.sort(key=lambda p: (p.seq, p.kind))
    return problems


def _genuine(rows: list[_Row], problems: list[Problem]) -> dict[int, _Row]:
    """The genuine records (hash matches body, signed by us) by the seq they carry, which is trustworthy;
    copies, stale time columns, records out of order and breaks of the chain among them are problems."""
    by_seq: dict[int, _Row] = {}
    ordered: list[_Row] = []
    for r in rows:
        if not r.genuine or r.claimed is None:
            continue
        if r.claimed in by_seq:
            problems.append(
                Problem(r.claimed, "inserted", f"copy of record {r.claimed} stored again at position {r.position}")
            )
            continue
        by_seq[r.claimed] = r
        ordered.append(r)
        if not r.time_ok:
            problems.append(Problem(r.claimed, "edited", "time column differs from the signed record"))

    in_order = _longest_increasing([r.claimed for r in ordered if r.claimed is not None])
    for i, r in enumerate(ordered):
        if i not in in_order and r.claimed is not None:
            problems.append(
                Problem(r.claimed, "reordered", f"record {r.claimed} is stored out of order (position {r.position})")
            )
    for s, r in by_seq.items():
        expected = GENESIS_HASH if s == 1 else (by_seq[s - 1].hash if s - 1 in by_seq else None)
        if expected is not None and r.prev_hash != expected:
            problems.append(Problem(s, "inserted", f"record {s} is signed but not chained to record {s - 1}"))
    return by_seq


def _against_head(
    rows: list[_Row], by_seq: dict[int, _Row], head: Head | None, head_sig_ok: bool, problems: list[Problem]
) -> int:
    """How long the log must be: the signed head's seq (or, without a trusted head, the highest seq or
    position seen); a missing or forged head, and records beyond it, are problems."""
    upper = max([*by_seq, *(r.claimed or 0 for r in rows), *(r.position for r in rows), 0])
    if head is not None and not head_sig_ok:
        problems.append(Problem(head.seq, "bad_signature", "the signed head does not verify"))
    elif head is None and rows:
        problems.append(
            Problem(upper + 1, "truncated", "the signed head is missing: the end of the log cannot be proven")
        )
    elif head is not None:
        upper = head.seq
        last = by_seq.get(upper)
        if last is not None and last.hash != head.hash:
            problems.append(Problem(upper, "edited", f"record {upper} is not the record the head signs"))
        for s in sorted(s for s in by_seq if s > upper):
            problems.append(Problem(s, "inserted", f"record {s} lies beyond the signed head (seq {upper})"))
    return upper


def _altered(rows: list[_Row], by_seq: dict[int, _Row], upper: int, problems: list[Problem]) -> set[int]:
    """Each row that is not genuine either fills the slot of a missing genuine record (it was altered:
    how is named) or is extra (inserted). Returns the slots filled."""
    missing = {s for s in range(1, upper + 1) if s not in by_seq}
    filled: set[int] = set()
    for r in rows:
        if r.genuine:
            continue
        slot = next((s for s in (r.claimed, r.position) if s is not None and s in missing - filled), None)
        if slot is None:
            seq = r.claimed if r.claimed is not None else r.position
            problems.append(Problem(seq, "inserted", f"record at position {r.position} is not signed by the audit key"))
            continue
        filled.add(slot)
        successor = by_seq.get(slot + 1)
        if not r.hash_ok:
            problems.append(Problem(slot, "edited", f"record {slot} does not match its hash"))
        elif successor is not None and successor.prev_hash != r.hash:
            problems.append(Problem(slot, "edited", f"record {slot} was rewritten and re-hashed"))
        else:
            problems.append(Problem(slot, "bad_signature", f"record {slot} has an invalid signature"))
    return filled
