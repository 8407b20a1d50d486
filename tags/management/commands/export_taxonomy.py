"""`manage.py export_taxonomy [FILE]`: the whole taxonomy as JSON (stdout without FILE)."""

import json

from django.core.management.base import BaseCommand

from tags.taxonomy_io import taxonomy_export


class Command(BaseCommand):
    help = "Export tag groups, tags and scopes (by department external_id) as JSON."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="output file (default: stdout)")

    def handle(self, *args, **options):
        text = json.dumps(taxonomy_export(), ensure_ascii=False, indent=2)
        if options["file"]:
            with open(options["file"], "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            self.stderr.write(f"written {options['file']}")
        else:
            self.stdout.write(text)
