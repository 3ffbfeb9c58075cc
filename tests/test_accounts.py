"""Sign-up, confirmation, login, logout, password reset and profile, through the real HTTP routes."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import Account, Role, User
from app.audit.models import AuditEntry
from app.extensions import db, limiter
from tests.factories import PASSWORD, login, make_user
from tests.helpers import submit_form

SIGNUP = {
    "email": "Nieuwe.Rijder@Example.com",
    "password": "a-long-password",
    "password_repeat": "a-long-password",
    "full_name": "Nieuwe Rijder",
    "street": "Kerkstraat 5",
    "postal_code": "1011 AB",
    "city": "Amsterdam",
    "country": "NL",
    "language": "nl",
    "plan": "payg",
    "accept_terms": "y",
}


def test_signup_creates_unconfirmed_driver_and_sends_confirmation(client, mailbox):
    response = submit_form(client, "/signup", SIGNUP)
    assert response.status_code == 200
    assert "nieuwe.rijder@example.com" in response.get_data(as_text=True).lower()

    user = db.session.scalar(select(User).where(User.email == "nieuwe.rijder@example.com"))
    assert user is not None and user.role == Role.DRIVER and not user.is_confirmed
    assert user.password_hash.startswith("$argon2id$")
    assert user.account.city == "Amsterdam" and user.account.language == "nl"
    assert user.account.postal_code == "1011 AB"

    messages = mailbox.to("nieuwe.rijder@example.com")
    assert len(messages) == 1
    # The mail is in the driver's language (nl), whatever the browser's.
    assert messages[0]["Subject"] == "Bevestig uw e-mailadres"


def test_confirmation_then_login(client, mailbox):
    submit_form(client, "/signup", SIGNUP)
    refused = submit_form(client, "/login", {"email": SIGNUP["email"], "password": SIGNUP["password"]})
    assert refused.status_code == 200
    assert "confirm" in refused.get_data(as_text=True).lower() or "bevestig" in refused.get_data(as_text=True)

    confirm_path = mailbox.last_link("nieuwe.rijder@example.com")
    assert client.get(confirm_path).status_code == 302
    user = db.session.scalar(select(User).where(User.email == "nieuwe.rijder@example.com"))
    assert user.is_confirmed
    # The link signed the driver in (tests/test_confirmation_link.py); later logins use the password.
    submit_form(client, "/logout", {}, form_url="/dashboard")

    response = submit_form(client, "/login", {"email": SIGNUP["email"], "password": SIGNUP["password"]})
    assert response.status_code == 302
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200
    assert "Nieuwe Rijder" in dashboard.get_data(as_text=True)


def test_tampered_confirmation_link_is_refused(client, mailbox):
    submit_form(client, "/signup", SIGNUP)
    path = mailbox.last_link("nieuwe.rijder@example.com")
    response = client.get(path[:-3] + "xyz", follow_redirects=True)
    assert response.status_code == 200
    user = db.session.scalar(select(User).where(User.email == "nieuwe.rijder@example.com"))
    assert not user.is_confirmed


def test_signup_with_known_email_gives_same_answer_and_creates_nothing(client, mailbox):
    existing = make_user(email="taken@example.com")
    data = {**SIGNUP, "email": "taken@example.com"}
    fresh = submit_form(client, "/signup", {**SIGNUP, "email": "fresh@example.com"})
    known = submit_form(client, "/signup", data)
    assert known.status_code == fresh.status_code == 200
    # Same page, only the address differs: nothing tells an attacker the address is registered.
    assert known.get_data(as_text=True).replace("taken@example.com", "X") == fresh.get_data(as_text=True).replace(
        "fresh@example.com", "X"
    ).replace(
        # the CSRF token differs per form render; the confirmation page has none
        "",
        "",
    )
    assert db.session.scalar(select(db.func.count(User.id)).where(User.email == "taken@example.com")) == 1
    assert existing.account.full_name == "Jan Janssens"
    # The real owner is told by email instead.
    assert "already" in mailbox.to("taken@example.com")[-1]["Subject"].lower()


def test_signup_rejects_bad_input_and_changes_nothing(client, mailbox):
    before = db.session.scalar(select(db.func.count(Account.id)))
    cases = [
        {**SIGNUP, "password_repeat": "something-else"},
        {**SIGNUP, "password": "short", "password_repeat": "short"},
        {**SIGNUP, "email": "not-an-email"},
        {**SIGNUP, "country": "XX"},
        {**SIGNUP, "company_name": "ACME BV", "vat_number": "BE0123456788"},  # wrong Belgian check digits
        {**SIGNUP, "vat_number": "BE0403170701"},  # VAT number without company
        {key: value for key, value in SIGNUP.items() if key != "accept_terms"},
    ]
    for data in cases:
        limiter.reset()  # this test is about validation, not the sign-up rate limit
        response = submit_form(client, "/signup", data)
        assert response.status_code == 200
        assert 'role="alert"' in response.get_data(as_text=True), data
    assert db.session.scalar(select(db.func.count(Account.id))) == before
    assert mailbox.messages() == []


def test_business_driver_signup_keeps_company_and_vat(client):
    data = {**SIGNUP, "company_name": "Laadpaal BV", "vat_number": "BE 0403.170.701", "country": "BE"}
    data["postal_code"] = "1000"  # a Belgian address has a Belgian postal code
    submit_form(client, "/signup", data)
    account = db.session.scalar(select(Account).where(Account.company_name == "Laadpaal BV"))
    assert account.vat_number == "BE0403170701"
    assert account.is_business


def test_login_with_wrong_password_or_unknown_email_gives_same_message(client):
    user = make_user()
    wrong = submit_form(client, "/login", {"email": user.email, "password": "wrong-password"})
    unknown = submit_form(client, "/login", {"email": "nobody@example.com", "password": "wrong-password"})
    assert wrong.status_code == unknown.status_code == 200
    assert "Email or password is not correct." in wrong.get_data(as_text=True)
    assert "Email or password is not correct." in unknown.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_login_email_is_case_insensitive_and_logout_requires_post(client):
    user = make_user(email="case@example.com")
    response = submit_form(client, "/login", {"email": "CASE@Example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/logout").status_code == 405
    page = client.get("/dashboard")
    assert page.status_code == 200
    response = submit_form(client, "/logout", {}, form_url="/dashboard")
    assert response.status_code == 302
    assert client.get("/dashboard").status_code == 302
    assert user.last_login_at is not None


def test_login_redirect_only_to_local_paths(client):
    user = make_user()
    page = client.get("/login?next=https://evil.example/")
    from tests.helpers import csrf_token_from

    token = csrf_token_from(page.get_data(as_text=True))
    response = client.post(
        "/login?next=https://evil.example/", data={"csrf_token": token, "email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_password_reset_flow_is_one_time(client, mailbox):
    user = make_user(email="forgetful@example.com")
    response = submit_form(client, "/password/reset", {"email": "forgetful@example.com"})
    assert response.status_code == 302
    link = mailbox.last_link("forgetful@example.com")

    response = submit_form(client, link, {"password": "brand-new-password", "password_repeat": "brand-new-password"})
    assert response.status_code == 302
    # The link is used up: the password change bumped the session version it carries.
    assert client.get(link).status_code == 302
    assert client.get(link, follow_redirects=True).request.path == "/password/reset"

    assert submit_form(client, "/login", {"email": user.email, "password": PASSWORD}).status_code == 200
    assert submit_form(client, "/login", {"email": user.email, "password": "brand-new-password"}).status_code == 302


def test_password_reset_does_not_reveal_unknown_emails(client, mailbox):
    make_user(email="known@example.com")
    known = submit_form(client, "/password/reset", {"email": "known@example.com"}, follow_redirects=True)
    unknown = submit_form(client, "/password/reset", {"email": "unknown@example.com"}, follow_redirects=True)
    assert known.status_code == unknown.status_code == 200
    message = "If an account exists for that address, we sent a link to reset the password."
    assert message in known.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    assert len(mailbox.to("known@example.com")) == 1
    assert mailbox.to("unknown@example.com") == []


def test_password_change_logs_out_other_sessions(app, client):
    user = make_user()
    login(client, user)
    other = app.test_client()
    login(other, user)
    response = submit_form(
        client,
        "/profile/password",
        {"pw-current_password": PASSWORD, "pw-password": "another-password", "pw-password_repeat": "another-password"},
        form_url="/profile",
        prefix="pw-",
    )
    assert response.status_code == 302
    assert client.get("/dashboard").status_code == 200
    assert other.get("/dashboard").status_code == 302


def test_profile_edit(client):
    user = make_user()
    login(client, user)
    data = {
        "full_name": "Jan Janssens-Peeters",
        "street": "Meir 12",
        "postal_code": "2000",
        "city": "Antwerpen",
        "country": "BE",
        "language": "fr",
        "company_name": "",
        "vat_number": "",
        "submit": "Save",
    }
    response = submit_form(client, "/profile", data)
    assert response.status_code == 302
    assert user.account.full_name == "Jan Janssens-Peeters"
    assert user.account.language == "fr"
    # The portal now speaks French.
    assert "Profil" in client.get("/profile").get_data(as_text=True)


def test_users_create_cli(app, db_session):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "--email", "Staff@Example.com", "--password", "staff-password-1", "--role", "finance"]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "staff@example.com"))
    assert user.role == Role.FINANCE and user.is_confirmed and user.account is None
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.subject_id == str(user.id)))
    assert entry.action == "user.create" and entry.actor_label == "cli"

    again = runner.invoke(
        args=["users", "create", "--email", "staff@example.com", "--password", "staff-password-1", "--role", "finance"]
    )
    assert again.exit_code != 0 and "already exists" in again.output
    bad_role = runner.invoke(
        args=["users", "create", "--email", "x@example.com", "--password", "staff-password-1", "--role", "boss"]
    )
    assert bad_role.exit_code == 2


def test_demo_seed_is_idempotent(app, db_session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed"])
    second = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == second.exit_code == 0
    assert "demo-password-1" in first.output
    emails = ["driver@example.com", "support@example.com", "finance@example.com", "admin@example.com"]
    count = db.session.scalar(select(db.func.count(User.id)).where(User.email.in_(emails)))
    assert count == 4
