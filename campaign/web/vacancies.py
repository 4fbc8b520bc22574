"""Vacancies as people see them: the list, one vacancy, and the sources they come from.

Staff read everything; managers and admins add, change, disable and poll sources and upload
CSV files. Another organisation's ids are 404 everywhere (the services raise NotFound).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from campaign.models import Role, VacancySource
from campaign.models.vacancy import VACANCY_STATUSES
from campaign.services import NotFound, ServiceError, vacancy_sources
from campaign.services import vacancies as records
from campaign.vacancies import records as flags
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now, state

bp = Blueprint("vacancies", __name__)

PAGE_SIZE = 50
STATUS_TABS = (
    ("open", "Open"),
    ("expired", "Expired"),
    ("withdrawn", "Withdrawn"),
    ("all", "All"),
)
FLAG_WORDS = {
    flags.FLAG_UNPAID: "Unpaid",
    flags.FLAG_COMMISSION: "Commission or OTE",
    flags.FLAG_SALARY_MISSING: "No salary given",
    flags.FLAG_SALARY_AMBIGUOUS: "Salary unclear",
    flags.FLAG_SALARY_PREDICTED: "Salary estimated by the site",
    flags.FLAG_INVALID_DATE: "A date could not be read",
    flags.FLAG_INVALID_URL: "No usable link",
}
STATUS_WORDS = {"open": "Open", "expired": "Expired", "withdrawn": "Withdrawn"}
KIND_WORDS = {"feed": "Feed (fetched)", "csv": "CSV upload", "push": "Push API"}
SOURCE_STATUS_WORDS = {
    "ok": "Working",
    "not_modified": "Working (unchanged since the last poll)",
    "error": "Failing",
    None: "Not read yet",
}


class ActionForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token, for buttons that change state."""


class SourceForm(FlaskForm):  # type: ignore[misc]
    # The service checks every value and names what is wrong; the form only carries them.
    name = StringField("Name")
    kind = SelectField(
        "Kind",
        choices=[
            SelectChoice("feed", "Feed: fetched from a URL (RSS, Atom, job XML, JSON-LD, CSV)"),
            SelectChoice("csv", "CSV upload: you upload a file"),
        ],
        default="feed",
    )
    url = StringField("Feed URL")
    poll_interval_minutes = IntegerField("Poll every (minutes)", default=60)
    withdraw_after_polls = IntegerField("Withdraw a vacancy after this many polls without it",
                                        default=3)  # fmt: skip
    enabled = BooleanField("Enabled", default=True)


class UploadForm(FlaskForm):  # type: ignore[misc]
    file = FileField("CSV file")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "flag_words": FLAG_WORDS,
        "status_words": STATUS_WORDS,
        "kind_words": KIND_WORDS,
        "source_status_words": SOURCE_STATUS_WORDS,
    }


def _org_id() -> int:
    return member().organisation_id


def _source_or_404(source_id: int) -> VacancySource:
    try:
        return vacancy_sources.get_source(get_session(), _org_id(), source_id)
    except NotFound:
        abort(404)


# --- vacancies ------------------------------------------------------------------------------


@bp.route("/vacancies")
@role_required(Role.STAFF)
def index() -> str:
    status = request.args.get("status", "open")
    if status != "all" and status not in VACANCY_STATUSES:
        status = "open"
    page = request.args.get("page", "1")
    number = int(page) if page.isdigit() and 0 < len(page) <= 6 else 1
    db = get_session()
    found, total = records.list_vacancies(
        db, _org_id(), status=status, limit=PAGE_SIZE, offset=(max(number, 1) - 1) * PAGE_SIZE
    )
    has_sources = bool(vacancy_sources.list_sources(db, _org_id()))
    return render_template(
        "vacancies/index.html",
        vacancies=found,
        total=total,
        status=status,
        tabs=STATUS_TABS,
        page=max(number, 1),
        pages=max(1, -(-total // PAGE_SIZE)),
        has_sources=has_sources,
    )


@bp.route("/vacancies/<int:vacancy_id>")
@role_required(Role.STAFF)
def detail(vacancy_id: int) -> str:
    try:
        vacancy = records.get_vacancy(get_session(), _org_id(), vacancy_id)
    except NotFound:
        abort(404)
    return render_template("vacancies/detail.html", vacancy=vacancy)


# --- sources --------------------------------------------------------------------------------


@bp.route("/vacancies/sources")
@role_required(Role.STAFF)
def sources() -> str:
    found = vacancy_sources.list_sources(get_session(), _org_id())
    can_manage = member().role.covers(Role.MANAGER)
    return render_template(
        "vacancies/sources.html", sources=found, can_manage=can_manage, button=ActionForm()
    )


def _input(form: SourceForm, kind: str) -> vacancy_sources.SourceInput:
    return vacancy_sources.SourceInput(
        name=form.name.data or "",
        kind=kind,
        url=form.url.data or "",
        poll_interval_minutes=form.poll_interval_minutes.data or 0,
        withdraw_after_polls=form.withdraw_after_polls.data or 0,
        enabled=bool(form.enabled.data),
    )


def _problems(form: SourceForm) -> list[str]:
    """Errors the form itself found in a POST (an expired form, numbers that are not)."""
    form.validate()
    if "csrf_token" in form.errors:
        return ["The form expired; send it again."]
    return [
        f"{field.label.text}: give a whole number."
        for field in (form.poll_interval_minutes, form.withdraw_after_polls)
        if field.errors
    ]


@bp.route("/vacancies/sources/new", methods=["GET", "POST"])
@role_required(Role.MANAGER)
def new_source() -> str | Response:
    form = SourceForm()
    errors: list[str] = []
    if request.method == "GET":
        form.poll_interval_minutes.data = state().settings.feeds.default_poll_minutes
        form.withdraw_after_polls.data = state().settings.feeds.withdraw_after_polls
    elif not (errors := _problems(form)):
        db = get_session()
        try:
            source = vacancy_sources.create_source(
                db, member().actor(), _input(form, form.kind.data or "feed"), now()
            )
        except ServiceError as exc:
            errors = [str(exc)]
        else:
            db.commit()
            flash(f"Added the source “{source.name}”.", "success")
            return redirect(url_for("vacancies.sources"))
    return render_template("vacancies/source_form.html", form=form, source=None, errors=errors)


@bp.route("/vacancies/sources/<int:source_id>/edit", methods=["GET", "POST"])
@role_required(Role.MANAGER)
def edit_source(source_id: int) -> str | Response:
    source = _source_or_404(source_id)
    errors: list[str] = []
    if request.method == "GET":
        form = SourceForm(obj=source)
        form.url.data = source.url or ""
    elif not (errors := _problems(form := SourceForm())):
        db = get_session()
        try:
            vacancy_sources.update_source(
                db, member().actor(), source.id, _input(form, source.kind), now()
            )
        except ServiceError as exc:
            errors = [str(exc)]
        else:
            db.commit()
            flash(f"Saved the source “{source.name}”.", "success")
            return redirect(url_for("vacancies.sources"))
    return render_template("vacancies/source_form.html", form=form, source=source, errors=errors)


def _action(source_id: int, act: Any, done: str) -> Response:
    source = _source_or_404(source_id)
    if ActionForm().validate_on_submit():
        db = get_session()
        try:
            act(db, source)
        except ServiceError as exc:
            flash(str(exc), "error")
        else:
            db.commit()
            flash(done.format(name=source.name), "success")
    else:
        flash("The form expired; try again.", "error")
    return redirect(url_for("vacancies.sources"))


@bp.route("/vacancies/sources/<int:source_id>/disable", methods=["POST"])
@role_required(Role.MANAGER)
def disable_source(source_id: int) -> Response:
    return _action(
        source_id,
        lambda db, s: vacancy_sources.set_enabled(db, member().actor(), s.id, False, now()),
        "Disabled “{name}”: it is not polled and its vacancies stay as they are.",
    )


@bp.route("/vacancies/sources/<int:source_id>/enable", methods=["POST"])
@role_required(Role.MANAGER)
def enable_source(source_id: int) -> Response:
    return _action(
        source_id,
        lambda db, s: vacancy_sources.set_enabled(db, member().actor(), s.id, True, now()),
        "Enabled “{name}”.",
    )


@bp.route("/vacancies/sources/<int:source_id>/poll", methods=["POST"])
@role_required(Role.MANAGER)
def poll_source(source_id: int) -> Response:
    return _action(
        source_id,
        lambda db, s: vacancy_sources.request_poll(db, member().actor(), s.id, now()),
        "“{name}” will be polled by the worker within a minute; reload this page to see it.",
    )


@bp.route("/vacancies/sources/<int:source_id>/upload", methods=["GET", "POST"])
@role_required(Role.MANAGER)
def upload(source_id: int) -> str | Response:
    source = _source_or_404(source_id)
    form = UploadForm()
    errors: list[str] = []
    outcome = None
    if source.kind != "csv":
        errors = ["Files can be uploaded only to a CSV source."]
    elif form.validate_on_submit():
        file = request.files.get("file")
        if file is None or not file.filename:
            errors = ["Choose a CSV file to upload."]
        else:
            limit = state().settings.feeds.max_body_bytes
            body = file.read(limit + 1)
            db = get_session()
            try:
                outcome = vacancy_sources.upload_csv(
                    db, member().actor(), source.id, body, now(), max_bytes=limit
                )
            except ServiceError as exc:
                errors = [str(exc)]
            else:
                db.commit()
    elif request.method == "POST":
        errors = ["The form expired; send it again."]
    return render_template(
        "vacancies/upload.html", source=source, form=form, errors=errors, outcome=outcome
    )
