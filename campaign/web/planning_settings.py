"""Settings for planning: each channel's queue slots and the academic year's key dates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from campaign.models import KEY_DATE_KINDS, Organisation, Role
from campaign.services import NotFound, PermissionDenied, ServiceError, key_dates, queue_slots
from campaign.services.ical_events import MAX_BYTES
from campaign.services.key_dates import EFFECT_LABELS, KIND_LABELS, ImportReport, KeyDateInput
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now

bp = Blueprint("planning_settings", __name__)
PAST_PAGE = 20
MAX_PAST_PAGE = 10_000  # past=10**30 would overflow the database's OFFSET
EFFECT_CHOICES = [
    SelectChoice("none", "Shown only: on the calendar, no effect on scheduling"),
    SelectChoice("boost", "Boost: a good time to post"),
    SelectChoice("blackout", "Blackout: scheduling inside needs a reason"),
]


class KeyDateForm(FlaskForm):  # type: ignore[misc]
    # The service checks every value and names what is wrong; the form only carries them.
    title = StringField("Title")
    kind = SelectField(
        "Kind", choices=[SelectChoice(k, KIND_LABELS[k]) for k in KEY_DATE_KINDS], default="other"
    )
    effect = SelectField("Effect", choices=EFFECT_CHOICES, default="none")
    starts_on = StringField("First day")
    ends_on = StringField("Last day")
    notes = TextAreaField("Notes")


class ImportForm(FlaskForm):  # type: ignore[misc]
    file = FileField("iCal file (.ics)")
    effect = SelectField("Effect of new dates", choices=EFFECT_CHOICES, default="none")


class SlotForm(FlaskForm):  # type: ignore[misc]
    weekday = SelectField(
        "Day", choices=[SelectChoice(str(n), d) for n, d in enumerate(queue_slots.DAY_NAMES)]
    )
    at = StringField("Time")


class RemoveSlotForm(FlaskForm):  # type: ignore[misc]
    slot_id = HiddenField()


class ActionForm(FlaskForm):  # type: ignore[misc]
    """Only the CSRF token, for buttons that change state."""


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "kind_labels": KIND_LABELS,
        "effect_labels": EFFECT_LABELS,
        "describe_span": key_dates.describe_span,
        "day_names": queue_slots.DAY_NAMES,
    }


# --- key dates ------------------------------------------------------------------------------


@bp.route("/settings/key-dates")
@role_required(Role.STAFF)
def key_date_list() -> str:
    return _key_dates_page(KeyDateForm(formdata=None))


@bp.route("/settings/key-dates/add", methods=["POST"])
@role_required(Role.ADMIN)
def add_key_date() -> Any:
    form = KeyDateForm()
    org_id, actor = member().organisation_id, member().actor()
    try:
        found = key_dates.create_key_date(get_session(), org_id, _input(form), actor, now())
    except ServiceError as exc:
        flash(str(exc), "error")
        return _key_dates_page(form)
    get_session().commit()
    flash(f"Added “{found.title}” ({key_dates.describe_span(found)}).", "success")
    return redirect(url_for("planning_settings.key_date_list"))


@bp.route("/settings/key-dates/import", methods=["POST"])
@role_required(Role.ADMIN)
def import_key_dates() -> Any:
    form, db = ImportForm(), get_session()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose an iCal (.ics) file to import.", "error")
        return _key_dates_page(KeyDateForm(formdata=None), import_form=form)
    data = upload.stream.read(MAX_BYTES + 1)  # the service refuses anything longer, by name
    try:
        report = key_dates.import_ical(
            db, _organisation(), data, member().actor(), now(), form.effect.data or "none"
        )
        db.commit()
    except ServiceError as exc:
        flash(str(exc), "error")
        return _key_dates_page(KeyDateForm(formdata=None), import_form=form)
    except IntegrityError:  # another import of the same events committed first
        db.rollback()
        flash("Another import changed these key dates at the same time; try again.", "error")
        return redirect(url_for("planning_settings.key_date_list"))
    return _key_dates_page(KeyDateForm(formdata=None), report=report)


@bp.route("/settings/key-dates/<int:key_date_id>/edit", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_key_date(key_date_id: int) -> Any:
    db, org_id = get_session(), member().organisation_id
    try:
        found = key_dates.get_key_date(db, org_id, key_date_id)
    except NotFound:
        abort(404)
    form = KeyDateForm(obj=found)
    if request.method == "POST":
        try:
            key_dates.update_key_date(
                db, org_id, key_date_id, _input(form), member().actor(), now()
            )
        except ServiceError as exc:
            flash(str(exc), "error")  # nothing was changed: the service checks before it sets
        else:
            db.commit()
            flash(f"Saved “{found.title}”.", "success")
            return redirect(url_for("planning_settings.key_date_list"))
    return render_template(
        "planning_settings/key_date_edit.html", form=form, key_date=found, button=ActionForm()
    )


# Declared after the routes that show a key date: the access tests walk the routes in order,
# and this one removes the key date they use.
@bp.route("/settings/key-dates/<int:key_date_id>/delete", methods=["POST"])
@role_required(Role.ADMIN)
def delete_key_date(key_date_id: int) -> Response:
    db, org_id = get_session(), member().organisation_id
    try:
        found = key_dates.get_key_date(db, org_id, key_date_id)
        title = found.title
        key_dates.delete_key_date(db, org_id, key_date_id, member().actor(), now())
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    db.commit()
    flash(f"Deleted “{title}”.", "success")
    return redirect(url_for("planning_settings.key_date_list"))


def _key_dates_page(
    form: FlaskForm, import_form: FlaskForm | None = None, report: ImportReport | None = None
) -> str:
    db, organisation = get_session(), _organisation()
    today = now().astimezone(organisation.zone).date()
    past_page = min(max(request.args.get("past", 1, type=int) or 1, 1), MAX_PAST_PAGE)
    past = key_dates.list_past(
        db, organisation.id, today, PAST_PAGE + 1, (past_page - 1) * PAST_PAGE
    )
    return render_template(
        "planning_settings/key_dates.html",
        upcoming=key_dates.list_key_dates(db, organisation.id, first=today),
        past=past[:PAST_PAGE],
        past_page=past_page,
        more_past=len(past) > PAST_PAGE,
        today=today,
        form=form,
        import_form=import_form or ImportForm(formdata=None),
        report=report,
        button=ActionForm(),
        can_edit=member().role.covers(Role.ADMIN),
    )


def _input(form: KeyDateForm) -> KeyDateInput:
    return KeyDateInput(
        title=form.title.data or "",
        starts_on=form.starts_on.data or "",
        ends_on=form.ends_on.data or "",
        kind=form.kind.data or "",
        effect=form.effect.data or "",
        notes=form.notes.data or "",
    )


# --- queue slots ----------------------------------------------------------------------------


@bp.route("/settings/queue")
@role_required(Role.MANAGER)
def queue() -> str:
    db, organisation = get_session(), _organisation()
    change = queue_slots.next_clock_change(organisation.timezone, now())
    channels = [
        {
            "channel": channel,
            "slots": slots,
            "upcoming": queue_slots.upcoming(db, channel.id, organisation.timezone, now())[:5],
            "on_change_day": [
                (queue_slots.describe(s), note)
                for s in slots
                if change and (note := queue_slots.on_change_day(s, change, organisation.timezone))
            ],
        }
        for channel, slots in queue_slots.list_by_channel(db, organisation.id)
    ]
    return render_template(
        "planning_settings/queue.html",
        channels=channels,
        zone=organisation.timezone,
        change=change,
        slot_form=SlotForm(formdata=None),
    )


@bp.route("/settings/queue/<int:channel_id>/add", methods=["POST"])
@role_required(Role.MANAGER)
def add_slot(channel_id: int) -> Response:
    form = SlotForm()
    actor = member().actor()

    def add() -> str:
        slot = queue_slots.add_slot(
            get_session(), actor, channel_id, form.weekday.data or "", form.at.data or "", now()
        )
        return f"Added a slot on {queue_slots.describe(slot)}."

    return _slot_change(add)


@bp.route("/settings/queue/<int:channel_id>/remove", methods=["POST"])
@role_required(Role.MANAGER)
def remove_slot(channel_id: int) -> Response:
    form, db = RemoveSlotForm(), get_session()
    actor = member().actor()
    raw = (form.slot_id.data or "").strip()

    def remove() -> str:
        slots = queue_slots.list_slots(db, actor.organisation_id, channel_id)  # 404 first
        if not raw.isdigit() or len(raw) > 10:
            raise ServiceError("Choose the slot to remove.")
        slot_id = int(raw)
        gone = next((queue_slots.describe(s) for s in slots if s.id == slot_id), "")
        queue_slots.remove_slot(db, actor, channel_id, slot_id, now())
        return f"Removed the slot on {gone}; posts already given that time keep it."

    return _slot_change(remove)


def _slot_change(action: Callable[[], str]) -> Response:
    """Run one slot change and commit it; foreign ids are 404, refusals are flashed."""
    try:
        done = action()
        get_session().commit()
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        flash(str(exc), "error")
    except IntegrityError:  # the same slot added by someone else at the same moment
        get_session().rollback()
        flash("Someone changed these slots at the same time; check them and try again.", "error")
    else:
        flash(done, "success")
    return redirect(url_for("planning_settings.queue"))


def _organisation() -> Organisation:
    found: Organisation = member().membership.organisation
    return found
