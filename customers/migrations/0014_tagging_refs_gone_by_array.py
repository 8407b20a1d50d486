"""The delete side of the tagging reference checks (0012) probes taggings by the deleted ids, too.

`customer_id IN (SELECT id FROM old_rows)` may be planned as a join that reads the whole tagging
index; `= ANY(ARRAY(SELECT id FROM old_rows))` is one index probe per deleted customer or tag,
whatever plan the function's plan cache keeps (as 0013 did for the insert side).
"""

from django.db import migrations

FK_VIOLATION = "USING ERRCODE = 'foreign_key_violation'"


def _gone(in_clause: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION customers_tagging_refs_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers_customer' THEN
        IF EXISTS (SELECT 1 FROM customers_tagging t WHERE t.customer_id {in_clause}) THEN
            RAISE EXCEPTION 'delete on table "customers_customer" violates foreign key "tagging_customer": '
                'taggings still point at it' {FK_VIOLATION};
        END IF;
    ELSIF EXISTS (SELECT 1 FROM customers_tagging t WHERE t.tag_id {in_clause}) THEN
        RAISE EXCEPTION 'delete on table "tags_tag" violates foreign key "tagging_tag": '
            'taggings still point at it' {FK_VIOLATION};
    END IF;
    RETURN NULL;
END $$"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0013_tagging_refs_check_by_array"),
    ]

    operations = [
        migrations.RunPython(
            _on_postgresql(_gone("= ANY(ARRAY(SELECT id FROM old_rows))")),
            _on_postgresql(_gone("IN (SELECT id FROM old_rows)")),
        ),
    ]
