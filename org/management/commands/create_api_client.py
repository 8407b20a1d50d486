"""`manage.py create_api_client NAME [--read-only]`: a new API client; prints its key once."""

from django.core.management.base import BaseCommand, CommandError

from org.actors import SYSTEM
from org.services import api_client_create
from tagportal.errors import DomainError


class Command(BaseCommand):
    help = "Create an API client and print its key (shown this one time; only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--read-only", action="store_true", help="the key may only read")

    def handle(self, *args, **options):
        try:
            client, key = api_client_create(actor=SYSTEM, name=options["name"], read_only=options["read_only"])
        except DomainError as exc:
            raise CommandError(f"{options['name']}: {exc.message}") from exc
        scope = "read-only" if client.read_only else "read-write"
        self.stderr.write(f"API client '{client.name}' ({scope}) created. Its key, shown only now:")
        self.stdout.write(key)
