"""`manage.py import_taxonomy FILE`: merge a taxonomy (ours, or WeCom's get_corp_tag_list answer).

Validates the whole file first; on any error prints every problem and changes nothing.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from org.actors import SYSTEM
from tagportal.errors import DomainError
from tags.taxonomy_io import taxonomy_import


class Command(BaseCommand):
    help = "Import tag groups and tags from JSON (tagportal export or WeCom get_corp_tag_list output)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSON file ('-' for stdin)")

    def handle(self, *args, **options):
        import sys

        try:
            if options["file"] == "-":
                data = json.load(sys.stdin)
            else:
                with open(options["file"], encoding="utf-8") as fh:
                    data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}")
        try:
            result = taxonomy_import(actor=SYSTEM, data=data)
        except DomainError as exc:
            for problem in exc.details or []:
                self.stderr.write(f"  {problem}")
            raise CommandError(exc.message)
        self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))
