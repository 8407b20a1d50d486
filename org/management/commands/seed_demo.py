"""`manage.py seed_demo [--customers N]`: a believable company to try the portal on.

Each app seeds its own part (`org.demo`, `tags.demo`, `customers.demo`), in dependency order,
then the parts the apps above register in `tagportal.demo`.
Safe to run twice: parts that exist are left alone.
"""

from django.core.management.base import BaseCommand

import customers.demo
import org.demo
import tags.demo
from tagportal.demo import demo_parts


class Command(BaseCommand):
    help = "Load demo data: departments, employees with each role, the tag taxonomy, customers."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=300, help="how many customers (default 300)")
        parser.add_argument("--seed", type=int, default=42, help="random seed, for repeatable data")

    def handle(self, *args, **options):
        for part in (org.demo, tags.demo, customers.demo):
            part.seed(stdout=self.stdout, **options)
        for seed in demo_parts():
            seed(stdout=self.stdout, **options)
        org.demo.print_logins(self.stdout)
