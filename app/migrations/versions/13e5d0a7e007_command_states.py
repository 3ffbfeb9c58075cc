"""commands: the CPO's answer kept apart from our own failure to reach it

Revision ID: 13e5d0a7e007
Revises: 13d4d0a6e006
Create Date: 2026-12-06 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision = '13e5d0a7e007'
down_revision = '13d4d0a6e006'
branch_labels = None
depends_on = None


COMMAND_STATES = ('sending', 'pending', 'accepted', 'failed', 'rejected', 'timeout', 'unknown', 'not_sent')

# Before this revision a command we could not deliver was recorded as if the CPO had answered FAILED
# (response_result SEND_FAILED, result FAILED, our error as result_message), and a success answer we could not
# read as result FAILED too. Neither was the CPO's word: both are moved out of result, so a CommandResult the
# CPO still posts is recorded, and support no longer reads "failed, retry" for a command that may have arrived.
OUR_SEND_FAILURE = ("response_result = 'SEND_FAILED' AND result = 'FAILED' "
                    "AND result_message LIKE 'POST %'")
OUR_UNREAD_ANSWER = ("response_result IS NULL AND result = 'FAILED' AND timeout_at IS NULL "
                     "AND result_message IS NULL")


def upgrade():
    with op.batch_alter_table('roaming_commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.Enum(*COMMAND_STATES, name='commandstate', native_enum=False,
                                                       length=20), nullable=True))
        batch_op.add_column(sa.Column('response_http_status', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('response_status_code', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('response_problem', sa.String(length=255), nullable=True))

    op.execute("UPDATE roaming_commands SET state = 'unknown', response_problem = substr(result_message, 1, 255), "
               "response_result = NULL, result = NULL, result_message = NULL, result_at = NULL "
               f"WHERE {OUR_SEND_FAILURE}")
    op.execute("UPDATE roaming_commands SET state = 'unknown', "
               "response_problem = 'CommandResponse unreadable (recorded as FAILED before revision 13e5d0a7e007)', "
               f"result = NULL, result_at = NULL WHERE {OUR_UNREAD_ANSWER}")
    op.execute("UPDATE roaming_commands SET response_result = NULL WHERE response_result = 'SEND_FAILED'")
    # The rest, from what was recorded: first the states that do not depend on result.
    op.execute("UPDATE roaming_commands SET state = 'timeout' WHERE state IS NULL AND timed_out_at IS NOT NULL")
    op.execute("UPDATE roaming_commands SET state = 'pending' "
               "WHERE state IS NULL AND result IS NULL AND timeout_at IS NOT NULL")
    op.execute("UPDATE roaming_commands SET state = 'unknown', "
               "response_problem = 'no answer recorded (before revision 13e5d0a7e007)' "
               "WHERE state IS NULL AND result IS NULL")
    op.execute("UPDATE roaming_commands SET state = 'rejected' WHERE state IS NULL AND timeout_at IS NULL "
               "AND response_result IS NOT NULL AND response_result <> 'ACCEPTED' AND result = response_result")
    op.execute("UPDATE roaming_commands SET state = 'accepted' WHERE state IS NULL AND (result = 'ACCEPTED' "
               "OR (result = 'CANCELED_RESERVATION' AND command = 'CANCEL_RESERVATION'))")
    op.execute("UPDATE roaming_commands SET state = 'failed' WHERE state IS NULL")

    with op.batch_alter_table('roaming_commands', schema=None) as batch_op:
        batch_op.alter_column('state', existing_type=sa.Enum(*COMMAND_STATES, name='commandstate',
                                                             native_enum=False, length=20), nullable=False)
        batch_op.create_index(batch_op.f('ix_roaming_commands_state'), ['state'], unique=False)


def downgrade():
    # What the code before this revision recorded for a command it could not deliver.
    op.execute("UPDATE roaming_commands SET response_result = 'SEND_FAILED', result = 'FAILED', "
               "result_message = coalesce(response_problem, 'not delivered'), result_at = created_at "
               "WHERE state IN ('unknown', 'not_sent') AND result IS NULL")
    with op.batch_alter_table('roaming_commands', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roaming_commands_state'))
        batch_op.drop_column('response_problem')
        batch_op.drop_column('response_status_code')
        batch_op.drop_column('response_http_status')
        batch_op.drop_column('state')
