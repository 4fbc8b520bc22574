"""Engagement figures in by hand (a post's form) or by CSV (preview, then save), and out as CSV."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from campaign.models import Organisation, Role
from campaign.services import NotFound, ServiceError, engagement_csv, engagement_import
from campaign.services.engagement_export import export
from campaign.services.engagement_import import MANUAL_FIGURES
from campaign.services.local_time import format_local, parse_local
from campaign.services.metric_windows import Window, windows_from
from campaign.web import csv_upload
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now, state
from campaign.web.csv_upload import ConfirmForm, UploadForm, pack

bp = Blueprint("engagement", __name__)
# The preview hands the file back to the confirm form, compressed; nothing is kept server-side.
MAX_CARRIED = csv_upload.carried_limit(engagement_csv.MAX_BYTES)
SHOWN_REFUSALS = 10
FIGURE_LABELS = {
    "impressions": "Impressions",
    "link_clicks": "Link clicks (as the network counts them)",
    "likes": "Likes",
    "reposts": "Reposts",
    "replies": "Replies",
    "quotes": "Quotes",
    "bookmarks": "Bookmarks",
    "profile_clicks": "Profile clicks",
}
COLUMN_HELP = (
    ("post_id", "The post's number (from its page or the posts export). Enough when the post "
                "went out on one channel."),
    ("external_id", "The network's id of the post (from its address). Says which channel when "
                    "a post went out on several; give this, post_id, or both."),
    ("collected_at", "Required. When you read the figures: ISO 8601 with a UTC offset, like "
                     "2026-03-01T09:30:00+00:00."),
    ("impressions, likes, reposts, replies, quotes, bookmarks, profile_clicks",
     "Whole numbers as the network shows them. Leave a cell empty when the network does not "
     "report it (empty is “not reported”, never 0)."),
    ("clicks", "The network's own count of clicks on the post's link (its “link clicks”). "
               "Clicks on the app's tracked links are counted by the app itself."),
)  # fmt: skip


def unpack(carried: str) -> bytes | None:
    """The file back from the confirm form, or None if it is damaged or too large."""
    return csv_upload.unpack(carried, engagement_csv.MAX_BYTES)


def _organisation() -> Organisation:
    return member().membership.organisation


def _windows() -> tuple[Window, ...]:
    return windows_from(state().settings.metrics.ages)


@bp.app_template_global()
def engagement_as_of_default() -> str:
    """Now, in the member's organisation's time zone, as a datetime-local input's value."""
    return f"{now().astimezone(_organisation().zone):%Y-%m-%dT%H:%M}"


# --- manual entry ----------------------------------------------------------------------------


@bp.route("/posts/<int:post_id>/deliveries/<int:delivery_id>/metrics", methods=["POST"])
@role_required(Role.STAFF)
def enter_metrics(post_id: int, delivery_id: int) -> Response:
    organisation = _organisation()
    back = redirect(url_for("planning.post_detail", post_id=post_id))
    figures: dict[str, int | None] = {}
    problems = []
    for name in MANUAL_FIGURES:
        cell = request.form.get(name, "").strip().replace(",", "")
        if not cell:
            figures[name] = None
        elif not (cell.isascii() and cell.isdigit()):
            problems.append(f"{FIGURE_LABELS[name]}: “{cell[:40]}” is not a whole number.")
        elif len(cell) > 10 or int(cell) > engagement_csv.MAX_FIGURE:
            problems.append(f"{FIGURE_LABELS[name]}: {cell[:40]} is too large to be a figure.")
        else:
            figures[name] = int(cell)
    collected_at = None
    as_of = request.form.get("as_of", "").strip()
    if as_of:
        try:
            collected_at = parse_local(as_of, organisation.timezone).utc
        except (ValueError, OverflowError) as exc:
            problems.append(f"As of: {exc}.")
    db = get_session()
    try:
        if problems:
            # Still find the post first: another organisation's ids are 404 before any advice.
            engagement_import.check_delivery(db, organisation, post_id, delivery_id)
            raise ServiceError(" ".join(problems))
        reading = engagement_import.save_manual(
            db,
            member().actor(),
            organisation,
            post_id,
            delivery_id,
            figures,
            collected_at or now(),
            now(),
            _windows(),
        )
    except NotFound:
        db.rollback()
        abort(404)
    except ServiceError as exc:
        db.rollback()
        flash(f"The figures were not saved. {exc}", "error")
        return back
    db.commit()
    where = f"the {reading.window.label} age and as the latest" if reading.window else "the latest"
    flash(
        f"Saved the figures for {reading.channel} as of "
        f"{format_local(reading.collected_at, organisation.timezone)}, as {where} figures.",
        "success",
    )
    return back


# --- CSV import ------------------------------------------------------------------------------


@bp.route("/engagement/import", methods=["GET", "POST"])
@role_required(Role.STAFF)
def import_figures() -> str:
    form = UploadForm()
    if not form.validate_on_submit():
        return _upload_page(form)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _upload_page(form, ["Choose a CSV file to upload."])
    data = upload.read()
    organisation = _organisation()
    result = engagement_import.preview(get_session(), organisation, data, now(), _windows())
    if result.errors:
        return _upload_page(form, result.errors, upload.filename)
    return render_template(
        "engagement/preview.html",
        preview=result,
        filename=upload.filename,
        confirm=ConfirmForm(formdata=None, content=pack(data)),
        zone=organisation.timezone,
        format_local=format_local,
        figure_labels=FIGURE_LABELS,
    )


def _upload_page(form: UploadForm, errors: list[str] | None = None, filename: str = "") -> str:
    return render_template(
        "engagement/upload.html",
        form=form,
        errors=errors or [],
        filename=filename,
        columns=COLUMN_HELP,
        export_only=engagement_csv.EXPORT_ONLY,
        max_rows=engagement_csv.MAX_ROWS,
        ages=", ".join(w.label for w in _windows()),
    )


@bp.route("/engagement/import/confirm", methods=["POST"])
@role_required(Role.STAFF)
def confirm() -> Response:
    form = ConfirmForm()
    data = unpack(form.content.data or "") if form.validate_on_submit() else None
    if data is None:
        flash("The file did not come back from the preview intact; upload it again.", "error")
        return redirect(url_for("engagement.import_figures"))
    chosen = {int(v) for v in request.form.getlist("line") if v.isdigit() and len(v) <= 7}
    db = get_session()
    report = engagement_import.commit(
        db, member().actor(), _organisation(), data, now(), chosen, _windows()
    )
    db.commit()
    if report.errors:
        for message in report.errors:
            flash(message, "error")
        return redirect(url_for("engagement.import_figures"))
    saved = len(report.saved)
    refused_lines = sorted({p.line for p in report.refused})
    flash(
        f"Saved {saved} reading{'' if saved == 1 else 's'}; "
        f"{len(refused_lines) + len(report.not_chosen)} row"
        f"{'' if len(refused_lines) + len(report.not_chosen) == 1 else 's'} not saved.",
        "success" if saved else "error",
    )
    for line in refused_lines[:SHOWN_REFUSALS]:
        reasons = " ".join(str(p) for p in report.refused if p.line == line)
        flash(f"Not saved: {reasons}", "error")
    if len(refused_lines) > SHOWN_REFUSALS:
        flash(f"…and {len(refused_lines) - SHOWN_REFUSALS} more rows refused.", "error")
    return redirect(url_for("engagement.import_figures"))


# --- CSV downloads ---------------------------------------------------------------------------


@bp.route("/engagement/template.csv")
@role_required(Role.STAFF)
def template_csv() -> Response:
    example = (now() - dt.timedelta(days=1)).replace(microsecond=0, second=0)
    body = engagement_csv.write(
        [
            list(engagement_csv.COLUMNS),
            ["123", "", example.isoformat(), "1500", "37", "42", "5", "3", "", "", ""],
            ["", "110912345678901234", example.isoformat(), "", "", "18", "2", "1", "", "", ""],
        ]
    )
    return _csv_download(body, "engagement-template.csv")


@bp.route("/engagement/export.csv")
@role_required(Role.STAFF)
def export_csv() -> Response:
    organisation = _organisation()
    body = export(get_session(), organisation.id, now())
    stamp = f"{now().astimezone(organisation.zone):%Y-%m-%d}"
    return _csv_download(body, f"engagement-{organisation.slug}-{stamp}.csv")


def _csv_download(body: str, filename: str) -> Response:
    # The byte-order mark makes Excel read the file as UTF-8; import accepts it.
    response = Response("\ufeff" + body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
