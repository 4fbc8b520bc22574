"""Bulk import of posts from CSV (preview, then save all or chosen rows) and CSV export."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from campaign.models import Organisation, Role
from campaign.services import ServiceError, post_csv
from campaign.services.local_time import format_local
from campaign.web import csv_upload
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now
from campaign.web.csv_upload import ConfirmForm, UploadForm, pack

bp = Blueprint("post_csv", __name__)
# The preview hands the file back to the confirm form, compressed; nothing is kept server-side.
MAX_CARRIED = csv_upload.carried_limit(post_csv.MAX_BYTES)
SHOWN_REFUSALS = 10


def unpack(carried: str) -> bytes | None:
    """The file back from the confirm form, or None if it is damaged or too large."""
    return csv_upload.unpack(carried, post_csv.MAX_BYTES)


def _organisation() -> Organisation:
    return member().membership.organisation


@bp.route("/posts/import", methods=["GET", "POST"])
@role_required(Role.STAFF)
def import_posts() -> str:
    form = UploadForm()
    if not form.validate_on_submit():
        return _upload_page(form)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _upload_page(form, ["Choose a CSV file to upload."])
    data = upload.read()
    result = post_csv.preview(get_session(), _organisation(), data, now())
    if result.errors:
        return _upload_page(form, result.errors, upload.filename)
    return render_template(
        "post_csv/preview.html",
        preview=result,
        filename=upload.filename,
        confirm=ConfirmForm(formdata=None, content=pack(data)),
        zone=_organisation().timezone,
        format_local=format_local,
    )


def _upload_page(form: UploadForm, errors: list[str] | None = None, filename: str = "") -> str:
    return render_template(
        "post_csv/upload.html",
        form=form,
        errors=errors or [],
        filename=filename,
        columns=post_csv.COLUMN_HELP,
        export_only=post_csv.EXPORT_ONLY,
        max_rows=post_csv.MAX_ROWS,
    )


@bp.route("/posts/import/confirm", methods=["POST"])
@role_required(Role.STAFF)
def confirm() -> Response:
    form = ConfirmForm()
    data = unpack(form.content.data or "") if form.validate_on_submit() else None
    if data is None:
        flash("The file did not come back from the preview intact; upload it again.", "error")
        return redirect(url_for("post_csv.import_posts"))
    chosen = {int(v) for v in request.form.getlist("line") if v.isdigit() and len(v) <= 7}
    db = get_session()
    report = post_csv.commit(db, _organisation(), data, chosen, member().actor(), now())
    db.commit()
    if report.errors:
        for message in report.errors:
            flash(message, "error")
        return redirect(url_for("post_csv.import_posts"))
    saved, missed = len(report.saved), len(report.not_saved)
    flash(
        f"Saved {saved} post{'' if saved == 1 else 's'}; "
        f"{missed} row{'' if missed == 1 else 's'} not saved.",
        "success" if saved else "error",
    )
    refused = [o for o in report.not_saved if o.outcome == "refused"]
    for outcome in refused[:SHOWN_REFUSALS]:
        flash(f"Line {outcome.line} not saved: {' '.join(outcome.messages)}", "error")
    if len(refused) > SHOWN_REFUSALS:
        flash(f"…and {len(refused) - SHOWN_REFUSALS} more rows refused.", "error")
    return redirect(url_for("publishing.posts"))


@bp.route("/posts/import/template.csv")
@role_required(Role.STAFF)
def template_csv() -> Response:
    body = post_csv.template(get_session(), _organisation(), now())
    return _csv_download(body, "posts-template.csv")


@bp.route("/posts/export.csv")
@role_required(Role.STAFF)
def export_csv() -> Response:
    organisation = _organisation()
    first, last = request.args.get("from"), request.args.get("to")
    try:
        start, end = post_csv.export_range(first, last, organisation.timezone)
    except ServiceError as exc:
        flash(str(exc), "error")
        return redirect(url_for("post_csv.import_posts"))
    body = post_csv.export(get_session(), organisation.id, start, end)
    span = "-".join(d.strip() for d in (first, last) if d and d.strip())
    stamp = span or f"{now().astimezone(organisation.zone):%Y-%m-%d}"
    return _csv_download(body, f"posts-{organisation.slug}-{stamp}.csv")


def _csv_download(body: str, filename: str) -> Response:
    # The byte-order mark makes Excel read the file as UTF-8; import accepts it.
    response = Response("\ufeff" + body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
