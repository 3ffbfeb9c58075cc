"""OCPI ids compare case-insensitively, whoever delivers them: folded keys, and the doubles held so far

An OCPI object (session, CDR, location, tariff version) is the CPO's party + its id, whoever delivers it, and
the id is a CiString. Until now the CDR key included the sending partner and every id compared case-sensitively,
so ``replay1`` after ``REPLAY1``, or a hub relaying a CDR the CPO had sent directly, was stored (and billed)
twice. This revision adds the folded key (``ocpi_id_key``: ASCII letters upper-cased, as ``app.ocpi_ids.ci_key``)
and a UNIQUE constraint on (country_code, party_id, ocpi_id_key) — plus ``last_updated`` for tariff versions —,
keeps card uids and contract ids in their folded form (CHECK constraints), and first settles the doubles an
existing database already holds, so it never fails on them:

- CDRs: the copy kept is the first received, except that a copy already on an invoice is preferred to one that
  is not, and a rated one to an unrated one (so the driver's billing follows the copy billing already knows).
  Each other copy is written to ``roaming_duplicate_objects`` (raw JSON, ``duplicate of CDR #<kept>``) and
  excluded from billing: its rating (and outlier hold, reconciliation finding) is deleted and the copy is removed
  from ``roaming_cdrs``; credit CDRs that named it now name the kept copy. A copy that is already on an invoice is
  NOT touched beyond leaving the natural key (``ocpi_id_key`` NULL, ``still_stored`` true in the record): issued
  invoices never change. Such a driver was charged twice; finance finds the copy in the record and decides on a
  credit note.
- Sessions and locations (state the CPO keeps updating): the copy kept is the one with the newest
  ``last_updated`` (the first received on a tie), what a recognised repeat would have left. A session keeps the
  card, account and frozen tariff of the others when it has none. The other copies (a location with its EVSEs
  and connectors) are recorded raw and removed; nothing else refers to them.
- Tariff versions (same id in another case and the same ``last_updated``: the same version): the first received
  is kept, frozen sessions and ratings that pointed at another copy point at it, the others are recorded and
  removed.
- Cards: uids and contract ids are upper-cased (every way of making a card already does so). Two cards that
  differ only by case would be one token: the upgrade then stops and names them, because merging drivers' cards
  is a decision for people.

Country codes and party ids of the four tables are upper-cased too (the services always did). Sessions and CDRs
stored earlier with a lower-case token uid, and so linked to no card, are left unlinked: linking them now would
put old sessions on the next invoice, which is finance's decision (new ones link on arrival). Every table is
rewritten once (keys, and on SQLite the table rebuilds): expect minutes on a large CDR table. Downgrade restores
the previous constraints and drops the record of doubles; removed copies are not brought back.

Revision ID: b7e4c2a91f30
Revises: b6f4e2a9c311, f2b8d41c7a63, f4b8c2d91e07
Create Date: 2026-11-24 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

import app.db

# revision identifiers, used by Alembic.
revision = 'b7e4c2a91f30'
# Also the merge point of the three revisions written beside it on e7a91c3f5d20 (none touches what this one does).
down_revision = ('b6f4e2a9c311', 'f2b8d41c7a63', 'f4b8c2d91e07')
branch_labels = None
depends_on = None

# The columns of the unique constraints this revision replaces (their names are read from the database: the
# generated name of the tariff one is longer than PostgreSQL keeps).
OLD_UNIQUE = {
    'roaming_sessions': ['country_code', 'party_id', 'ocpi_id'],
    'roaming_cdrs': ['partner_id', 'country_code', 'party_id', 'ocpi_id'],
    'roaming_locations': ['country_code', 'party_id', 'ocpi_id'],
    'roaming_tariff_versions': ['country_code', 'party_id', 'ocpi_id', 'last_updated'],
}
OLD_UNIQUE_NAMES = {  # as revision d3350b466b6e made them (op.f), for the downgrade
    'roaming_sessions': 'uq_roaming_sessions_country_code_party_id_ocpi_id',
    'roaming_cdrs': 'uq_roaming_cdrs_partner_id_country_code_party_id_ocpi_id',
    'roaming_locations': 'uq_roaming_locations_country_code_party_id_ocpi_id',
    'roaming_tariff_versions': 'uq_roaming_tariff_versions_country_code_party_id_ocpi_id_last_updated',
}
NEW_UNIQUE = {
    'roaming_sessions': ('uq_roaming_sessions_country_code_party_id_ocpi_id_key',
                         ['country_code', 'party_id', 'ocpi_id_key']),
    'roaming_cdrs': ('uq_roaming_cdrs_country_code_party_id_ocpi_id_key',
                     ['country_code', 'party_id', 'ocpi_id_key']),
    'roaming_locations': ('uq_roaming_locations_country_code_party_id_ocpi_id_key',
                          ['country_code', 'party_id', 'ocpi_id_key']),
    'roaming_tariff_versions': ('uq_roaming_tariff_versions_version_key',
                                ['country_code', 'party_id', 'ocpi_id_key', 'last_updated']),
}
KEY_LENGTH = {'roaming_sessions': 36, 'roaming_cdrs': 39, 'roaming_locations': 36, 'roaming_tariff_versions': 36}

# Lightweight tables for the data steps (typed, so JSON and timestamps read and write alike on both databases).
_cdrs = sa.table('roaming_cdrs', sa.column('id', sa.Integer), sa.column('partner_id', sa.Integer),
                 sa.column('country_code', sa.String), sa.column('party_id', sa.String),
                 sa.column('ocpi_id', sa.String), sa.column('ocpi_id_key', sa.String),
                 sa.column('account_id', sa.Integer), sa.column('original_cdr_id', sa.Integer),
                 sa.column('received_at', app.db.UTCDateTime()), sa.column('data', sa.JSON))
_sessions = sa.table('roaming_sessions', sa.column('id', sa.Integer), sa.column('partner_id', sa.Integer),
                     sa.column('country_code', sa.String), sa.column('party_id', sa.String),
                     sa.column('ocpi_id', sa.String), sa.column('ocpi_id_key', sa.String),
                     sa.column('card_id', sa.Integer), sa.column('account_id', sa.Integer),
                     sa.column('frozen_tariff_id', sa.Integer),
                     sa.column('last_updated', app.db.UTCDateTime()), sa.column('data', sa.JSON))
_locations = sa.table('roaming_locations', sa.column('id', sa.Integer), sa.column('partner_id', sa.Integer),
                      sa.column('country_code', sa.String), sa.column('party_id', sa.String),
                      sa.column('ocpi_id', sa.String), sa.column('ocpi_id_key', sa.String),
                      sa.column('last_updated', app.db.UTCDateTime()), sa.column('data', sa.JSON))
_evses = sa.table('roaming_evses', sa.column('id', sa.Integer), sa.column('location_id', sa.Integer),
                  sa.column('data', sa.JSON))
_connectors = sa.table('roaming_connectors', sa.column('id', sa.Integer), sa.column('evse_id', sa.Integer),
                       sa.column('data', sa.JSON))
_tariffs = sa.table('roaming_tariff_versions', sa.column('id', sa.Integer), sa.column('partner_id', sa.Integer),
                    sa.column('country_code', sa.String), sa.column('party_id', sa.String),
                    sa.column('ocpi_id', sa.String), sa.column('ocpi_id_key', sa.String),
                    sa.column('last_updated', app.db.UTCDateTime()), sa.column('data', sa.JSON))
_charges = sa.table('rating_session_charges', sa.column('id', sa.Integer), sa.column('cdr_id', sa.Integer),
                    sa.column('tariff_version_id', sa.Integer))
_lines = sa.table('billing_invoice_lines', sa.column('id', sa.Integer), sa.column('invoice_id', sa.Integer),
                  sa.column('session_charge_id', sa.Integer))
_invoices = sa.table('billing_invoices', sa.column('id', sa.Integer), sa.column('number', sa.String))
_cards = sa.table('cards', sa.column('id', sa.Integer), sa.column('uid', sa.String),
                  sa.column('token_type', sa.String), sa.column('contract_id', sa.String))
_duplicates = sa.table('roaming_duplicate_objects', sa.column('kind', sa.String),
                       sa.column('country_code', sa.String), sa.column('party_id', sa.String),
                       sa.column('ocpi_id', sa.String), sa.column('row_id', sa.Integer),
                       sa.column('kept_row_id', sa.Integer), sa.column('partner_id', sa.Integer),
                       sa.column('still_stored', sa.Boolean), sa.column('reason', sa.String),
                       sa.column('data', sa.JSON), sa.column('found_at', app.db.UTCDateTime()))

_LOWER = 'abcdefghijklmnopqrstuvwxyz'


def _fold(bind, column):
    """app.ocpi_ids.ci_key in SQL: ASCII letters upper-cased, nothing else (PostgreSQL's upper() would also fold
    other letters, depending on the locale; SQLite's upper() is ASCII-only already)."""
    if bind.dialect.name == 'postgresql':
        return sa.func.translate(column, _LOWER, _LOWER.upper())
    return sa.func.upper(column)


def _ci_key(value):
    return None if value is None else value.translate(str.maketrans(_LOWER, _LOWER.upper()))


def _old_unique_name(bind, table):
    for constraint in sa.inspect(bind).get_unique_constraints(table):
        if constraint['column_names'] == OLD_UNIQUE[table]:
            return constraint['name']
    raise RuntimeError(f'{table}: the unique constraint on {OLD_UNIQUE[table]} is not there')


def _referencing(bind):
    """For every table, the (table, column, ON DELETE action) of the foreign keys that refer to it."""
    inspector = sa.inspect(bind)
    found = {}
    for name in inspector.get_table_names():
        for key in inspector.get_foreign_keys(name):
            action = ((key.get('options') or {}).get('ondelete') or '').upper()
            found.setdefault(key['referred_table'], []).append((name, key['constrained_columns'][0], action))
    return found


def _delete(bind, references, table, ids):
    """Delete rows ``ids`` of ``table`` doing what the foreign keys say (CASCADE, SET NULL; a RESTRICT that still
    applies stops the migration): SQLite migrates with foreign keys off (env.py), so the database would not."""
    ids = list(ids)
    if not ids:
        return
    for child, column, action in references.get(table, []):
        rows = sa.table(child, sa.column('id', sa.Integer), sa.column(column, sa.Integer))
        condition = rows.c[column].in_(ids)
        if action == 'CASCADE':
            _delete(bind, references, child, bind.execute(sa.select(rows.c.id).where(condition)).scalars().all())
        elif action == 'SET NULL':
            bind.execute(rows.update().where(condition).values({column: None}))
        elif bind.execute(sa.select(sa.func.count()).select_from(rows).where(condition)).scalar():
            raise RuntimeError(f'cannot remove {table} {ids}: {child}.{column} still refers to them')
    rows = sa.table(table, sa.column('id', sa.Integer))
    bind.execute(rows.delete().where(rows.c.id.in_(ids)))


def upgrade():
    bind = op.get_bind()
    op.create_table('roaming_duplicate_objects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('country_code', sa.String(length=2), nullable=False),
    sa.Column('party_id', sa.String(length=3), nullable=False),
    sa.Column('ocpi_id', sa.String(length=39), nullable=False),
    sa.Column('row_id', sa.Integer(), nullable=False),
    sa.Column('kept_row_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('still_stored', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('found_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roaming_duplicate_objects'))
    )
    with op.batch_alter_table('roaming_duplicate_objects', schema=None) as batch_op:
        batch_op.create_index('ix_roaming_duplicate_objects_kind_kept', ['kind', 'kept_row_id'], unique=False)

    # 1. The key columns, without the old constraints (which the normalising below could trip over).
    old_names = {table: _old_unique_name(bind, table) for table in OLD_UNIQUE}
    for table, length in KEY_LENGTH.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('ocpi_id_key', sa.String(length=length), nullable=True))
            if table == 'roaming_cdrs':
                batch_op.add_column(sa.Column('credit_reference_key', sa.String(length=39), nullable=True))
                batch_op.drop_index('ix_roaming_cdrs_credit_reference',
                                    postgresql_where=sa.text('credit'), sqlite_where=sa.text('credit'))
            if table == 'roaming_tariff_versions':
                batch_op.drop_index('ix_roaming_tariff_versions_key')
            batch_op.drop_constraint(old_names[table], type_='unique')

    # 2. Normalised parties and folded keys.
    for table in KEY_LENGTH:
        rows = sa.table(table, sa.column('country_code', sa.String), sa.column('party_id', sa.String),
                        sa.column('ocpi_id', sa.String), sa.column('ocpi_id_key', sa.String))
        bind.execute(rows.update().values(country_code=_fold(bind, rows.c.country_code),
                                          party_id=_fold(bind, rows.c.party_id),
                                          ocpi_id_key=_fold(bind, rows.c.ocpi_id)))
    credit = sa.table('roaming_cdrs', sa.column('credit_reference_id', sa.String),
                      sa.column('credit_reference_key', sa.String))
    bind.execute(credit.update().where(credit.c.credit_reference_id.is_not(None))
                 .values(credit_reference_key=_fold(bind, credit.c.credit_reference_id)))

    # 3. The doubles held so far.
    references = _referencing(bind)
    _settle_tariff_doubles(bind, references)
    _settle_location_doubles(bind, references)
    _settle_session_doubles(bind, references)
    _settle_cdr_doubles(bind, references)
    _normalise_cards(bind)

    # 4. The new constraints.
    for table, (name, columns) in NEW_UNIQUE.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table != 'roaming_cdrs':  # NULL on a kept, already invoiced double (see the docstring)
                batch_op.alter_column('ocpi_id_key', existing_type=sa.String(length=KEY_LENGTH[table]),
                                      nullable=False)
            batch_op.create_unique_constraint(name, columns)
            if table == 'roaming_cdrs':
                batch_op.create_index('ix_roaming_cdrs_credit_reference',
                                      ['country_code', 'party_id', 'credit_reference_key'], unique=False,
                                      postgresql_where=sa.text('credit'), sqlite_where=sa.text('credit'))
            if table == 'roaming_tariff_versions':
                batch_op.create_index('ix_roaming_tariff_versions_key',
                                      ['country_code', 'party_id', 'ocpi_id_key', 'received_at'], unique=False)
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_cards_uid_normalised'), 'uid = upper(uid)')
        batch_op.create_check_constraint(op.f('ck_cards_contract_id_normalised'),
                                         'contract_id = upper(contract_id)')


def _groups(bind, table, *extra):
    """(country_code, party_id, ocpi_id_key[, extra...]) of every key held more than once."""
    columns = [table.c.country_code, table.c.party_id, table.c.ocpi_id_key, *(table.c[name] for name in extra)]
    return bind.execute(sa.select(*columns).group_by(*columns).having(sa.func.count() > 1)).all()


def _copies(bind, table, group, *extra):
    columns = ['country_code', 'party_id', 'ocpi_id_key', *extra]
    condition = sa.and_(*(table.c[name] == value for name, value in zip(columns, group, strict=True)))
    return bind.execute(sa.select(table).where(condition).order_by(table.c.id)).mappings().all()


def _record(bind, kind, copy, kept_id, reason, data, still_stored=False):
    bind.execute(_duplicates.insert().values(
        kind=kind, country_code=copy['country_code'], party_id=copy['party_id'], ocpi_id=copy['ocpi_id'],
        row_id=copy['id'], kept_row_id=kept_id, partner_id=copy['partner_id'], still_stored=still_stored,
        reason=reason[:255], data=data if data is not None else {}, found_at=app.db.utcnow()))


def _settle_tariff_doubles(bind, references):
    for group in _groups(bind, _tariffs, 'last_updated'):
        kept, *others = _copies(bind, _tariffs, group, 'last_updated')
        for copy in others:
            bind.execute(_sessions.update().where(_sessions.c.frozen_tariff_id == copy['id'])
                         .values(frozen_tariff_id=kept['id']))
            bind.execute(_charges.update().where(_charges.c.tariff_version_id == copy['id'])
                         .values(tariff_version_id=kept['id']))
            _record(bind, 'tariff', copy, kept['id'], f"duplicate of tariff version #{kept['id']}", copy['data'])
            _delete(bind, references, 'roaming_tariff_versions', [copy['id']])


def _newest_first(copies):
    """The copy a recognised repeat would have left: the newest last_updated, the first received on a tie."""
    return sorted(copies, key=lambda copy: (-copy['last_updated'].timestamp(), copy['id']))


def _location_with_children(bind, location):
    evses = bind.execute(sa.select(_evses).where(_evses.c.location_id == location['id'])
                         .order_by(_evses.c.id)).mappings().all()
    composed = []
    for evse in evses:
        connectors = bind.execute(sa.select(_connectors.c.data).where(_connectors.c.evse_id == evse['id'])
                                  .order_by(_connectors.c.id)).scalars().all()
        composed.append({**(evse['data'] or {}), 'connectors': list(connectors)})
    return {**(location['data'] or {}), 'evses': composed}


def _settle_location_doubles(bind, references):
    for group in _groups(bind, _locations):
        kept, *others = _newest_first(_copies(bind, _locations, group))
        for copy in others:
            _record(bind, 'location', copy, kept['id'], f"duplicate of location #{kept['id']}",
                    _location_with_children(bind, copy))
            _delete(bind, references, 'roaming_locations', [copy['id']])  # with its EVSEs and connectors


def _settle_session_doubles(bind, references):
    for group in _groups(bind, _sessions):
        kept, *others = _newest_first(_copies(bind, _sessions, group))
        inherited = {}
        for name in ('card_id', 'account_id', 'frozen_tariff_id'):
            if kept[name] is None:
                inherited[name] = next((copy[name] for copy in others if copy[name] is not None), None)
        for copy in others:
            _record(bind, 'session', copy, kept['id'], f"duplicate of session #{kept['id']}", copy['data'])
            _delete(bind, references, 'roaming_sessions', [copy['id']])
        if any(value is not None for value in inherited.values()):
            bind.execute(_sessions.update().where(_sessions.c.id == kept['id'])
                         .values(**{name: value for name, value in inherited.items() if value is not None}))


def _settle_cdr_doubles(bind, references):
    charge = (sa.select(_charges.c.id).where(_charges.c.cdr_id == _cdrs.c.id).scalar_subquery())
    invoiced = (sa.select(sa.func.coalesce(_invoices.c.number, sa.literal('#') + sa.cast(_invoices.c.id, sa.String)))
                .select_from(_lines.join(_charges, _charges.c.id == _lines.c.session_charge_id)
                             .join(_invoices, _invoices.c.id == _lines.c.invoice_id))
                .where(_charges.c.cdr_id == _cdrs.c.id).scalar_subquery())
    for country_code, party_id, key in _groups(bind, _cdrs):
        copies = bind.execute(
            sa.select(_cdrs, charge.label('charge_id'), invoiced.label('invoice'))
            .where(_cdrs.c.country_code == country_code, _cdrs.c.party_id == party_id,
                   _cdrs.c.ocpi_id_key == key)).mappings().all()
        # Billing's view first: a copy already invoiced, else rated, else linked to an account; then the first
        # received.
        kept, *others = sorted(copies, key=lambda copy: (
            copy['invoice'] is None, copy['charge_id'] is None, copy['account_id'] is None,
            copy['received_at'], copy['id']))
        for copy in others:
            reason = f"duplicate of CDR #{kept['id']}"
            if copy['invoice'] is not None:
                # Billed already: issued invoices never change. Out of the natural key, kept for the invoice.
                _record(bind, 'cdr', copy, kept['id'],
                        f"{reason}; already on invoice {copy['invoice']}, which is not changed", copy['data'],
                        still_stored=True)
                bind.execute(_cdrs.update().where(_cdrs.c.id == copy['id']).values(ocpi_id_key=None))
                continue
            _record(bind, 'cdr', copy, kept['id'], reason, copy['data'])
            if copy['charge_id'] is not None:  # rated, not invoiced: the rating goes (with its outlier hold)
                _delete(bind, references, 'rating_session_charges', [copy['charge_id']])
            bind.execute(_cdrs.update().where(_cdrs.c.original_cdr_id == copy['id'])
                         .values(original_cdr_id=kept['id']))
            _delete(bind, references, 'roaming_cdrs', [copy['id']])  # with its reconciliation finding


def _normalise_cards(bind):
    rows = bind.execute(sa.select(_cards).where(sa.or_(_cards.c.uid != _fold(bind, _cards.c.uid),
                                                       _cards.c.contract_id != _fold(bind, _cards.c.contract_id)))
                        ).mappings().all()
    conflicts = []
    for card in rows:
        uid, contract_id = _ci_key(card['uid']), _ci_key(card['contract_id'])
        clash = bind.execute(sa.select(_cards.c.id).where(_cards.c.id != card['id'], sa.or_(
            sa.and_(_cards.c.uid == uid, _cards.c.token_type == card['token_type']),
            _cards.c.contract_id == contract_id))).scalar()
        if clash is not None:
            conflicts.append(f"card #{card['id']} ({card['uid']}, {card['contract_id']}) and card #{clash}")
            continue
        bind.execute(_cards.update().where(_cards.c.id == card['id']).values(uid=uid, contract_id=contract_id))
    if conflicts:
        raise RuntimeError('cards that differ only by the case of their uid or contract id are one OCPI token; '
                           'replace one of each pair, then upgrade again: ' + '; '.join(conflicts))


def downgrade():
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_cards_contract_id_normalised'), type_='check')
        batch_op.drop_constraint(op.f('ck_cards_uid_normalised'), type_='check')

    for table, (name, _columns) in NEW_UNIQUE.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == 'roaming_cdrs':
                batch_op.drop_index('ix_roaming_cdrs_credit_reference',
                                    postgresql_where=sa.text('credit'), sqlite_where=sa.text('credit'))
            if table == 'roaming_tariff_versions':
                batch_op.drop_index('ix_roaming_tariff_versions_key')
            batch_op.drop_constraint(name, type_='unique')
            batch_op.drop_column('ocpi_id_key')
            if table == 'roaming_cdrs':
                batch_op.drop_column('credit_reference_key')
            batch_op.create_unique_constraint(op.f(OLD_UNIQUE_NAMES[table]), OLD_UNIQUE[table])  # as truncated then
            if table == 'roaming_cdrs':
                batch_op.create_index('ix_roaming_cdrs_credit_reference',
                                      ['partner_id', 'country_code', 'party_id', 'credit_reference_id'],
                                      unique=False, postgresql_where=sa.text('credit'),
                                      sqlite_where=sa.text('credit'))
            if table == 'roaming_tariff_versions':
                batch_op.create_index('ix_roaming_tariff_versions_key',
                                      ['country_code', 'party_id', 'ocpi_id', 'received_at'], unique=False)

    with op.batch_alter_table('roaming_duplicate_objects', schema=None) as batch_op:
        batch_op.drop_index('ix_roaming_duplicate_objects_kind_kept')
    op.drop_table('roaming_duplicate_objects')
