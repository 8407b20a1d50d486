"""Tagging's references checked per statement instead of per row (issue 13.7, bulk at 1M).

A foreign key checks each inserted row on its own (an index lookup and a row lock per reference:
200,000 checks, 0.6–0.9 s, for a 100,000-tagging bulk call). The same guarantees, set-based:

PostgreSQL
- after every INSERT or UPDATE on `customers_tagging`, one statement trigger share-locks
  (`FOR KEY SHARE`, what a foreign key takes) the distinct customers and tags the statement wrote
  and fails with `foreign_key_violation` (an IntegrityError) if one of them is missing; the lock
  keeps a concurrent delete waiting until this transaction ends;
- after every DELETE on `customers_customer` or `tags_tag`, one statement trigger fails if a
  tagging still points at a deleted row (a delete that waited for the lock above sees the new
  taggings: READ COMMITTED, the isolation the project runs at); changing their `id` fails the same way.
SQLite (the embedded demo, one writer at a time): row triggers refuse a tagging whose customer or
tag does not exist; deletes are Django's collector's (`on_delete=CASCADE`), as they were.

The single-column indexes on `customer_id` and `tag_id` go: `(customer_id, tag_id)` and the unique
`(tag_id, customer_id)` start with them.
"""

import django.db.models.deletion
from django.db import migrations, models

FK_VIOLATION = "USING ERRCODE = 'foreign_key_violation'"

PG_CREATE = [
    f"""
CREATE FUNCTION customers_tagging_refs_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    found bigint;
BEGIN
    SELECT count(DISTINCT customer_id) INTO wanted FROM new_taggings;
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM customers_customer c WHERE c.id IN (SELECT customer_id FROM new_taggings) FOR KEY SHARE OF c
    ) locked;
    IF found < wanted THEN
        RAISE EXCEPTION 'insert or update on table "customers_tagging" violates foreign key "tagging_customer": '
            'a customer does not exist' {FK_VIOLATION};
    END IF;
    SELECT count(DISTINCT tag_id) INTO wanted FROM new_taggings;
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM tags_tag t WHERE t.id IN (SELECT tag_id FROM new_taggings) FOR KEY SHARE OF t
    ) locked;
    IF found < wanted THEN
        RAISE EXCEPTION 'insert or update on table "customers_tagging" violates foreign key "tagging_tag": '
            'a tag does not exist' {FK_VIOLATION};
    END IF;
    RETURN NULL;
END $$""",
    f"""
CREATE FUNCTION customers_tagging_refs_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers_customer' THEN
        IF EXISTS (SELECT 1 FROM customers_tagging t WHERE t.customer_id IN (SELECT id FROM old_rows)) THEN
            RAISE EXCEPTION 'delete on table "customers_customer" violates foreign key "tagging_customer": '
                'taggings still point at it' {FK_VIOLATION};
        END IF;
    ELSIF EXISTS (SELECT 1 FROM customers_tagging t WHERE t.tag_id IN (SELECT id FROM old_rows)) THEN
        RAISE EXCEPTION 'delete on table "tags_tag" violates foreign key "tagging_tag": '
            'taggings still point at it' {FK_VIOLATION};
    END IF;
    RETURN NULL;
END $$""",
    f"""
CREATE FUNCTION customers_tagging_refs_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM customers_tagging t
               WHERE (TG_TABLE_NAME = 'customers_customer' AND t.customer_id = OLD.id)
                  OR (TG_TABLE_NAME = 'tags_tag' AND t.tag_id = OLD.id)) THEN
        RAISE EXCEPTION 'update of id on table "%" violates a tagging foreign key', TG_TABLE_NAME {FK_VIOLATION};
    END IF;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER tagging_refs_insert AFTER INSERT ON customers_tagging REFERENCING NEW TABLE AS new_taggings "
    "FOR EACH STATEMENT EXECUTE FUNCTION customers_tagging_refs_check()",
    "CREATE TRIGGER tagging_refs_update AFTER UPDATE ON customers_tagging REFERENCING NEW TABLE AS new_taggings "
    "FOR EACH STATEMENT EXECUTE FUNCTION customers_tagging_refs_check()",
    "CREATE TRIGGER tagging_refs_customer_delete AFTER DELETE ON customers_customer REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION customers_tagging_refs_gone()",
    "CREATE TRIGGER tagging_refs_tag_delete AFTER DELETE ON tags_tag REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION customers_tagging_refs_gone()",
    "CREATE TRIGGER tagging_refs_customer_id AFTER UPDATE OF id ON customers_customer "
    "FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION customers_tagging_refs_moved()",
    "CREATE TRIGGER tagging_refs_tag_id AFTER UPDATE OF id ON tags_tag "
    "FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION customers_tagging_refs_moved()",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS tagging_refs_insert ON customers_tagging",
    "DROP TRIGGER IF EXISTS tagging_refs_update ON customers_tagging",
    "DROP TRIGGER IF EXISTS tagging_refs_customer_delete ON customers_customer",
    "DROP TRIGGER IF EXISTS tagging_refs_tag_delete ON tags_tag",
    "DROP TRIGGER IF EXISTS tagging_refs_customer_id ON customers_customer",
    "DROP TRIGGER IF EXISTS tagging_refs_tag_id ON tags_tag",
    "DROP FUNCTION IF EXISTS customers_tagging_refs_check()",
    "DROP FUNCTION IF EXISTS customers_tagging_refs_gone()",
    "DROP FUNCTION IF EXISTS customers_tagging_refs_moved()",
]
SQLITE_CHECK = (
    "WHEN NOT EXISTS (SELECT 1 FROM customers_customer WHERE id = NEW.customer_id) "
    "OR NOT EXISTS (SELECT 1 FROM tags_tag WHERE id = NEW.tag_id) "
    "BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: customers_tagging'); END"
)
SQLITE_CREATE = [
    f"CREATE TRIGGER tagging_refs_insert BEFORE INSERT ON customers_tagging FOR EACH ROW {SQLITE_CHECK}",
    f"CREATE TRIGGER tagging_refs_update BEFORE UPDATE ON customers_tagging FOR EACH ROW {SQLITE_CHECK}",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS tagging_refs_insert",
    "DROP TRIGGER IF EXISTS tagging_refs_update",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(f"no tagging reference checks for {schema_editor.connection.vendor}")
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0011_follow_added_ended_indexes'),
        ('tags', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='tagging',
            name='customer',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='taggings', to='customers.customer'),
        ),
        migrations.AlterField(
            model_name='tagging',
            name='tag',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='taggings', to='tags.tag'),
        ),
        migrations.RunPython(
            _run({"postgresql": PG_CREATE, "sqlite": SQLITE_CREATE}),
            _run({"postgresql": PG_DROP, "sqlite": SQLITE_DROP}),
        ),
    ]
