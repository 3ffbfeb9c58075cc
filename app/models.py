"""Imports every model module so ``db.metadata`` knows all tables (for Alembic and ``create_all``)."""

from app.accounts import api_tokens as api_tokens_models  # noqa: F401
from app.accounts import models as accounts_models  # noqa: F401
from app.audit import models as audit_models  # noqa: F401
from app.billing import models as billing_models  # noqa: F401
from app.cards import models as cards_models  # noqa: F401
from app.charging import models as charging_models  # noqa: F401
from app.finder import models as finder_models  # noqa: F401
from app.payments import models as payments_models  # noqa: F401
from app.plans import models as plans_models  # noqa: F401
from app.rating import models as rating_models  # noqa: F401
from app.roaming import models as roaming_models  # noqa: F401
