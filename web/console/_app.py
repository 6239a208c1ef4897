"""The DPO console as one Starlette application, mounted at ``/console`` on the portal.

Routes (under ``/console``): ``/`` (the agency's agreements and drafts), ``/sign-in``,
``/callback``, ``/sign-out`` (POST), ``/agreements/{id}``, ``/purposes``, ``/drafts`` (POST:
a new draft), ``/drafts/{id}`` (diff in words, review), ``/drafts/{id}/agreements/{aid}``
(GET and POST: the edit form), ``/drafts/{id}/new-purpose`` and
``/drafts/{id}/purposes/{pid}`` (GET and POST: the purpose form),
``/drafts/{id}/purposes/{pid}/remove`` (POST), ``/drafts/{id}/dry-run``, ``/drafts/{id}/submit``,
``/drafts/{id}/review`` and ``/drafts/{id}/publish`` (POST), ``/history``,
``/history/rollback`` (POST), ``/audit`` and ``/audit.csv``.

Every step is a ``datatrust.policies.lifecycle`` call, as ``datatrust policy`` makes it, by
the DPO the session's access token names (checked on every request, role ``dpo``); the
agency is the token's, never the URL's. Every POST goes through ``read_form`` (CSRF).
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from datatrust.errors import AccessDenied, AuthenticationFailed
from datatrust.policies import Requester
from datatrust.settings import PortalSettings
from datatrust.web._csrf import BadForm, CsrfRefused, read_form
from datatrust.web._redirects import safe_next
from datatrust.web._session import Session
from datatrust.web._signin import (
    STALE,
    begin_sign_in,
    finish_sign_in,
    returning_sign_in,
    sign_out_of,
)
from datatrust.web.console import _agreement_form as forms
from datatrust.web.console import _documents as docs
from datatrust.web.console import _purpose_form as purpose_forms
from datatrust.web.console._actor import NotADpo
from datatrust.web.console._audit_routes import audit_routes
from datatrust.web.console._context import CONSOLE_COOKIE, Console
from datatrust.web.console._pages import PREFIX, error_summary

__all__ = ["CONSOLE_COOKIE", "create_console_app"]

logger = logging.getLogger("datatrust.web.console")

MAX_COMMENT = 1000
DRY_RUN_DAYS = 7
MAX_DRY_RUN_DAYS = 90


def _lc():
    from datatrust.policies import lifecycle

    return lifecycle


def _problem_target(problem: str) -> str:
    """The form input a whole-document problem is best linked to."""
    for words, target in (("end", "end"), ("start", "start"), ("purpose", "purposes")):
        if words in problem:
            return target
    return "title"


def create_console_app(settings: PortalSettings) -> Starlette:
    """The DPO console for ``settings`` (the portal's), to mount at ``/console``."""
    console = Console(settings)
    lc = _lc()

    signed_in = console.signed_in

    # -- signing in --------------------------------------------------------------------

    async def sign_in(request: Request) -> Response:
        session = console.sessions.load(request)
        next_path = safe_next(request.query_params.get("next"))
        if not next_path.startswith(PREFIX + "/"):
            next_path = PREFIX + "/"
        if await console.dpo(session) is not None:
            return console.redirect(session, next_path)
        return console.redirect(session, begin_sign_in(session, console.signin, next_path))

    async def callback(request: Request) -> Response:
        session = console.sessions.load(request)
        params = request.query_params
        pending, problem = returning_sign_in(session, params)
        if problem == STALE:
            return console.error(
                session,
                400,
                signed_in=False,
                heading="Sign in again",
                paragraphs=["Your sign-in did not start here, or it took too long."],
            )
        if pending is None:  # REFUSED
            return console.error(
                session,
                400,
                signed_in=False,
                heading="You are not signed in",
                paragraphs=["The sign-in was cancelled or refused. Start again to try again."],
            )
        try:
            tokens = await console.signin.exchange(params["code"], pending)
            await run_in_threadpool(console.auth.dpo, tokens.access_token)
        except AuthenticationFailed as error:
            logger.info("console sign-in refused: %s", error.message)
            detail = (
                "Your account is not a data protection officer's."
                if isinstance(error, NotADpo)
                else "The trust could not confirm who you are."
            )
            return console.error(
                session,
                403,
                signed_in=False,
                heading="This service is for data protection officers",
                paragraphs=[detail, "Sign in with a data protection officer's account."],
            )
        finish_sign_in(session, tokens)
        return console.redirect(session, pending.next)

    async def sign_out(request: Request) -> Response:
        session = console.sessions.load(request)
        await read_form(request, session)
        await sign_out_of(session, console.signin)
        return console.redirect(session, PREFIX + "/signed-out")

    async def signed_out(request: Request) -> Response:
        session = console.sessions.load(request)
        response = console.pages.render(
            "console/signed_out.html", csrf_token=session.csrf_token, signed_in=False
        )
        console.sessions.save(response, session)
        return response

    # -- documents ---------------------------------------------------------------------

    @signed_in
    async def overview(request: Request, session: Session, actor: Requester) -> Response:
        published = await run_in_threadpool(lc.read_published, console.data_dir)
        agreements = docs.agency_agreements(published.agreements, actor.agency) if published else []
        drafts = await run_in_threadpool(docs.agency_drafts, console.data_dir, actor.agency)
        return console.page(
            session,
            "console/overview.html",
            current="overview",
            actor=actor,
            name=request.state.tokens.name,
            published=published,
            agreements=agreements,
            drafts=drafts,
            done=session.pop("done"),
        )

    @signed_in
    async def agreement(request: Request, session: Session, actor: Requester) -> Response:
        published = await run_in_threadpool(lc.read_published, console.data_dir)
        if published is None:
            raise docs.NotFound("nothing is published")
        found = docs.own_agreement(published.agreements, actor.agency, request.path_params["ident"])
        return console.page(
            session,
            "console/agreement.html",
            current="overview",
            agreement=found,
            published=published,
        )

    @signed_in
    async def purposes(request: Request, session: Session, actor: Requester) -> Response:
        published = await run_in_threadpool(lc.read_published, console.data_dir)
        return console.page(
            session,
            "console/purposes.html",
            current="purposes",
            register=published.register if published else {"purposes": []},
            published=published,
        )

    @signed_in
    async def new_draft(request: Request, session: Session, actor: Requester) -> Response:
        published = await run_in_threadpool(lc.read_published, console.data_dir)
        if published is None:
            raise docs.NotFound("nothing is published to draft from")
        draft = await run_in_threadpool(
            lc.create_draft,
            console.data_dir,
            actor,
            console.authorize,
            published.register,
            published.agreements,
        )
        session.set("done", f"Draft {draft.id} created from {published.label}")
        return console.redirect(session, f"{PREFIX}/drafts/{draft.id}")

    async def draft_page(
        session: Session, actor: Requester, draft, *, errors=None, status=200, done=None
    ) -> Response:
        errors = errors or {}
        published = await run_in_threadpool(lc.read_published, console.data_dir)
        register, agreements = (
            (published.register, published.agreements)
            if published
            else docs.base_documents(console.data_dir, draft)
        )
        changes = lc.diff_documents(register, agreements, draft.register, draft.agreements)
        return console.page(
            session,
            "console/draft.html",
            status=status,
            current="overview",
            actor=actor,
            draft=draft,
            published=published,
            changes=changes,
            agreements=docs.agency_agreements(draft.agreements, actor.agency),
            is_author=draft.author == actor.subject,
            errors=errors,
            error_summary=error_summary(errors),
            done=done,
        )

    @signed_in
    async def draft(request: Request, session: Session, actor: Requester) -> Response:
        found = docs.draft_for(console.data_dir, actor, request.path_params["ident"])
        return await draft_page(session, actor, found, done=session.pop("done"))

    @signed_in
    async def edit_agreement(request: Request, session: Session, actor: Requester) -> Response:
        found = docs.draft_for(console.data_dir, actor, request.path_params["ident"])
        original = docs.own_agreement(
            found.agreements, actor.agency, request.path_params["agreement"]
        )
        # The draft's own register: a purpose added in this draft can be used at once.
        titles = {p["id"]: p.get("title", p["id"]) for p in found.register.get("purposes", [])}
        errors: dict[str, str] = {}
        status = 200
        form = forms.agreement_form(original)
        if request.method == "POST":
            try:
                changed, form, errors = forms.apply_agreement_form(
                    original, request.state.form, titles
                )
            except ValueError as error:
                raise BadForm(str(error)) from error
            if changed is not None:
                document = {
                    **found.agreements,
                    "agreements": [
                        changed if a.get("id") == changed["id"] else a
                        for a in found.agreements.get("agreements", [])
                    ],
                }
                try:
                    await run_in_threadpool(_update, found, document, actor)
                except lc.PolicyInvalid as invalid:
                    errors = {}
                    for problem in invalid.problems:
                        message = getattr(problem, "message", None) or str(problem)
                        target = _problem_target(message)
                        errors.setdefault(target, message)
                        if errors[target] != message:
                            errors[target] += "; " + message
                except lc.PolicyStepRefused as refused:
                    errors = {"title": refused.message}
                else:
                    session.set("done", f"Agreement {changed['id']} changed in draft {found.id}")
                    return console.redirect(session, f"{PREFIX}/drafts/{found.id}")
            status = 400
        return console.page(
            session,
            "console/edit_agreement.html",
            status=status,
            current="overview",
            draft=found,
            agreement=original,
            form=form,
            purposes=titles,
            statuses=forms.STATUSES,
            outputs=(*forms.OUTPUT_FORMS, forms.NOT_SHARED),
            errors=errors,
            error_summary=error_summary(errors),
        )

    def _update(found, document, actor):
        """Validate the whole documents first, so an invalid edit is never written."""
        problems = lc.validate_policy(found.register, document)
        if problems:
            raise lc.PolicyInvalid(f"draft {found.id}", problems)
        return lc.update_draft(
            console.data_dir, found.id, actor, console.authorize, found.register, document
        )

    # -- the purpose register in a draft -------------------------------------------------

    def _save_register(found, register, actor, fallback: str) -> dict[str, str]:
        """Validate and write the draft's new register; the errors by input id, or none."""
        problems = lc.validate_policy(register, found.agreements)
        try:
            if problems:
                raise lc.PolicyInvalid(f"draft {found.id}", problems)
            lc.update_draft(
                console.data_dir, found.id, actor, console.authorize, register, found.agreements
            )
        except lc.PolicyInvalid as invalid:
            errors: dict[str, str] = {}
            for problem in invalid.problems:
                target = purpose_forms.problem_target(problem.document, problem.path, fallback)
                text = (
                    problem.problem
                    if problem.document == "purpose register"
                    else f"{problem.problem} ({problem.document} {problem.path})"
                )
                errors[target] = f"{errors[target]}; {text}" if target in errors else text
            return errors
        except lc.PolicyStepRefused as refused:
            return {fallback: refused.message}
        return {}

    async def purpose_page(session, found, *, ident, form, errors, status) -> Response:
        return console.page(
            session,
            "console/edit_purpose.html",
            status=status,
            current="overview",
            draft=found,
            ident=ident,
            form=form,
            errors=errors,
            error_summary=error_summary(errors),
        )

    @signed_in
    async def edit_purpose(request: Request, session: Session, actor: Requester) -> Response:
        found = docs.draft_for(console.data_dir, actor, request.path_params["ident"])
        ident = request.path_params.get("purpose")
        original = None
        if ident is not None:
            listed = found.register.get("purposes", [])
            original = next((p for p in listed if p.get("id") == ident), None)
            if original is None:
                raise docs.NotFound(f"draft {found.id} has no purpose {ident!r}")
        form, errors, status = purpose_forms.purpose_form(original), {}, 200
        if request.method == "POST":
            try:
                changed, form, errors = purpose_forms.apply_purpose_form(
                    found.register, request.state.form, ident
                )
            except ValueError as error:
                raise BadForm(str(error)) from error
            if changed is not None:
                fallback = "id" if ident is None else "title"
                errors = await run_in_threadpool(_save_register, found, changed, actor, fallback)
                if not errors:
                    verb = "added to" if ident is None else "changed in"
                    session.set("done", f"Purpose {form.id} {verb} draft {found.id}")
                    return console.redirect(session, f"{PREFIX}/drafts/{found.id}")
            status = 400
        return await purpose_page(
            session, found, ident=ident, form=form, errors=errors, status=status
        )

    @signed_in
    async def remove_purpose(request: Request, session: Session, actor: Requester) -> Response:
        found = docs.draft_for(console.data_dir, actor, request.path_params["ident"])
        ident = request.path_params["purpose"]
        extra = sorted(request.state.form)
        if extra:
            raise BadForm(f"the form has fields this page never sends: {', '.join(extra)}")
        original = next(
            (p for p in found.register.get("purposes", []) if p.get("id") == ident), None
        )
        if original is None:
            raise docs.NotFound(f"draft {found.id} has no purpose {ident!r}")
        changed, problem = purpose_forms.remove_purpose(
            found.register, found.agreements, ident, actor.agency
        )
        errors = {"remove": problem} if problem else {}
        if changed is not None:
            errors = await run_in_threadpool(_save_register, found, changed, actor, "remove")
            if not errors:
                session.set("done", f"Purpose {ident} removed from draft {found.id}")
                return console.redirect(session, f"{PREFIX}/drafts/{found.id}")
        return await purpose_page(
            session,
            found,
            ident=ident,
            form=purpose_forms.purpose_form(original),
            errors=errors,
            status=400,
        )

    @signed_in
    async def dry_run(request: Request, session: Session, actor: Requester) -> Response:
        found = docs.draft_for(console.data_dir, actor, request.path_params["ident"])
        text = request.query_params.get("days", str(DRY_RUN_DAYS)).strip()
        errors = {}
        if not text.isdigit() or not 1 <= int(text) <= MAX_DRY_RUN_DAYS:
            errors["days"] = f"Enter a number of days from 1 to {MAX_DRY_RUN_DAYS}, like 7"
            result = None
        else:
            try:
                result = await run_in_threadpool(
                    docs.dry_run_draft, console.data_dir, found, int(text)
                )
            except lc.PolicyInvalid as invalid:
                errors["days"] = "The draft is not valid, so it cannot be tried: " + "; ".join(
                    p.message for p in invalid.problems
                )
                result = None
        return console.page(
            session,
            "console/dry_run.html",
            status=400 if errors else 200,
            current="overview",
            draft=found,
            days=text,
            result=result,
            errors=errors,
            error_summary=error_summary(errors),
        )

    async def _step(request, session, actor, action) -> Response:
        found = docs.draft_for(console.data_dir, actor, request.path_params["ident"])
        form = request.state.form
        text = form.get("comment", form.get("reason", "")).strip()
        if len(text) > MAX_COMMENT:
            raise BadForm(f"the comment is longer than {MAX_COMMENT} characters")
        try:
            if action == "submit":
                await run_in_threadpool(
                    lc.submit_draft, console.data_dir, found.id, actor, console.authorize, text
                )
                done = f"Draft {found.id} submitted for approval by a second DPO"
            elif action in ("approve", "reject"):
                if not text:
                    errors = {"comment": f"Enter a comment saying why you {action} the draft"}
                    return await draft_page(session, actor, found, errors=errors, status=400)
                step = lc.approve_draft if action == "approve" else lc.reject_draft
                await run_in_threadpool(
                    step, console.data_dir, found.id, actor, console.authorize, text
                )
                done = f"Draft {found.id} {action}d"
            else:
                manifest = await run_in_threadpool(
                    lc.publish_draft, console.data_dir, found.id, actor, console.authorize, text
                )
                done = (
                    f"Draft {found.id} published as {manifest.label}: every node uses it from "
                    "its next check (within a few seconds)"
                )
        except (lc.PolicyStepRefused, lc.PolicyInvalid, AccessDenied) as error:
            target = {"approve": "comment", "reject": "comment", "publish": "reason"}.get(
                action, "submit"
            )
            found = docs.draft_for(console.data_dir, actor, found.id)
            return await draft_page(
                session, actor, found, errors={target: error.message}, status=409
            )
        session.set("done", done)
        return console.redirect(session, f"{PREFIX}/drafts/{found.id}")

    @signed_in
    async def submit(request: Request, session: Session, actor: Requester) -> Response:
        extra = sorted(set(request.state.form) - {"comment"})
        if extra:
            raise BadForm(f"the form has fields this page never sends: {', '.join(extra)}")
        return await _step(request, session, actor, "submit")

    @signed_in
    async def review(request: Request, session: Session, actor: Requester) -> Response:
        form = request.state.form
        extra = sorted(set(form) - {"comment", "decision"})
        if extra or form.get("decision") not in ("approve", "reject"):
            raise BadForm("the form must say approve or reject, with a comment")
        return await _step(request, session, actor, form["decision"])

    @signed_in
    async def publish(request: Request, session: Session, actor: Requester) -> Response:
        extra = sorted(set(request.state.form) - {"reason"})
        if extra:
            raise BadForm(f"the form has fields this page never sends: {', '.join(extra)}")
        return await _step(request, session, actor, "publish")

    # -- history and rollback ---------------------------------------------------------

    async def history_page(session, actor, *, errors=None, status=200, done=None) -> Response:
        lines, damage = await run_in_threadpool(docs.version_lines, console.data_dir)
        errors = errors or {}
        return console.page(
            session,
            "console/history.html",
            status=status,
            current="history",
            lines=lines,
            damage=damage,
            errors=errors,
            error_summary=error_summary(errors),
            done=done,
        )

    @signed_in
    async def history(request: Request, session: Session, actor: Requester) -> Response:
        return await history_page(session, actor, done=session.pop("done"))

    @signed_in
    async def rollback(request: Request, session: Session, actor: Requester) -> Response:
        form = request.state.form
        extra = sorted(set(form) - {"version", "reason"})
        if extra:
            raise BadForm(f"the form has fields this page never sends: {', '.join(extra)}")
        errors = {}
        number = form.get("version", "").removeprefix("v")
        if not number.isdigit():
            errors["version"] = "Select the version to go back to"
        reason = form.get("reason", "").strip()
        if not reason:
            errors["reason"] = "Enter the reason for going back to that version"
        elif len(reason) > MAX_COMMENT:
            errors["reason"] = f"The reason must be {MAX_COMMENT} characters or fewer"
        if not errors:
            try:
                manifest = await run_in_threadpool(
                    lc.rollback, console.data_dir, int(number), actor, console.authorize, reason
                )
            except (lc.PolicyStepRefused, lc.PolicyStoreCorrupt) as error:
                errors["version"] = error.message
            else:
                session.set("done", f"Published {manifest.label} with the documents of v{number}")
                return console.redirect(session, f"{PREFIX}/history")
        return await history_page(session, actor, errors=errors, status=400)

    # -- errors ---------------------------------------------------------------------------

    async def on_http_error(request: Request, exc: Exception) -> Response:
        session = console.sessions.load(request)
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return console.error(session, status if status in (404, 405) else 400, signed_in=False)

    async def on_bad_form(request: Request, exc: Exception) -> Response:
        session = console.sessions.load(request)
        logger.info("console: bad form refused: %s", exc)
        return console.error(
            session, 400, signed_in=False, paragraphs=[f"The form could not be used: {exc}."]
        )

    async def on_csrf(request: Request, exc: Exception) -> Response:
        session = console.sessions.load(request)
        logger.info("console: form refused: %s", exc)
        return console.error(session, 403, signed_in=False)

    async def on_error(request: Request, exc: Exception) -> Response:
        logger.exception("console error on %s", request.url.path)
        return console.error(Session(), 500, signed_in=False)

    app = Starlette(
        routes=[
            Route("/", overview),
            Route("/sign-in", sign_in),
            Route("/callback", callback),
            Route("/sign-out", sign_out, methods=["POST"]),
            Route("/signed-out", signed_out),
            Route("/purposes", purposes),
            Route("/agreements/{ident}", agreement),
            Route("/drafts", new_draft, methods=["POST"]),
            Route("/drafts/{ident}", draft),
            Route(
                "/drafts/{ident}/agreements/{agreement}",
                edit_agreement,
                methods=["GET", "POST"],
            ),
            Route("/drafts/{ident}/new-purpose", edit_purpose, methods=["GET", "POST"]),
            Route("/drafts/{ident}/purposes/{purpose}", edit_purpose, methods=["GET", "POST"]),
            Route("/drafts/{ident}/purposes/{purpose}/remove", remove_purpose, methods=["POST"]),
            Route("/drafts/{ident}/dry-run", dry_run),
            Route("/drafts/{ident}/submit", submit, methods=["POST"]),
            Route("/drafts/{ident}/review", review, methods=["POST"]),
            Route("/drafts/{ident}/publish", publish, methods=["POST"]),
            Route("/history", history),
            Route("/history/rollback", rollback, methods=["POST"]),
            *audit_routes(console),
        ],
        exception_handlers={
            HTTPException: on_http_error,
            BadForm: on_bad_form,
            CsrfRefused: on_csrf,
            Exception: on_error,
        },
    )
    app.state.aclose = console.signin.aclose
    return app
