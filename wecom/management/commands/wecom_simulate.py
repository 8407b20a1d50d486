"""`manage.py wecom_simulate`: a WeCom stand-in for demos, and events sent to a running portal.

    manage.py wecom_simulate serve [--port 8091] [--callback http://127.0.0.1:8000/wecom/callback/]
    manage.py wecom_simulate add-customer --employee zhangwei --state expo2026 [--name 王女士]
    manage.py wecom_simulate edit-customer --employee zhangwei --external-userid wm... --remark 新备注
    manage.py wecom_simulate del-customer --employee zhangwei --external-userid wm...   # employee deleted
    manage.py wecom_simulate lose-customer --employee zhangwei --external-userid wm...  # customer deleted
    manage.py wecom_simulate tag-change --id et... [--tag-type tag] [--change-type update]
    manage.py wecom_simulate state

`serve` loads the portal's departments, active employees and WeCom-mapped tags into the
simulated corp and prints the settings that connect the portal to it. The other actions ask the
running simulator (`--simulator`) to change its corp and send the encrypted event to the portal.
"""

from __future__ import annotations

import json
import time

import httpx
from django.core.management.base import BaseCommand, CommandError

DEFAULT_SIMULATOR = "http://127.0.0.1:8091"
DEFAULT_CALLBACK = "http://127.0.0.1:8000/wecom/callback/"
ACTIONS = ("add-customer", "edit-customer", "del-customer", "lose-customer", "tag-change")


class Command(BaseCommand):
    help = "Serve a simulated WeCom corp, or make it send events (a customer adds an employee ...) to a portal."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        serve = sub.add_parser("serve", help="serve the simulated WeCom API (Ctrl-C stops it)")
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=int, default=8091)
        serve.add_argument("--callback", default=DEFAULT_CALLBACK, help="the portal's /wecom/callback/ URL")
        serve.add_argument("--empty", action="store_true", help="do not load employees and tags from the portal")

        for action in ACTIONS:
            p = sub.add_parser(action)
            p.add_argument("--simulator", default=DEFAULT_SIMULATOR, help="the running simulator's URL")
            p.add_argument("--callback", default="", help="the portal's callback URL (default: the simulator's)")
            if action == "tag-change":
                p.add_argument("--id", required=True, help="WeCom tag or tag group id")
                p.add_argument("--tag-type", default="tag", choices=["tag", "tag_group"])
                p.add_argument("--change-type", default="update", choices=["create", "update", "delete", "shuffle"])
                continue
            p.add_argument("--employee", required=True, help="the employee's userid")
            p.add_argument("--external-userid", default="", required=action != "add-customer")
            if action in ("add-customer", "edit-customer"):
                p.add_argument("--remark", default=None)
                p.add_argument("--description", default=None)
                p.add_argument("--tags", default=None, help="WeCom tag ids, comma-separated")
            if action == "add-customer":
                p.add_argument("--state", default="", help="the channel code's state (渠道活码)")
                p.add_argument("--name", default="")
                p.add_argument("--no-welcome", action="store_true", help="send no WelcomeCode")

        sub.add_parser("state", help="print the running simulator's corp").add_argument(
            "--simulator", default=DEFAULT_SIMULATOR)

    def handle(self, *args, action: str, **options):
        if action == "serve":
            return self.serve(**options)
        if action == "state":
            return self.show_state(options["simulator"])
        body = {"callback": options.get("callback") or ""}
        if action == "tag-change":
            body.update(id=options["id"], tag_type=options["tag_type"], change_type=options["change_type"])
        else:
            body.update(employee=options["employee"], external_userid=options["external_userid"])
            for key in ("remark", "description", "state", "name"):
                if options.get(key) is not None:
                    body[key] = options[key]
            if options.get("tags") is not None:
                body["tags"] = [t.strip() for t in options["tags"].split(",") if t.strip()]
            if options.get("no_welcome"):
                body["welcome"] = False
        try:
            response = httpx.post(f"{options['simulator'].rstrip('/')}/sim/{action}", json=body, timeout=60)
        except httpx.HTTPError as exc:
            raise CommandError(f"the simulator at {options['simulator']} does not answer ({type(exc).__name__}); "
                               "start it with `manage.py wecom_simulate serve`") from None
        data = response.json()
        if response.status_code != 200:
            raise CommandError(data.get("error", response.text))
        self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2))
        if data.get("portal_status") != 200:
            raise CommandError(f"the portal answered {data.get('portal_status')}: {data.get('portal_answer')}")

    def show_state(self, simulator: str) -> None:
        try:
            response = httpx.get(f"{simulator.rstrip('/')}/sim/state", timeout=10)
        except httpx.HTTPError as exc:
            raise CommandError(f"the simulator at {simulator} does not answer ({type(exc).__name__})") from None
        self.stdout.write(json.dumps(response.json(), ensure_ascii=False, indent=2))

    def serve(self, *, host: str, port: int, callback: str, empty: bool, **_options) -> None:
        from wecom.simulator import WeComSimulator
        from wecom.simulator.load import load_portal

        sim = WeComSimulator(host=host, port=port)
        sim.callback_url = callback
        if not empty:
            counts = load_portal(sim)
            self.stdout.write(f"Loaded from the portal: {counts['departments']} departments, {counts['users']} "
                              f"employees, {counts['tags']} WeCom-mapped tags.")
        sim.start()
        self.stdout.write(f"Simulated WeCom corp on {sim.api_base}/ ; events go to {callback}")
        self.stdout.write("Run the portal and its worker with these settings (or put them in .env):\n")
        for name, value in sim.settings().items():
            self.stdout.write(f"export {name}={value}")
        where = "" if sim.url == DEFAULT_SIMULATOR else f" --simulator {sim.url}"
        self.stdout.write("\nThen, in another terminal: python manage.py wecom_simulate add-customer "
                          f"--employee zhangwei --state expo_bj --name 王女士{where}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sim.stop()
            self.stdout.write("stopped")
