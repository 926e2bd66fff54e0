"""Segments in the web UI: the list, and the editor with the condition builder.

The editor is a plain form whose rule is the text form in a textarea: it works without
JavaScript. ``static/segments.js`` adds the builder (nested groups of conditions picked
from lists of fields and operators) that writes the textarea, and the live count, both
through ``POST /v1/rules/check?count=true``. A refused rule comes back as the same form
with the reason and where it is, never as a 500.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from relata.api.deps import ReadSession
from relata.segments import catalogue, service
from relata.segments.rules import RuleError, to_json
from relata.web.i18n import MESSAGES, Locale

router = APIRouter(include_in_schema=False)
MAX_RULE = 20_000
MAX_TEXT = 500


def mount(app: FastAPI) -> None:
    app.include_router(router)


def _views() -> Any:
    from relata.web import views

    return views


def _clean(raw: object, limit: int) -> str:
    return raw.replace("\x00", "")[:limit] if isinstance(raw, str) else ""


def builder_data(request: Request, session: Any, loc: Locale) -> dict[str, Any]:
    """What the builder needs: the registry with labels in the page's language."""
    purposes = tuple(request.app.state.settings.consent_purposes)
    described = catalogue.describe(purposes=purposes)
    for field in described["fields"]:
        field["label"] = _label(field["name"], loc)
    for collection in described["collections"]:
        collection["label"] = loc.t(f"rules.c.{collection['name']}")
        for field in collection["fields"]:
            field["label"] = _label(field["name"], loc)
    prefix = ("rules.", "segments.", "field.", "gender.", "status.", "consent.status.")
    described["labels"] = {
        k: loc.t(k) for k in MESSAGES[loc.lang] if k.startswith(prefix) and "{" not in loc.t(k)
    }
    described["templates"] = {
        k: MESSAGES[loc.lang][k]
        for k in (
            "rules.has",
            "rules.count",
            "rules.sum",
            "rules.min",
            "rules.max",
            "segments.count",
        )
    }
    described["segments"] = [s.name for s in service.list_segments(session)]
    described["check_url"] = _views()._path(request, "check_rule") + "?count=true"
    described["number_format"] = loc.lang
    return described


def _script_json(data: Any) -> str:
    """JSON to put inside <script type="application/json">: a rule's text may hold
    "</script>", so <, > and & are written as escapes, which JSON.parse reads back."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _label(name: str, loc: Locale) -> str:
    if name.startswith("consent."):
        _, purpose, channel = name.split(".")
        return loc.t("rules.f.consent", purpose=purpose, channel=loc.t(f"rules.channel.{channel}"))
    for key in (f"field.{name}", f"rules.f.{name}"):
        found = loc.t_or(key, "")
        if found:
            return found
    return name


def _editor(
    request: Request,
    session: Any,
    values: dict[str, Any],
    new: bool,
    error: RuleError | str | None = None,
    status_code: int = 200,
    notice: dict[str, int] | None = None,
) -> HTMLResponse:
    loc = _views().locale_of(request)
    versions = [] if new else service.versions(session, values["name"])
    context = {
        "new": new,
        "segment": values,
        "error": str(error) if error else None,
        "error_at": error.column if isinstance(error, RuleError) and error.position else None,
        "versions": versions,
        "builder": _script_json(builder_data(request, session, loc)),
        "initial": _script_json(values.get("rule_json")),
        "notice": notice,
    }
    return _views().render(request, "segment_edit.html", context, status_code)


@router.get("/segments", response_class=HTMLResponse, name="segments_page")
def segments_page(session: ReadSession, request: Request) -> Response:
    found = service.list_segments(session)
    deleted = _clean(request.query_params.get("deleted"), 64)
    return _views().render(request, "segments.html", {"segments": found, "deleted": deleted})


@router.get("/segments/new", response_class=HTMLResponse, name="segment_new")
def segment_new(session: ReadSession, request: Request) -> Response:
    blank = {"name": "", "description": "", "text": "", "rule_json": None, "version": 0}
    return _editor(request, session, blank, new=True)


@router.get("/segments/{name}", response_class=HTMLResponse, name="segment_edit")
def segment_edit(session: ReadSession, request: Request, name: str) -> Response:
    try:
        info = service.get(session, name[:64])
    except service.SegmentNotFound as exc:
        return _not_found(request, exc)
    return _editor(request, session, _values(info), new=False, notice=_notice(request))


def _notice(request: Request) -> dict[str, int] | None:
    """What the last POST did, from the redirect's query (saved=3, refreshed=10.2.1)."""
    params = request.query_params
    try:
        if "saved" in params:
            return {"saved": int(params["saved"])}
        if "refreshed" in params:
            members, entered, left = (int(p) for p in params["refreshed"].split("."))
            return {"members": members, "entered": entered, "left": left}
    except ValueError:
        pass
    return None


def _values(info: service.SegmentInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "description": info.description,
        "text": info.text,
        "rule_json": info.rule,
        "version": info.version,
        "members": info.members,
        "refreshed_at": info.refreshed_at,
    }


def _not_found(request: Request, exc: Exception) -> HTMLResponse:
    loc = _views().locale_of(request)
    return _views()._error(request, 404, loc.t("segments.not_found"), str(exc))


def _edit_path(request: Request, name: str) -> str:
    # Names may hold spaces and umlauts: the redirect's Location must be a valid URL.
    return _views()._path(request, "segments_page") + "/" + quote(name, safe="")


@router.post("/segments/new", name="segment_create")
async def segment_create(request: Request) -> Response:
    return await _save(request, None)


@router.post("/segments/{name}", name="segment_save")
async def segment_save(request: Request, name: str) -> Response:
    return await _save(request, name[:64])


async def _save(request: Request, name: str | None) -> Response:
    form = await request.form()
    text = _clean(form.get("rule"), MAX_RULE)
    description = _clean(form.get("description"), MAX_TEXT)
    target = name if name is not None else _clean(form.get("name"), 64).strip()
    values = {"name": target, "description": description, "text": text, "rule_json": None}
    db = request.app.state.db
    try:
        with db.session() as session:
            node = service.read_rule(session, text)
            values["rule_json"] = to_json(node)
            if name is None:
                info = service.create(session, target, node, description)
            else:
                info = service.update(session, name, node, description)
    except service.SegmentNotFound as exc:
        return _not_found(request, exc)
    except (RuleError, service.SegmentError) as exc:
        with db.session(write=False) as session:
            if name is not None:
                values.update(version=service.get(session, name).version)
            return _editor(request, session, values, name is None, exc, status_code=422)
    return RedirectResponse(f"{_edit_path(request, info.name)}?saved={info.version}", 303)


@router.post("/segments/{name}/refresh", name="segment_refresh")
def segment_refresh(request: Request, name: str) -> Response:
    try:
        with request.app.state.db.session() as session:
            (done,) = service.refresh(session, [name[:64]])
    except service.SegmentNotFound as exc:
        return _not_found(request, exc)
    query = f"refreshed={done.members}.{done.entered}.{done.left}"
    return RedirectResponse(f"{_edit_path(request, done.segment)}?{query}", 303)


@router.post("/segments/{name}/delete", name="segment_delete")
def segment_delete(request: Request, name: str) -> Response:
    try:
        with request.app.state.db.session() as session:
            service.delete_segment(session, name[:64])
    except service.SegmentNotFound as exc:
        return _not_found(request, exc)
    except service.SegmentInUse as exc:
        loc = _views().locale_of(request)
        return _views()._error(request, 409, loc.t("segments.refused"), str(exc))
    path = _views()._path(request, "segments_page")
    return RedirectResponse(f"{path}?deleted={quote(name[:64], safe='')}", 303)
