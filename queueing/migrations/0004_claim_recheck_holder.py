from django.db import migrations

# Called by the enqueue statement (queueing.services._ENQUEUE_SQL) once its INSERT went in.
# VOLATILE matters: under READ COMMITTED each query of a volatile function takes a fresh
# snapshot, so this sees a ticket committed while the calling statement ran (its own snapshot
# is older). Raising rolls the whole statement back, the new entry included.
FUNCTION_SQL = """
CREATE FUNCTION ticket_queue_refuse_holder(p_event_id bigint, p_user_id bigint) RETURNS boolean AS $$
BEGIN
    PERFORM 1 FROM tickets_ticket
    WHERE event_id = p_event_id AND user_id = p_user_id AND status = 'active';
    IF FOUND THEN
        RAISE EXCEPTION 'student % holds an active ticket of event %', p_user_id, p_event_id
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'ticket_queue_no_claim_for_holder';
    END IF;
    RETURN true;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

REVERSE_SQL = "DROP FUNCTION IF EXISTS ticket_queue_refuse_holder(bigint, bigint);"


class Migration(migrations.Migration):
    dependencies = [
        ("queueing", "0003_sort_key"),
        ("tickets", "0001_initial"),
    ]

    operations = [migrations.RunSQL(FUNCTION_SQL, REVERSE_SQL)]
