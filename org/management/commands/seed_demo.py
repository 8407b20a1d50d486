"""`manage.py seed_demo [--customers N]`: a believable company to try the portal on.

Each app seeds its own part: `org.demo` here, then the parts the other apps register in
`tagportal.demo` from their `ready()` (tags, customers, then the apps above), in dependency order.
Safe to run twice: parts that exist are left alone.
"""

from django.core.management.base import BaseCommand

import org.demo
from tagportal.demo import demo_parts


class Command(BaseCommand):
    help = "Load demo data: departments, employees with each role, the tag taxonomy, customers."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=300, help="how many customers (default 300)")
        parser.add_argument("--seed", type=int, default=42, help="random seed, for repeatable data")

    def handle(self, *args, **options):
        org.demo.seed(stdout=self.stdout, **options)
        for seed in demo_parts():  # tags (10), customers (20), then the apps above them
            seed(stdout=self.stdout, **options)
        org.demo.print_logins(self.stdout)
