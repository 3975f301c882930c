"""The `camroll` command line: thin doors onto the same services the API uses."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="camroll: self-hosted cloud processing for phone camera rolls.", no_args_is_help=True
)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the consent ledger.", no_args_is_help=True)
receipt_app = typer.Typer(help="Deletion receipts.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(receipt_app, name="receipt")
console = Console()
err = Console(stderr=True)

DEFAULT_ROLL = Path(__file__).resolve().parents[2] / "shared" / "data" / "camera-roll"


@app.callback()
def _private_files() -> None:
    # Before any command touches a file: databases, keys and blobs are the owner's alone.
    from camroll.storage.workfiles import UMASK

    os.umask(UMASK)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Run the embedded job worker.")] = True,
) -> None:
    """Run the API, the web app and (by default) an embedded worker."""
    import uvicorn

    from camroll.app import create_app
    from camroll.storage.workfiles import prepare_process

    prepare_process()
    _check_node()
    uvicorn.run(create_app(embedded_worker=worker), host=host, port=port, log_level="info")


@app.command("worker")
def worker_cmd(
    workers: Annotated[int, typer.Option(help="Worker threads.")] = 0,
) -> None:
    """Run a job worker only, for scale-out (use CAMROLL_QUEUE_URL=redis://...)."""
    from camroll.config import get_settings
    from camroll.jobs.consumer import run_worker
    from camroll.storage.workfiles import prepare_process

    prepare_process()
    _check_node()
    run_worker(workers or get_settings().workers)


def _check_node() -> None:
    """A node that could not read what the others wrote refuses to start, saying why."""
    from camroll.crypto.keys import MasterKeyMismatch
    from camroll.db.engine import session_scope
    from camroll.keyring import check_master_key
    from camroll.startup import prepare_database

    prepare_database()
    try:
        with session_scope() as s:
            check_master_key(s)
    except MasterKeyMismatch as e:
        _fail(str(e))


@user_app.command("add")
def user_add(
    email: str,
    password: Annotated[
        bool, typer.Option("--password", help="Prompt for a web login password.")
    ] = False,
) -> None:
    """Create a user. They start with every consent scope off."""
    from camroll.accounts import AccountError, create_user, set_password
    from camroll.db.engine import session_scope
    from camroll.startup import prepare_database

    prepare_database()
    pw = typer.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    try:
        with session_scope() as s:
            user = create_user(s, email)
            if pw:
                set_password(user, pw)
            console.print(f"created user [bold]{user.email}[/] ({user.id})")
    except AccountError as e:
        _fail(str(e))


@token_app.command("create")
def token_create(
    email: str, name: Annotated[str, typer.Option(help="A label for this token.")] = "cli"
) -> None:
    """Create an API token. It is printed once; only its hash is stored."""
    from camroll.accounts import AccountError, create_token, find_user
    from camroll.db.engine import session_scope
    from camroll.startup import prepare_database

    prepare_database()
    try:
        with session_scope() as s:
            user = find_user(s, email)
            if user is None:
                _fail(f"no user {email}; create one with `camroll user add {email}`")
            print(create_token(s, user, name))  # plain print: scripts capture it
    except AccountError as e:
        _fail(str(e))


def _state_file(server: str, root: Path) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "camroll"
    digest = hashlib.sha256(f"{server}\n{root.resolve()}".encode()).hexdigest()[:16]
    return base / f"sync-{digest}.json"


def _run_sync(
    directory: Path, server: str, token: str, wait: bool, as_json: bool, quiet: bool = False
) -> dict:
    from camroll.client.sync import ConsentMissing, Syncer
    from camroll.client.tus import RefusedError

    syncer = Syncer(
        server, token, _state_file(server, directory), console_progress=not as_json and not quiet
    )
    try:
        report = syncer.sync(directory)
    except ConsentMissing as e:
        _fail(str(e), code=3)
    except RefusedError as e:
        _fail(str(e))
    result = report.to_json()
    if wait:
        if not as_json and not quiet:
            with console.status("Waiting for the server to process what was sent...") as status:
                counts = syncer.wait(
                    on_tick=lambda c: status.update(
                        f"Processing: {c['pending']} pending, {c['running']} running, "
                        f"{c['done']} done, {c['failed']} failed"
                    )
                )
        else:
            counts = syncer.wait()
        result["jobs"] = counts
        quarantined = syncer.quarantined()
        result["quarantined"] = [{"path": q.path, "reason": q.reason} for q in quarantined]
        result["counts"]["quarantined"] = len(quarantined)
    return result


@app.command()
def sync(
    directory: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="Camera roll folder.")
    ],
    server: Annotated[
        str, typer.Option(envvar="CAMROLL_SERVER", help="Server URL.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[str, typer.Option(envvar="CAMROLL_TOKEN", help="API token.")] = "",
    watch: Annotated[
        bool, typer.Option(help="Keep running and upload new files as they appear.")
    ] = False,
    wait: Annotated[
        bool, typer.Option(help="Wait until the server has processed what was sent.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between scans with --watch.")] = 5.0,
) -> None:
    """Upload a camera roll: only files the server lacks, resumably."""
    if not token:
        _fail(
            "a token is needed: --token T or CAMROLL_TOKEN "
            "(make one with `camroll token create EMAIL`)"
        )
    while True:
        result = _run_sync(directory, server, token, wait, as_json)
        _print_sync(result, as_json)
        if not watch:
            raise typer.Exit(1 if result["failed"] else 0)
        time.sleep(interval)


def _print_sync(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    c = result["counts"]
    console.print(
        f"[green]{c['uploaded']} uploaded[/], {c['skipped']} already there, "
        f"[red]{c['failed']} failed[/]"
        + (f", [yellow]{c['quarantined']} quarantined[/]" if "jobs" in result else "")
    )
    for f in result["failed"]:
        console.print(f"  [red]failed[/] {f['path']}: {f['reason']}")


@app.command()
def inspect(
    files: Annotated[list[Path], typer.Argument(help="Files to read.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    analyze: Annotated[
        bool, typer.Option("--analyze", help="Also run the analysers: faces, tags, place, quality.")
    ] = False,
) -> None:
    """Read metadata (and with --analyze, analyse) with no server, as the pipeline does."""
    if analyze:
        from camroll.analyze.inspect import inspect_and_analyze

        results = inspect_and_analyze(files)
    else:
        from camroll.media.inspect import inspect_paths

        results = inspect_paths(files)
    if as_json:
        print(json.dumps(results, indent=2, default=str))
        return
    for r in results:
        table = Table(title=r["path"], show_header=False)
        for k, v in r.items():
            if k != "path" and v is not None:
                table.add_row(k, str(v))
        console.print(table)


@app.command()
def demo(
    directory: Annotated[Path | None, typer.Argument(help="Camera roll to sync.")] = None,
    port: Annotated[int, typer.Option(help="Port for the demo server.")] = 8000,
    keep_serving: Annotated[
        bool, typer.Option(help="Keep the server running after the summary.")
    ] = True,
) -> None:
    """A first look: start a server, create a consenting demo user, sync a roll, summarise."""
    from camroll.accounts import create_token, create_user, find_user, set_password
    from camroll.consent.gate import set_scopes
    from camroll.consent.scopes import SCOPES
    from camroll.db.engine import session_scope
    from camroll.startup import prepare_database

    roll = directory or DEFAULT_ROLL
    if not roll.is_dir():
        _fail(f"no camera roll at {roll}; pass a folder: camroll demo DIR")
    prepare_database()
    email, password = "demo@camroll.local", "camroll-demo"
    with session_scope() as s:
        user = find_user(s, email) or create_user(s, email)
        set_password(user, password)
        set_scopes(s, user.id, dict.fromkeys(SCOPES, True), client="demo")
        token = create_token(s, user, f"demo-{secrets.token_hex(3)}")
    url = f"http://127.0.0.1:{port}"
    console.print(f"Starting camroll on {url} (data in {_data_dir()})")
    server = subprocess.Popen(
        [sys.executable, "-m", "camroll", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=open(_data_dir() / "server.log", "ab"),  # noqa: SIM115
    )

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt  # `kill` stops the demo like Ctrl-C: its server goes with it

    signal.signal(signal.SIGTERM, _stop)
    try:
        _wait_healthy(url, server)
        console.print(f"Syncing {roll}")
        result = _run_sync(roll, url, token, wait=True, as_json=False)
        _demo_summary(url, email, password, result)
        if keep_serving:
            console.print("\nServing; press Ctrl-C to stop.")
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def _data_dir() -> Path:
    from camroll.config import get_settings

    d = get_settings().data_dir
    d.mkdir(parents=True, exist_ok=True)
    return d.resolve()


def _wait_healthy(url: str, server: subprocess.Popen) -> None:
    import httpx

    for _ in range(120):
        if server.poll() is not None:
            _fail(f"the server exited (code {server.returncode}); see {_data_dir() / 'server.log'}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    _fail("the server did not become healthy within 60 s")


def _demo_summary(url: str, email: str, password: str, result: dict) -> None:
    from camroll.accounts import find_user
    from camroll.db.engine import session_scope
    from camroll.privacy.audit import ADMIN_CLI, record
    from camroll.summary import library_counts

    with session_scope() as s:
        user = find_user(s, email)
        assert user is not None  # the demo made it
        record(s, (user.id, ADMIN_CLI), "asset.list")
        counts = library_counts(s, user.id)
    by_kind, by_mime = counts.by_kind, counts.by_mime
    c = result["counts"]
    console.print(
        f"\nSynced: {c['uploaded']} uploaded, {c['skipped']} already there or duplicates, "
        f"{c['failed']} failed."
    )
    table = Table(title="Library by type")
    table.add_column("type")
    table.add_column("count", justify="right")
    for kind, n in sorted(by_kind.items()):
        table.add_row(kind, str(n))
    for mime, n in sorted(by_mime.items()):
        table.add_row(f"  {mime}", str(n))
    console.print(table)
    quarantined = result.get("quarantined") or []
    if quarantined:
        by_reason = Counter(q["reason"].split(":", 1)[0] for q in quarantined)
        q = Table(title=f"Quarantined: {len(quarantined)} files, kept encrypted but not processed")
        q.add_column("reason")
        q.add_column("files", justify="right")
        for reason, n in by_reason.most_common():
            q.add_row(reason, str(n))
        console.print(q)
        # Sidecars and exotic formats are expected in a camera roll; broken media deserves names.
        broken = sorted(
            (item for item in quarantined if not item["reason"].startswith("unsupported_type")),
            key=lambda item: item["path"],
        )
        if broken:
            b = Table(title="Broken media")
            b.add_column("file")
            b.add_column("why")
            for item in broken:
                b.add_row(item["path"], item["reason"])
            console.print(b)
        console.print("The web page lists every quarantined file with its reason.")
    _analysis_summary(email)
    _ideas_summary(url, email)
    console.print(f"\nOpen [bold]{url}[/] and sign in as [bold]{email}[/] / [bold]{password}[/]")


def _ideas_summary(url: str, email: str) -> None:
    """The ideas made from the roll, best first, each with its reason and its media."""
    from camroll.accounts import find_user
    from camroll.db.engine import session_scope
    from camroll.ideas.creations import list_ideas
    from camroll.privacy.audit import ADMIN_CLI, record

    with session_scope() as s:
        user = find_user(s, email)
        assert user is not None
        record(s, (user.id, ADMIN_CLI), "ideas.list")
        ideas = list_ideas(s, user.id)
    if not ideas:
        console.print("No ideas yet (they need the creations scope and a few analysed photos).")
        return
    t = Table(title=f"Ideas: {len(ideas)}")
    for col in ("kind", "title", "why", "media"):
        t.add_column(col)
    for i in ideas:
        media = f"{url}/api/ideas/{i.id}/media ({i.media_mime})" if i.blob_key else "-"
        t.add_row(i.kind, i.title, i.reason, media)
    console.print(t)


def _analysis_summary(email: str) -> None:
    """What analysis found: people, the commonest tags and places, near-duplicates."""
    from camroll.accounts import find_user
    from camroll.db.engine import session_scope
    from camroll.privacy.audit import ADMIN_CLI, record
    from camroll.summary import analysis_summary

    with session_scope() as s:
        user = find_user(s, email)
        assert user is not None
        record(s, (user.id, ADMIN_CLI), "analysis.read")
        found = analysis_summary(s, user.id)
    faces, people, tags, places = found.faces, found.people, found.tags, found.places
    dup_groups = found.duplicate_groups
    t = Table(title="What analysis found")
    t.add_column("what")
    t.add_column("", justify="left")
    largest = ", ".join(map(str, people[:5]))
    t.add_row("faces", f"{faces} in {len(people)} people (faces of the largest: {largest})")
    t.add_row("tags", ", ".join(f"{label} {n}" for label, n in tags) or "-")
    t.add_row(
        "places",
        "; ".join(f"{', '.join(x for x in (c, r, k) if x)} ({n})" for c, r, k, n in places) or "-",
    )
    t.add_row("near-duplicates", f"{dup_groups or 0} groups, best shot marked")
    console.print(t)


@app.command()
def purge(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Act as if the clock read this ISO 8601 time.")
    ] = None,
) -> None:
    """Run the retention purge now: shred keys, delete blobs and rows, write signed receipts."""
    from datetime import UTC, datetime

    from camroll.privacy.retention import purge_due
    from camroll.startup import prepare_database

    prepare_database()
    when = None
    if as_of:
        try:
            when = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--as-of is not an ISO 8601 time: {as_of!r}")
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    receipts = purge_due(when)
    for r in receipts:
        counts = json.loads(r.body)["counts"]
        summary = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        console.print(f"purged an account ({summary}); receipt /api/receipts/{r.id}")
    console.print(f"{len(receipts)} account(s) purged")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check that no consent record was altered, removed or reordered."""
    from camroll.consent.ledger import verify_ledger
    from camroll.db.engine import session_scope
    from camroll.startup import prepare_database

    prepare_database()
    with session_scope() as s:
        checked, problems = verify_ledger(s)
    for p in problems:
        err.print(f"[red]✗[/] {p}")
    if problems:
        _fail(f"the consent ledger is NOT intact: {len(problems)} problem(s) in {checked} records")
    console.print(f"[green]✓[/] consent ledger intact: {checked} records verified")


@receipt_app.command("verify")
def receipt_verify(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Receipt JSON.")],
    public_key: Annotated[
        str | None, typer.Option(help="Instance key (hex); default: this instance's own.")
    ] = None,
) -> None:
    """Check a deletion receipt's Ed25519 signature."""
    from camroll.crypto.signing import public_key_hex
    from camroll.privacy.retention import verify_receipt_document

    try:
        doc = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError):
        _fail(f"{file} is not JSON")
    ok, why = verify_receipt_document(doc, public_key or public_key_hex())
    if not ok:
        _fail(f"receipt NOT valid: {why}")
    r = doc["receipt"]
    console.print(f"[green]✓[/] valid receipt {r['receipt_id']}: deleted at {r['deleted_at']}")


if __name__ == "__main__":
    app()
