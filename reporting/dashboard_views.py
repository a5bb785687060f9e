"""Report dashboards: one server (/servers/<id>/reports/…) or every server the user can see (/reports/…).

Each view reads the range and the servers, calls one selector in `reporting.dashboards` and renders.
Every figure links to the event list (the drill-down); every table has a CSV export of the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote_plus, urlencode

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from accounts import access, audit
from accounts.http import AuthedRequest
from accounts.models import Server
from common.csvio import stream_csv
from reporting import alerts, dashboards
from reporting.dashboard_forms import DayRange, EventFilterForm, RangeForm, ServerFilterForm, range_form
from reporting.models import Event, EventType

PAGE_TITLES = {
    "overview": "Reports",
    "delivered": "Delivered",
    "failed": "Failed",
    "complaints": "Complaints",
    "tracking": "Tracking",
    "streamscore": "StreamScore",
}
EVENTS_PER_PAGE = 50
EVENT_EXPORT_HEADER = [
    "Occurred (UTC)",
    "Server",
    "Type",
    "Address",
    "Message id",
    "Mailing id",
    "Failure type",
    "Failure code",
    "Reason",
    "URL",
]


@dataclass
class Scope:
    """Whose reports a page shows: one server, or the chosen servers among those the user can see."""

    server: Server | None
    servers: list[Server]
    server_form: ServerFilterForm | None
    chosen: list[int]  # the servers the user picked on a cross-server page (empty = all)

    @property
    def ns(self) -> str:
        return "reports" if self.server else "all_reports"

    @property
    def args(self) -> list[int]:
        return [self.server.pk] if self.server else []

    @property
    def ids(self) -> list[int]:
        return [s.pk for s in self.servers]

    @property
    def names(self) -> dict[int, str]:
        return {s.pk: s.name for s in self.servers}

    def url(self, name: str, *extra: Any) -> str:
        return reverse(f"{self.ns}:{name}", args=[*self.args, *extra])

    def query(self) -> dict[str, Any]:
        return {"server": self.chosen} if self.chosen else {}


def _scope(request: AuthedRequest, server_id: int | None) -> Scope:
    if server_id is not None:
        server = access.get_server_for_user(request.user, server_id)
        return Scope(server=server, servers=[server], server_form=None, chosen=[])
    visible = list(Server.objects.for_user(request.user).only("id", "name").order_by("name", "id"))
    bound = "server" in request.GET
    form = ServerFilterForm(request.GET if bound else None, servers=visible)
    chosen: list[int] = list(form.cleaned_data["server"]) if bound and form.is_valid() else []
    servers = [s for s in visible if s.pk in chosen] if chosen else visible
    return Scope(server=None, servers=servers, server_form=form, chosen=chosen)


def _linker(scope: Scope, day_range: DayRange) -> dashboards.Linker:
    """Drill-down URLs: the events page for a day range, the chosen servers and filters.

    Built by string joining, not urlencode per link: a 90-day page has over a thousand of them.
    """
    base = scope.url("events")
    kept = "".join(f"&server={pk}" for pk in scope.chosen)
    default_first, default_last = day_range.first.isoformat(), day_range.last.isoformat()

    def link(*, first: date | None = None, last: date | None = None, **filters: Any) -> str:
        url = (
            f"{base}?range=custom&from={first.isoformat() if first else default_first}"
            f"&to={last.isoformat() if last else default_last}{kept}"
        )
        for key, value in filters.items():
            if value not in ("", None):
                url += f"&{key}={quote_plus(str(value))}"
        return url

    return link


def table_body(table: dashboards.Table) -> SafeString:
    """The table's <tbody> rows as HTML, built here rather than in the template: a 90-day page has
    thousands of cells and the template loop would cost more than all the page's queries."""
    esc = conditional_escape
    parts: list[str] = []
    for row in table.rows:
        parts.append("<tr>")
        for index, cell in enumerate(row):
            text: str = esc(cell.text)
            if cell.href:
                text = f'<a href="{esc(cell.href)}">{text}</a>'
            if index == 0:
                parts.append(f'<th scope="row">{text}</th>')
                continue
            classes = ("num" if cell.numeric else "") + (f" flag-{cell.flag}" if cell.flag else "")
            parts.append(f'<td class="{classes.strip()}">{text}</td>' if classes else f"<td>{text}</td>")
        parts.append("</tr>")
    if not table.rows:
        parts.append(f'<tr><td colspan="{len(table.columns)}" class="muted">Nothing reported for this range.</td></tr>')
    return mark_safe("".join(parts))  # noqa: S308 - every piece of text above is escaped


def _base_context(request: AuthedRequest, scope: Scope, form: RangeForm, day_range: DayRange) -> dict[str, Any]:
    range_query = day_range.query()
    return {
        "server": scope.server,
        "scope": scope,
        "ns": scope.ns,
        "range_form": form,
        "day_range": day_range,
        "range_query": urlencode({**range_query, **scope.query()}, doseq=True),
        "jobs_url": scope.url("jobs"),
        "export_url": scope.url("export"),
        "events_url": scope.url("events"),
        "events_export_url": scope.url("events_export"),
        "kind_pages": dashboards.KIND_PAGES,
    }


def _dashboard(request: AuthedRequest, server_id: int | None, page: str) -> HttpResponse:
    scope = _scope(request, server_id)
    form = range_form(request.GET)
    day_range = form.day_range()
    board = dashboards.build(
        page=page,
        server_ids=scope.ids,
        server_names=scope.names,
        first=day_range.first,
        last=day_range.last,
        link=_linker(scope, day_range),
        cross_server=scope.server is None,
        cache_scope=f"{scope.ns}:{scope.args}:{scope.chosen}",
    )
    tables = board.shown()
    if page == "overview" and scope.server is None:
        tables.insert(0, board.tables["servers"])
    context = _base_context(request, scope, form, day_range)
    context.update(
        {
            "page": page,
            "title": PAGE_TITLES[page],
            "board": board,
            "tables": [(t, table_body(t)) for t in tables],
            "totals": board.totals,
            "tiles": _tiles(page, board, _totals_links(scope, day_range), cross_server=scope.server is None),
            "alerts": alerts.open_alerts(scope.servers) if page == "overview" else None,
        }
    )
    return render(request, "reporting/reports/dashboard.html", context)


def _totals_links(scope: Scope, day_range: DayRange) -> dict[str, str]:
    link = _linker(scope, day_range)
    return {kind: link(type=event_type) for kind, event_type in dashboards.EVENT_TYPE.items()}


def _tiles(
    page: str, board: dashboards.Dashboard, drill: dict[str, str], *, cross_server: bool
) -> list[dict[str, str]]:
    """The headline figures of a page, formatted, each count linking to its events."""
    f = board.totals
    fmt, pct = dashboards.fmt_int, dashboards.fmt_pct
    counts = {
        "delivered": [("Delivered", fmt(f.delivered), drill["delivered"])],
        "failed": [("Failed", fmt(f.failed), drill["failed"])],
        "complaints": [("Complaints", fmt(f.complaints), drill["complaints"])],
        "tracking": [
            ("Opens", fmt(f.opens), drill["opens"]),
            ("Unique opens", fmt(f.unique_opens), ""),
            ("Clicks", fmt(f.clicks), drill["clicks"]),
            ("Unique clicks", fmt(f.unique_clicks), ""),
            ("Unsubscribes", fmt(f.unsubscribes), drill["unsubscribes"]),
        ],
    }
    rates = {
        "delivered": [("Delivery rate", pct(f.delivery_rate))],
        "failed": [("Failure rate", pct(f.failure_rate))],
        "complaints": [("Complaint rate", pct(f.complaint_rate))],
        "tracking": [("Open rate", pct(f.open_rate)), ("Click rate", pct(f.click_rate))],
    }
    if page == "overview":
        rows = [
            *counts["delivered"],
            *counts["failed"],
            *counts["complaints"],
            ("Unique opens", fmt(f.unique_opens), drill["opens"]),
            ("Unique clicks", fmt(f.unique_clicks), drill["clicks"]),
            ("Unsubscribes", fmt(f.unsubscribes), drill["unsubscribes"]),
        ]
        rate_rows = [
            *rates["delivered"],
            *rates["failed"],
            *rates["complaints"],
            *rates["tracking"],
        ]
    else:
        rows, rate_rows = counts.get(page, []), rates.get(page, [])
    tiles = [{"label": label, "text": text, "href": href, "flag": ""} for label, text, href in rows]
    tiles += [{"label": label, "text": text, "href": "", "flag": ""} for label, text in rate_rows]
    if page == "overview":
        score = board.score
        tiles.append(
            {
                "label": "StreamScore" + (" (weighted)" if cross_server else ""),
                "text": "–" if score is None else f"{score:.0f} {board.score_rating}",
                "href": "",
                "flag": board.score_rating.lower(),
            }
        )
    return tiles


@require_GET
def overview(request: AuthedRequest, server_id: int | None = None) -> HttpResponse:
    return _dashboard(request, server_id, "overview")


@require_GET
def kind(request: AuthedRequest, kind: str, server_id: int | None = None) -> HttpResponse:
    if kind not in dashboards.KIND_PAGES:
        raise Http404("No such report.")
    return _dashboard(request, server_id, kind)


@require_GET
def streamscore(request: AuthedRequest, server_id: int | None = None) -> HttpResponse:
    return _dashboard(request, server_id, "streamscore")


def _csv_response(name: str, header: list[str], rows: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream_csv(header, rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def _bad_range(form: RangeForm) -> HttpResponse:
    problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
    return HttpResponse(f"Cannot export: {problems}", status=400, content_type="text/plain; charset=utf-8")


@require_GET
def export(request: AuthedRequest, server_id: int | None = None) -> HttpResponse | StreamingHttpResponse:
    """One dashboard table as CSV: ?table=<name> plus the page's range (and servers)."""
    scope = _scope(request, server_id)
    form = range_form(request.GET)
    if form.is_bound and not form.is_valid():
        return _bad_range(form)
    day_range = form.day_range()
    name = request.GET.get("table", "")
    link = _linker(scope, day_range)
    if name == "reconciliation":
        rows, _pulled, _webhook = dashboards.reconciliation(scope.ids, day_range.first, day_range.last)
        table = dashboards.reconciliation_table(rows, link)
    else:
        page = _page_of(name, cross_server=scope.server is None)
        if page is None:
            return HttpResponse(
                f"There is no table called {name!r} to export.", status=400, content_type="text/plain; charset=utf-8"
            )
        board = dashboards.build(
            page=page,
            server_ids=scope.ids,
            server_names=scope.names,
            first=day_range.first,
            last=day_range.last,
            link=link,
            cross_server=scope.server is None,
        )
        table = board.tables[name]
    who = scope.server.socketlabs_id if scope.server else "all-servers"
    filename = f"report-{table.name.replace('_', '-')}-{who}-{day_range.first:%Y%m%d}-{day_range.last:%Y%m%d}"
    return _csv_response(filename, table.columns, table.csv_rows)


def _page_of(table: str, *, cross_server: bool) -> str | None:
    if table == "servers":
        return "overview" if cross_server else None
    for page, names in dashboards.PAGE_TABLES.items():
        if table in names:
            return page
    return None


@require_GET
def reconciliation(request: AuthedRequest, server_id: int | None = None) -> HttpResponse:
    scope = _scope(request, server_id)
    form = range_form(request.GET)
    day_range = form.day_range()
    rows, any_pulled, any_webhook = dashboards.reconciliation(scope.ids, day_range.first, day_range.last)
    only_differences = request.GET.get("only") == "diff"
    shown = [r for r in rows if r.differs] if only_differences else rows
    context = _base_context(request, scope, form, day_range)
    context.update(
        {
            "page": "reconciliation",
            "title": "Reconciliation",
            "table": (table := dashboards.reconciliation_table(shown, _linker(scope, day_range))),
            "table_html": table_body(table),
            "differing": sum(1 for r in rows if r.differs),
            "compared": sum(1 for r in rows if r.difference is not None),
            "any_pulled": any_pulled,
            "any_webhook": any_webhook,
            "only_differences": only_differences,
            "extra_fields": [("only", "diff")] if only_differences else [],
        }
    )
    return render(request, "reporting/reports/reconciliation.html", context)


def _events(scope: Scope, day_range: DayRange, filters: dict[str, Any]) -> Any:
    start, end = dashboards.day_bounds(day_range.first, day_range.last)
    events = Event.objects.filter(server_id__in=scope.ids, occurred_at__gte=start, occurred_at__lt=end)
    if filters.get("type"):
        events = events.filter(type=filters["type"])
    if filters.get("domain"):
        events = events.filter(address__endswith="@" + filters["domain"])
    if filters.get("mailing"):
        events = events.filter(mailing_id=filters["mailing"])
    if filters.get("code") is not None:
        events = events.filter(failure_code=filters["code"])
    if filters.get("reason"):
        events = events.filter(reason=filters["reason"])
    if filters.get("url"):
        events = events.filter(url=filters["url"])
    return events


@require_GET
def events(request: AuthedRequest, server_id: int | None = None) -> HttpResponse:
    """The drill-down: events behind a figure, newest first, in keyset pages of 50."""
    scope = _scope(request, server_id)
    form = range_form(request.GET)
    day_range = form.day_range()
    filter_form = EventFilterForm(request.GET)
    filters = filter_form.filters()
    page: list[Event] = []
    next_after = None
    if filter_form.is_valid():
        qs = _events(scope, day_range, filters).select_related("server").order_by("-id")
        after = filter_form.cleaned_data.get("after")
        if after:
            qs = qs.filter(id__lt=after)
        page = list(qs[: EVENTS_PER_PAGE + 1])
        if len(page) > EVENTS_PER_PAGE:
            page = page[:EVENTS_PER_PAGE]
            next_after = page[-1].pk
    query = {**day_range.query(), **scope.query(), **filters}
    context = _base_context(request, scope, form, day_range)
    context.update(
        {
            "page": "events",
            "title": "Events",
            "filter_form": filter_form,
            "events": page,
            "filters": filters,
            "type_label": EventType(filters["type"]).label if filters.get("type") else "",
            "next_query": urlencode({**query, "after": next_after}, doseq=True) if next_after else "",
            "first_query": urlencode(query, doseq=True),
            "is_later_page": bool(filter_form.is_valid() and filter_form.cleaned_data.get("after")),
            "coverage": dashboards.coverage(scope.ids, day_range.first, day_range.last),
        }
    )
    return render(request, "reporting/reports/events.html", context)


@require_GET
def events_export(request: AuthedRequest, server_id: int | None = None) -> HttpResponse | StreamingHttpResponse:
    """The drill-down's events as CSV, streamed (addresses are personal data: the export is audited)."""
    scope = _scope(request, server_id)
    form = range_form(request.GET)
    if form.is_bound and not form.is_valid():
        return _bad_range(form)
    day_range = form.day_range()
    filter_form = EventFilterForm(request.GET)
    if not filter_form.is_valid():
        problems = " ".join(str(e) for errors in filter_form.errors.values() for e in errors)
        return HttpResponse(f"Cannot export: {problems}", status=400, content_type="text/plain; charset=utf-8")
    filters = filter_form.filters()
    audit.record(
        action="reports.events_export",
        request=request,
        server=scope.server,
        target=f"events {day_range.first}…{day_range.last}",
        after={"filters": {k: str(v) for k, v in filters.items()}, "servers": scope.ids},
    )
    names = scope.names
    rows = (
        (
            occurred.astimezone(dashboards.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            names.get(server_pk, server_pk),
            type_,
            address,
            message_id,
            mailing_id,
            failure_type,
            "" if code is None else code,
            reason,
            url,
        )
        for occurred, server_pk, type_, address, message_id, mailing_id, failure_type, code, reason, url in (
            _events(scope, day_range, filters)
            .order_by("-id")
            .values_list(
                "occurred_at",
                "server_id",
                "type",
                "address",
                "message_id",
                "mailing_id",
                "failure_type",
                "failure_code",
                "reason",
                "url",
            )
            .iterator(chunk_size=2000)
        )
    )
    who = scope.server.socketlabs_id if scope.server else "all-servers"
    return _csv_response(f"events-{who}-{day_range.first:%Y%m%d}-{day_range.last:%Y%m%d}", EVENT_EXPORT_HEADER, rows)
