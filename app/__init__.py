"""Application factory: config, extensions, blueprints, error handlers, CLI — nothing else."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask

from app.config import PROJECT_ROOT, config_for

if TYPE_CHECKING:
    from app.accounts.models import User


APP_FACTORY = "app_factory"


def create_app(config_name: str | None = None, **overrides: Any) -> Flask:
    config = config_for(config_name)
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    app.config.from_object(config)
    app.config.update(overrides)
    # "a//b" is not redirected to "a/b": under /ocpi an empty id would get an HTML 308 to another route instead of
    # an OCPI answer (found by fuzzing); with no merging, such a URL matches no route and gets a 404 envelope.
    app.url_map.merge_slashes = False
    # The embedded defaults (SQLite file, mail outbox) live under instance/.
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(logging.INFO)

    _init_extensions(app)
    _init_packages(app)
    _register_blueprints(app)
    _register_cli(app)

    from app.errors import register_error_handlers
    from app.i18n import register_template_helpers
    from app.security import register_security_headers

    register_error_handlers(app)
    register_template_helpers(app)
    register_security_headers(app)
    # How this app was built, for code that starts processes of its own (the run preview's parts,
    # app.billing.runs.parallel): a domain package never imports the factory, which imports every door.
    app.extensions[APP_FACTORY] = create_app
    return app


def _init_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  (every table registered before migrations look at metadata)
    from app.db import no_jit, ping_after_idle
    from app.extensions import api, babel, csrf, db, limiter, login_manager, migrate
    from app.i18n import select_locale
    from app.jobs import init_celery

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            ping_after_idle(engine, app.config["DB_PING_AFTER_IDLE_SECONDS"])
            no_jit(engine)
    # The finder's spatial index is not a model: `flask db migrate` must not propose to drop it.
    from app.finder.models import include_in_schema_comparison

    migrate.init_app(
        app,
        db,
        directory=str(PROJECT_ROOT / "app" / "migrations"),
        render_as_batch=True,
        include_name=include_in_schema_comparison,
    )
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    api.init_app(app)
    init_celery(app)
    from app import mail  # noqa: F401  (registers the mail task: a worker must know it)

    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"

    def load_user(session_id: str) -> User | None:
        # The session (or remember-me) cookie names a user *and* the session version it was issued for: a login
        # ended since (logout, sign out everywhere, new password) is refused here, on the server.
        from app.accounts.sessions import user_for_session_token

        return user_for_session_token(session_id)

    # Called, not used as a decorator: flask_login is untyped, and an untyped decorator would untype the loader.
    login_manager.user_loader(load_user)


def _init_packages(app: Flask) -> None:
    """Each package that plugs something into another (the plan catalogue sign-up offers, a CDR listener, a
    standing check, beat schedules, error answers of its door) does it here, in its ``init_app``, never as a side
    effect of being imported."""
    from app import billing, plans, rating, roaming

    plans.init_app(app)
    roaming.init_app(app)
    rating.init_app(app)
    billing.init_app(app)


def _register_blueprints(app: Flask) -> None:
    from app.accounts.views import bp as accounts_bp
    from app.api import register_api
    from app.backoffice.finance import bp as finance_bp
    from app.backoffice.support import bp as support_bp
    from app.backoffice.views import bp as backoffice_bp
    from app.cards.views import bp as cards_bp
    from app.customer_care.views import bp as customer_care_bp
    from app.extensions import csrf
    from app.plans.views import bp as plans_bp
    from app.portal.views import bp as portal_bp
    from app.roaming.door.v221 import bp as ocpi_v221_bp
    from app.roaming.door.versions import bp as ocpi_versions_bp

    app.register_blueprint(portal_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(customer_care_bp)
    app.register_blueprint(backoffice_bp)
    app.register_blueprint(support_bp)
    app.register_blueprint(finance_bp)
    from app.backoffice.finance_invoices import bp as finance_invoices_bp
    from app.backoffice.finance_runs import bp as finance_runs_bp
    from app.billing.views import bp as billing_bp

    app.register_blueprint(finance_runs_bp)
    app.register_blueprint(finance_invoices_bp)
    app.register_blueprint(billing_bp)
    from app.payments.views import bp as payments_bp

    app.register_blueprint(payments_bp)
    from app.billing.pay_views import bp as billing_pay_bp
    from app.webhooks.views import bp as stripe_webhooks_bp

    app.register_blueprint(billing_pay_bp)
    # Stripe signs its webhooks; no cookie, no CSRF token.
    app.register_blueprint(stripe_webhooks_bp)
    csrf.exempt(stripe_webhooks_bp)
    app.register_blueprint(cards_bp)
    app.register_blueprint(plans_bp)
    from app.finder.views import bp as finder_bp

    app.register_blueprint(finder_bp)
    # Machine doors authenticate with tokens or signatures, not cookies: no CSRF there.
    app.register_blueprint(ocpi_versions_bp)
    app.register_blueprint(ocpi_v221_bp)
    csrf.exempt(ocpi_versions_bp)
    csrf.exempt(ocpi_v221_bp)
    register_api(app)  # the app's JSON API (bearer tokens, no CSRF): app/api


def _register_cli(app: Flask) -> None:
    from app.accounts.cli import users_cli
    from app.billing.cli import billing_cli
    from app.cards.cli import cards_cli
    from app.customer_care.cli import accounts_cli
    from app.demo.cli import demo_cli
    from app.payments.cli import payments_cli
    from app.plans.cli import plans_cli
    from app.pricing.cli import pricing as pricing_cli
    from app.rating.cli import rating_cli
    from app.roaming.cli import roaming_cli_group

    app.cli.add_command(users_cli)
    app.cli.add_command(accounts_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(cards_cli)
    app.cli.add_command(plans_cli)
    app.cli.add_command(payments_cli)
    app.cli.add_command(pricing_cli)
    app.cli.add_command(rating_cli)
    app.cli.add_command(billing_cli)
    app.cli.add_command(roaming_cli_group())
