"""The tagging reference check (0012) probes the customers and tags by primary key.

`id IN (SELECT ... FROM new_taggings)` let the planner pick a merge join that walks the customer
primary key from its first entry up to the highest id inserted (up to 1,000,000 index entries for
a few thousand customers, ~0.2–0.5 s per statement at 1M); `id = ANY(ARRAY(SELECT DISTINCT ...))`
is one index probe per distinct customer or tag, whatever the plan cache decides. The distinct ids
are collected once per column, and their number is the array's length.
"""

from django.db import migrations

FK_VIOLATION = "USING ERRCODE = 'foreign_key_violation'"

CHECK_BY_ARRAY = f"""
CREATE OR REPLACE FUNCTION customers_tagging_refs_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    found bigint;
BEGIN
    ids := ARRAY(SELECT DISTINCT customer_id FROM new_taggings);
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM customers_customer c WHERE c.id = ANY(ids) FOR KEY SHARE OF c
    ) locked;
    IF found < cardinality(ids) THEN
        RAISE EXCEPTION 'insert or update on table "customers_tagging" violates foreign key "tagging_customer": '
            'a customer does not exist' {FK_VIOLATION};
    END IF;
    ids := ARRAY(SELECT DISTINCT tag_id FROM new_taggings);
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM tags_tag t WHERE t.id = ANY(ids) FOR KEY SHARE OF t
    ) locked;
    IF found < cardinality(ids) THEN
        RAISE EXCEPTION 'insert or update on table "customers_tagging" violates foreign key "tagging_tag": '
            'a tag does not exist' {FK_VIOLATION};
    END IF;
    RETURN NULL;
END $$"""

CHECK_BY_IN = f"""
CREATE OR REPLACE FUNCTION customers_tagging_refs_check() RETURNS trigger LANGUAGE plpgsql AS $$
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
END $$"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0012_tagging_refs_per_statement"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(CHECK_BY_ARRAY), _on_postgresql(CHECK_BY_IN)),
    ]
