"""Roster rows checked against the registry, as the API would check each filing: ids
resolved by natural key (organisation: its code, else name + division code; mediator: the
keyed hash of the ID number), parents and organisations named by code or by name, rows
repeating one another, the caller's reach (a row naming a record the caller does not see is
refused as not found, one it may not change as forbidden: access.py), and the committees'
sizes after the import (warned, not refused). Nothing is written here."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pydantic import ValidationError

from tiaojie.registry.access import Access
from tiaojie.registry.import_files import ImportReport, ParsedRow, new_issue
from tiaojie.registry.models import COMMITTEES, MediatorIn, OrganisationDoc, OrganisationIn
from tiaojie.registry.service import Protected, RegistryService, natural_organisation_id
from tiaojie.runtime.errors import FieldError, Forbidden, Invalid, NotFound, field_errors

_NOT_FOUND = FieldError("id", "not_found", "该编码对应的记录不存在", "no record with this id")
_FORBIDDEN = FieldError("id", "forbidden", "无权变更该记录", "you may not change this record")


class RowChecks:
    """Every rule of every row; what passes is returned ready to file (with its id)."""

    def __init__(self, service: RegistryService) -> None:
        self.service = service

    # organisations ------------------------------------------------------------------------
    async def organisations(self, *, parsed: list[ParsedRow], access: Access | None) -> list[OrganisationIn]:
        """The rows' organisations with their ids; each row's problems go to the row."""
        # Ids first, so that a parent can be named by code or by name (in this file or stored).
        ids: dict[int, str] = {}
        by_name: dict[str, set[str]] = {}
        for item in parsed:
            name, division = item.values.get("name"), item.values.get("division_code")
            if item.values.get("id"):
                ids[item.row] = item.values["id"]
            elif name and division:
                ids[item.row] = await self._organisation_id(name, division)
            if name and item.row in ids:
                by_name.setdefault(name, set()).add(ids[item.row])
        in_file = set(ids.values())
        for item in parsed:
            parent = item.values.get("parent_id")
            if not parent or parent in in_file or await self.service.repo.get_organisation(parent):
                continue
            named = by_name.get(parent) or {
                o.id for o in await self._stored_by_name(parent, item.values.get("county") or "")
            }
            if len(named) == 1:
                item.values["parent_id"] = next(iter(named))
            else:
                item.values.pop("parent_id")
                item.issue(
                    FieldError("parent_id", "unknown_parent", "上级组织不存在", "no such parent organisation")
                )
        models: list[tuple[ParsedRow, OrganisationIn, str]] = []
        seen: dict[str, int] = {}
        for item in parsed:
            data = self._model(item, OrganisationIn)
            if data is None:
                continue
            org_id = ids.get(item.row) or await self.service.resolve_organisation_id(data)
            if not await self._authorised(
                item, self.service.authorise_organisation(data=data, organisation_id=org_id, access=access)
            ):
                continue
            if org_id in seen:
                item.issue(
                    FieldError(
                        "id" if data.id else "name",
                        "duplicate_row",
                        f"与第{seen[org_id]}行是同一调解组织",
                        f"same organisation as row {seen[org_id]}",
                    )
                )
                continue
            seen[org_id] = item.row
            models.append((item, data, org_id))
        batch = {org_id: data.parent_id for _, data, org_id in models}
        for item, data, org_id in models:
            for error in await self.service.check_organisation(
                data=data, organisation_id=org_id, batch=batch, access=access
            ):
                item.issue(error)
        # Filed together: a parent in the same file needs no order (every row is checked).
        return [data.model_copy(update={"id": org_id}) for _, data, org_id in models]

    async def _organisation_id(self, name: str, division_code: str) -> str:
        for existing in await self.service.repo.organisations_at(division_code):
            if existing.name == name:
                return existing.id
        return natural_organisation_id(division_code, name)

    async def _stored_by_name(self, name: str, county: str) -> list[OrganisationDoc]:
        return [o for o in await self.service.repo.organisations_in(county) if o.name == name]

    # mediators ------------------------------------------------------------------------------
    async def mediators(
        self, *, parsed: list[ParsedRow], access: Access | None, report: ImportReport
    ) -> list[tuple[MediatorIn, Protected]]:
        """The rows' mediators with their ids and protected personal data; each row's
        problems go to the row, the committees' sizes to the report's warnings."""
        ready: list[tuple[MediatorIn, Protected]] = []
        seen: dict[str, int] = {}
        memberships: dict[str, set[str]] = {}
        for item in parsed:
            values = item.values
            county = values.get("county")
            resolved_orgs = []
            for ref in values.get("organisation_ids", []):
                org = await self.service.repo.get_organisation(ref)
                if org is None and county:
                    named = await self._stored_by_name(ref, county)
                    if len(named) > 1:
                        item.issue(
                            FieldError(
                                "organisation_ids",
                                "ambiguous_organisation",
                                "同名调解组织不止一个，请填写组织编码",
                                "more than one organisation has this name; give its code",
                            )
                        )
                    org = named[0] if len(named) == 1 else None
                resolved_orgs.append(org.id if org else ref)
            if resolved_orgs:
                values["organisation_ids"] = resolved_orgs
            data = self._model(item, MediatorIn)
            if data is None:
                continue
            protected, errors = self.service.protect(data)
            for error in errors:
                item.issue(error)
            if protected is None:
                continue
            key = protected.content["id_number_key"]
            if key in seen:
                item.issue(
                    FieldError(
                        "id_number",
                        "duplicate_row",
                        f"与第{seen[key]}行是同一人",
                        f"same person as row {seen[key]}",
                    )
                )
                continue
            seen[key] = item.row
            mediator_id = await self.service.resolve_mediator_id(data, key)
            if not await self._authorised(
                item, self.service.authorise_mediator(data=data, mediator_id=mediator_id, access=access)
            ):
                continue
            for error in await self.service.check_mediator(
                data=data, mediator_id=mediator_id, id_number_key=key, access=access
            ):
                item.issue(error)
            if item.issues:
                continue
            memberships[mediator_id] = set(data.organisation_ids)
            ready.append((data.model_copy(update={"id": mediator_id}), protected))
        await self._committee_warnings(memberships, report)
        return ready

    async def _committee_warnings(self, memberships: dict[str, set[str]], report: ImportReport) -> None:
        """Committees whose membership after this import is outside 3–9: reported, not refused."""
        settings = self.service.settings
        affected = sorted({org for orgs in memberships.values() for org in orgs})
        for org_id in affected:
            org = await self.service.repo.get_organisation(org_id)
            if org is None or org.kind not in COMMITTEES:
                continue
            members = {m for m in await self.service.repo.member_ids(org_id) if m not in memberships}
            members |= {m for m, orgs in memberships.items() if org_id in orgs}
            if not settings.committee_min_members <= len(members) <= settings.committee_max_members:
                report.warnings.append(
                    new_issue(
                        0,
                        org_id,
                        "committee_size",
                        f"{org.name}导入后有{len(members)}名成员，调委会应为"
                        f"{settings.committee_min_members}至{settings.committee_max_members}人",
                        f"committee has {len(members)} members after the import; "
                        f"{settings.committee_min_members}-{settings.committee_max_members} expected",
                    )
                )

    # shared ------------------------------------------------------------------------------------
    @staticmethod
    async def _authorised(item: ParsedRow, check: Awaitable[None]) -> bool:
        """The row's record as it is and as it will be (access.py), as a row issue."""
        try:
            await check
        except NotFound:
            item.issue(_NOT_FOUND)
        except Forbidden:
            item.issue(_FORBIDDEN)
        except Invalid as exc:
            for error in exc.errors:
                item.issue(error)
        else:
            return True
        return False

    def _model(self, item: ParsedRow, model: type[Any]) -> Any:
        if item.issues:
            return None
        try:
            return model.model_validate(item.values)
        except ValidationError as exc:
            for error in field_errors(exc):
                item.issue(error)
            return None
