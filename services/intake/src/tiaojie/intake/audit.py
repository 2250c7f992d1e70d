"""The audit log: every read of a case by a person, every reveal of personal data and
every document made or filed, with who, role, when, which case and purpose. Entries are
only ever appended; the bureau reads those of its counties; they are kept at least six
months (网络安全法 Art. 21) and then pruned (FerretDB 1.24 has no TTL index)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from tiaojie.intake.models import CaseDoc
from tiaojie.intake.transitions import IntakeCore
from tiaojie.runtime.errors import FieldError, Invalid
from tiaojie.runtime.mongo import Document, sweep_forever

# What was done, with the purpose recorded when the caller names none.
ACTIONS = {
    "read": ("查看案件", "办理或督导案件"),
    "reveal": ("查看个人信息明文", "办理案件需核对当事人身份或联系当事人"),
    "file": ("查看卷宗目录", "办理或督导案件"),
    "document": ("生成或归入文书", "制作卷宗"),
}


@dataclass(frozen=True)
class AuditPage:
    entries: list[Document]
    next_cursor: str | None


def encode_cursor(entry: Document) -> str:
    at: datetime = entry["at"]
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{entry['_id']}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, entry_id = raw.split("|", 1)
        return datetime.fromisoformat(at), entry_id
    except (ValueError, UnicodeDecodeError):
        raise Invalid(
            [
                FieldError(
                    "cursor", "invalid_cursor", "分页游标无效", "the cursor is not one this service issued"
                )
            ]
        ) from None


class Auditing(IntakeCore):
    async def audit(
        self, *, case: CaseDoc, subject: str, role: str, action: str, purpose: str | None = None
    ) -> None:
        """Append who did what to which case, when and why."""
        await self.repo.record_audit(
            {
                "case_id": case.id,
                "county": case.county,
                "subject": subject,
                "role": str(role),
                "action": action,
                "purpose": purpose or ACTIONS[action][1],
                "at": self.clock.now(),
            }
        )

    async def audit_page(
        self,
        *,
        counties: frozenset[str],
        case_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> AuditPage:
        """One page of the audit of the counties (or of one case among them), oldest first."""
        entries = await self.repo.audit_page(
            counties=counties,
            case_id=case_id,
            since=since,
            until=until,
            after=decode_cursor(cursor) if cursor else None,
            limit=limit + 1,  # one more tells whether another page follows
        )
        more = len(entries) > limit
        entries = entries[:limit]
        return AuditPage(entries=entries, next_cursor=encode_cursor(entries[-1]) if more else None)

    async def prune_audit(self) -> int:
        """Remove the entries older than the retention period."""
        before = self.clock.now() - timedelta(days=self.settings.audit_retention_days)
        return await self.repo.prune_audit(before=before)

    async def prune_audit_forever(self, interval: float) -> None:
        """Prune every `interval` seconds until cancelled."""
        await sweep_forever(self.prune_audit, interval, what="audit retention prune")
