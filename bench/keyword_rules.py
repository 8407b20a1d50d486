#!/usr/bin/env python
"""Benchmark: keyword rules (智能标签) on PostgreSQL — 500 rules with 10,000 keywords in all,
1,000,000 messages over 100,000 customers.

    .venv/bin/python bench/keyword_rules.py [--db tp_bench_rules] [--redis redis://127.0.0.1:6379/4]
        [--rules 500] [--keywords 10000] [--customers 100000] [--messages 1000000] [--call 10000]
        [--naive-sample 10000] [--hit-share 0.08] [--port 0] [--skip-e2e]

It (re)creates `--db` (dropdb/createdb + migrate; nothing else is touched), then seeds set-based:
`--customers` customers each followed by one of 20 employees, 100 tags in 10 groups (10 % of the
customers hold 已成交), and `--rules` live rules with `--keywords` keywords in all (random 3–4
character Chinese words), two exclude keywords each, and 已成交 as exclude tag for one rule in five.
The `--messages` messages (10–40 characters of Chinese text, `--hit-share` of them with a keyword of
some rule planted, 80 % from the customer) are generated in memory. Then, in one run:

1. **Matching alone**, in this process, on the same texts: the matcher the worker uses
   (`rules.matcher.Matcher`: one pyahocorasick automaton over every rule's keywords, text folded
   NFKC + casefold) on all messages, against the naive loop — for every message and every rule,
   `any(k in text for k in rule.keywords)` over the same folded keywords — on the first
   `--naive-sample` messages (the naive way would take many minutes on all of them). Both must find
   the same (message, rule) pairs on the sample; rates and the ratio are printed.
2. **End to end** with the real worker: a `gunicorn` server (1 process, DEBUG off) and a
   `celery -A tagportal worker --pool=solo` (one process) on the database and Redis; the messages are
   posted to `POST /api/v1/messages/` in calls of `--call` (10,000) one after another; the worker
   matches each call's messages after its commit (queue → automaton → hits, once-only records, tags
   through the tagging service with the rule as actor, counters). Timed from the first POST until the
   queue is empty; the ingest alone is printed too, and what was written.
3. **The worker alone** on the same work: what matching wrote is undone, every message is queued
   again and the worker drains the queue (match, tags through the service, audit, hit log, counters);
   timed, and the CPU seconds of the worker process and of its PostgreSQL backend are read from /proc
   (messages per CPU-second: the rate the worker reaches with a core of its own, on a busy box).

Every figure is printed with the machine's load average (1 min) when it was taken.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PG, cpu_seconds, load, run, wait_http  # noqa: E402 - bench/ first on sys.path

# ~1,500 common characters: texts are random Chinese, keywords are 2–4 of them.
CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而"
    "方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好"
    "应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向"
    "道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特"
    "件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队"
    "南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清美再采转更单风切"
    "打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步"
    "群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习"
    "响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层"
    "片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严龙飞"
)


def setup(db: str, redis_url: str) -> dict:
    run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", db])
    run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db])
    env = dict(os.environ)
    # Production settings on loopback: DEBUG off, no TLS in front (HTTPS off), a throwaway key.
    env.update(DATABASE_URL=f"{PG}/{db}", CELERY_BROKER_URL=redis_url, CELERY_TASK_ALWAYS_EAGER="false",
               DJANGO_SETTINGS_MODULE="tagportal.settings", DEBUG="false", LOG_LEVEL="WARNING", HTTPS="false",
               ALLOWED_HOSTS="127.0.0.1,localhost", SECRET_KEY=env.get("SECRET_KEY") or secrets.token_urlsafe(50))
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def word(rng: random.Random) -> str:
    """A keyword: 3–4 characters (random 2-character words over this alphabet would occur in almost every
    random message; real keywords do not)."""
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(3, 4)))


def seed(args, rng: random.Random):
    """Customers, followers, tags and rules, set-based; returns (rules, customers' external ids, key)."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from customers.models import Customer, FollowRelation, Tagging
    from org.models import ApiClient, Employee
    from rules.models import KeywordRule
    from tags.models import Tag, TagGroup

    started = time.monotonic()
    with transaction.atomic():
        password = make_password(None)
        employees = Employee.objects.bulk_create(
            [Employee(userid=f"sales{i:02d}", name=f"销售{i}", password=password) for i in range(20)])
        groups = [TagGroup.objects.create(name=f"兴趣{g}") for g in range(10)]  # mptt: one by one
        tags = Tag.objects.bulk_create([Tag(group=groups[i // 10], name=f"关注{i}", order=i % 10) for i in range(100)])
        won = Tag.objects.create(group=TagGroup.objects.create(name="阶段"), name="已成交")
        externals = [f"wmbench{i:07d}" for i in range(args.customers)]
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY {Customer._meta.db_table} (external_userid, name, corp_name, type, gender, "
                             "avatar, crm_fields, created_at, updated_at) FROM STDIN") as copy:
                for i, external in enumerate(externals):
                    copy.write_row((external, f"客户{i}", "", 1, 0, "", "{}", "2026-01-01", "2026-01-01"))
            cursor.execute(f"SELECT id FROM {Customer._meta.db_table} ORDER BY id")
            customer_ids = [r[0] for r in cursor.fetchall()]
            with cursor.copy(f"COPY {FollowRelation._meta.db_table} (customer_id, employee_id, remark, description, "
                             "added_at, add_way, state, status) FROM STDIN") as copy:
                for i, cid in enumerate(customer_ids):
                    copy.write_row((cid, employees[i % 20].pk, "", "", "2026-01-01", 0, "", "active"))
            with cursor.copy(f"COPY {Tagging._meta.db_table} (customer_id, tag_id, created_at) FROM STDIN") as copy:
                for cid in customer_ids[::10]:
                    copy.write_row((cid, won.pk, "2026-01-01"))
        per_rule = args.keywords // args.rules
        seen: set[str] = set()
        rules = []
        for r in range(args.rules):
            keywords = []
            while len(keywords) < per_rule:
                w = word(rng)
                if w not in seen:
                    seen.add(w)
                    keywords.append(w)
            rule = KeywordRule.objects.create(name=f"规则{r}", keywords=keywords,
                                              exclude_keywords=[word(rng), word(rng)], directions=["in"],
                                              status="live")
            rule.tags.set([tags[r % 100]])
            if r % 5 == 0:
                rule.exclude_tags.set([won])
            rules.append(rule)
        client = ApiClient(name="bench-rules")
        key = client.set_new_key()
        client.save()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"  seeded {args.customers:,} customers, 100 tags, {args.rules} rules with "
          f"{sum(len(r.keywords) for r in rules):,} keywords in {time.monotonic() - started:.1f} s")
    return rules, externals, key


def messages(args, rng: random.Random, rules, externals) -> list[dict]:
    """The messages: random text, `--hit-share` with a planted keyword; 80 % inbound; ten per customer
    in time order (each customer's first message in the first call, and so on)."""
    per_customer = max(args.messages // len(externals), 1)
    out = []
    base = time.time() - 30 * 86400
    for k in range(per_customer):
        for i, external in enumerate(externals):
            n = len(out)
            text = "".join(rng.choice(CHARS) for _ in range(rng.randint(10, 40)))
            if rng.random() < args.hit_share:
                keyword = rng.choice(rules[rng.randrange(len(rules))].keywords)
                at = rng.randrange(len(text))
                text = text[:at] + keyword + text[at:]
            sent = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.localtime(base + k * 86400 * 2.5 + i * 0.02))
            out.append({"msgid": f"bench-{n:08d}", "external_userid": external, "employee": f"sales{i % 20:02d}",
                        "direction": "in" if rng.random() < 0.8 else "out", "content": text, "sent_at": sent})
            if len(out) >= args.messages:
                return out
    return out


def bench_matching(args, rules, items) -> None:
    from rules.matcher import Matcher, fold, rule_spec

    specs = [rule_spec(r) for r in rules]
    started = time.monotonic()
    matcher = Matcher(specs)
    built = time.monotonic() - started
    texts = [m["content"] for m in items]
    print(f"\n[1] matching alone: {len(specs)} rules, {matcher.size:,} automaton keys (keywords + exclude "
          f"keywords), built in {built:.2f} s; {load()}")

    started = time.monotonic()
    ac_pairs = 0
    for text in texts:
        ac_pairs += sum(1 for m in matcher.match(text).values() if m.keywords)
    ac_time = time.monotonic() - started
    ac_rate = len(texts) / ac_time
    print(f"  Aho-Corasick (pyahocorasick, fold + one automaton): {len(texts):,} messages in {ac_time:.2f} s = "
          f"{ac_rate:,.0f} messages/s; {ac_pairs:,} (message, rule) matches; {load()}")

    sample = texts[: args.naive_sample]
    folded_rules = [(s.id, [fold(k) for k in s.keywords]) for s in specs]
    started = time.monotonic()
    naive_pairs = set()
    for index, text in enumerate(sample):
        folded = fold(text)
        for rule_id, keywords in folded_rules:
            if any(k in folded for k in keywords):
                naive_pairs.add((index, rule_id))
    naive_time = time.monotonic() - started
    naive_rate = len(sample) / naive_time
    ac_sample = {(i, rule_id) for i, text in enumerate(sample)
                 for rule_id, m in matcher.match(text).items() if m.keywords}
    assert ac_sample == naive_pairs, "the two ways disagree"
    print(f"  naive any(k in text for k in keywords) per rule: {len(sample):,} messages in {naive_time:.2f} s = "
          f"{naive_rate:,.0f} messages/s; same {len(naive_pairs):,} matches on them; {load()}")
    print(f"  => Aho-Corasick is {ac_rate / naive_rate:.0f}x the naive loop (target >= 40x)")


def backend_cpu() -> dict[int, float]:
    """CPU seconds so far of every other PostgreSQL backend on this database (the worker's, here)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")
        pids = [r[0] for r in cursor.fetchall()]
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = cpu_seconds(pid)
    return out


def post(url: str, body: bytes, key: str) -> dict:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def bench_end_to_end(args, env: dict, key: str, items: list[dict]) -> None:
    import redis
    from _common import start_worker
    from django.db import connection
    from django.db.models import Count

    from customers.models import Message, TagEvent, Tagging, TagSource
    from rules.models import KeywordRule, PendingMessage, RuleHit, RuleTagged
    from rules.tasks import match_messages

    def report() -> None:
        connection.close()
        hits = RuleHit.objects.count()
        outcomes = dict(RuleHit.objects.order_by().values_list("outcome").annotate(n=Count("id")))
        tagged = RuleTagged.objects.count()
        events = TagEvent.objects.filter(source=TagSource.RULE).count()
        counted = sum(KeywordRule.objects.values_list("hit_count", flat=True))
        print(f"  written: {Message.objects.count():,} messages, {hits:,} hits {outcomes}, {tagged:,} customers "
              f"tagged, {events:,} audit rows (source rule); rule counters sum {counted:,}")

    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    port = args.port
    if not port:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tagportal.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(args.clients),
         "--timeout", "600"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    from django.conf import settings

    queues = ",".join(getattr(settings, "TAGPORTAL_CELERY_QUEUES", ("celery",)))  # matching has its own queue
    worker = start_worker(env, name="bench-rules", log=ROOT / "bench-keyword-rules-worker.log", queues=queues)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/v1/keyword-rules/")
        bodies = [json.dumps({"messages": items[i: i + args.call]}, ensure_ascii=False).encode()
                  for i in range(0, len(items), args.call)]
        print(f"\n[2] end to end: {len(items):,} messages in {len(bodies)} calls of {args.call:,} "
              f"({len(bodies[0]) / 1e6:.1f} MB each) to gunicorn ({args.clients} process(es)) → worker (solo, "
              f"1 process); {load()}")
        ingest_times: list[float] = []
        started = time.monotonic()

        def call(body: bytes) -> int:
            t = time.monotonic()
            n = post(f"{base}/api/v1/messages/", body, key)["created"]
            ingest_times.append(time.monotonic() - t)
            return n

        with ThreadPoolExecutor(args.clients) as pool:
            created = sum(pool.map(call, bodies))
        posted = time.monotonic() - started
        print(f"  ingest over HTTP ({args.clients} client(s) at a time): {created:,} messages stored, the calls done "
              f"after {posted:.1f} s ({created / posted:,.0f} messages/s; median call "
              f"{sorted(ingest_times)[len(ingest_times) // 2]:.2f} s); {load()}")
        while PendingMessage.objects.exists():
            time.sleep(0.05)
        total = time.monotonic() - started
        print(f"  matched everything {total - posted:.1f} s after the last call returned")
        print(f"  => end to end: {len(items):,} messages in {total:.1f} s = {len(items) / total:,.0f} messages/s "
              f"with one worker (target >= 10,000); {load()}")
        report()

        # The worker alone on the same work: undo what matching wrote, queue every message again, time
        # the drain (match, tag through the service, audit, hit log, counters).
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {Tagging._meta.db_table} t USING {TagEvent._meta.db_table} e "
                           "WHERE e.source = 'rule' AND e.customer_id = t.customer_id AND e.tag_id = t.tag_id")
            for model in (TagEvent, RuleHit, RuleTagged):
                extra = " WHERE source = 'rule'" if model is TagEvent else ""
                cursor.execute(f"DELETE FROM {model._meta.db_table}{extra}")
            cursor.execute(f"UPDATE {KeywordRule._meta.db_table} SET hit_count = 0, tagged_count = 0")
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {PendingMessage._meta.db_table} (message_id) "
                           f"SELECT id FROM {Message._meta.db_table} WHERE direction = 'in' OR direction = 'out'")
        connection.close()
        worker_cpu, backends_cpu = cpu_seconds(worker.pid), backend_cpu()
        started = time.monotonic()
        match_messages.delay()
        seen: dict[int, float] = {}  # backends come and go (a task closes its connection): sample as we wait
        while PendingMessage.objects.exists():
            seen.update(backend_cpu())
            time.sleep(0.1)
        drained = time.monotonic() - started
        worker_used = cpu_seconds(worker.pid) - worker_cpu
        seen.update(backend_cpu())
        backend_used = sum(cpu - backends_cpu.get(pid, 0.0) for pid, cpu in seen.items())
        print(f"\n[3] the worker alone: {len(items):,} queued messages matched, tagged and logged in {drained:.1f} s "
              f"= {len(items) / drained:,.0f} messages/s (one worker, solo pool); {load()}")
        print(f"  CPU used: worker {worker_used:.1f} s + its database backend {backend_used:.1f} s = "
              f"{len(items) / (worker_used + backend_used):,.0f} messages per CPU-second (the rate with a core of "
              f"its own; the two take turns)")
        report()
    finally:
        for proc in (server, worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="tp_bench_rules")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--keywords", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--call", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=2, help="calls in flight at once (= gunicorn workers)")
    parser.add_argument("--naive-sample", type=int, default=10_000)
    parser.add_argument("--hit-share", type=float, default=0.08)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    print(f"keyword rules benchmark: {args.rules} rules, {args.keywords:,} keywords, {args.messages:,} messages, "
          f"{args.customers:,} customers; {load()}")
    env = setup(args.db, args.redis)
    rng = random.Random(args.seed)
    rules, externals, key = seed(args, rng)
    started = time.monotonic()
    items = messages(args, rng, rules, externals)
    print(f"  generated {len(items):,} messages in {time.monotonic() - started:.1f} s")
    bench_matching(args, rules, items)
    if not args.skip_e2e:
        bench_end_to_end(args, env, key, items)


if __name__ == "__main__":
    main()
