"""Where a search's study lives: a journal file, or a database that workers on many machines share.

>>> type(optuna_storage("journal:out/study.journal")).__name__
'JournalStorage'
>>> shown_storage("postgresql://opt:secret@db.lan/edgesmith")          # for messages: no password
'postgresql://opt:***@db.lan/edgesmith'
>>> optuna_storage("postgresql://opt:secret@127.0.0.1:1/edgesmith")    # nothing listens on port 1
Traceback (most recent call last):
    ...
edgesmith.optimize.storage.StorageError: storage postgresql://opt:***@127.0.0.1:1/edgesmith: cannot connect: ...

A database storage (``postgresql://``, ``mysql://``, ``sqlite:///``) is connected to at once, so a wrong
URL, a server that is down or refused credentials stop the command before any work, in one line (exit 2),
within ``CONNECT_TIMEOUT_S`` (or the URL's own ``?connect_timeout=S``). With ``heartbeat`` seconds, every
running trial records a heartbeat in the database; a trial whose worker stopped beating for twice that
(killed, crashed, its machine lost) is marked failed by the next worker that looks, and its sampled recipe
is queued again once (Optuna's ``RetryHeartbeatStaleTrialCallback``). PostgreSQL needs the driver of the
``scale`` extra: ``pip install "edgesmith[scale]"``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from edgesmith.runtime.errors import EdgesmithError, first_line

CONNECT_TIMEOUT_S = 10
HEARTBEAT_S = 30  # a database study's trials beat this often; a trial silent for twice as long is failed
SCHEMA_ATTEMPTS = 5  # tries to open a database whose tables another worker may be creating at the same moment
DRIVER_HINT = {"postgresql": 'pip install "edgesmith[scale]"', "mysql": "pip install pymysql (and use mysql+pymysql://)"}


class StorageError(EdgesmithError):
    """The study's storage URL is malformed, its driver is missing, or its server cannot be reached."""


def optuna_storage(url: str, heartbeat: int | None = None):
    """The Optuna storage for ``url``: ``journal:FILE`` (a journal file), or a database URL, connected.

    Args:
        url: ``journal:FILE``, ``sqlite:///FILE``, ``postgresql://user:password@host[:port]/db``, ``mysql://...``.
        heartbeat: seconds between a running trial's heartbeats (database storages only; None: no heartbeat).
    """
    if url.startswith("journal:"):
        import optuna
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise StorageError(f"storage {url!r}: give an Optuna storage URL (sqlite:///FILE, postgresql://..., "
                           "mysql://...) or journal:FILE")
    return _database(url, heartbeat)


def shown_storage(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and optimize.json)."""
    if url.startswith("journal:") or "://" not in url:
        return url
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url.split("://", 1)[0] + "://..."


def _database(url: str, heartbeat: int | None):
    import optuna
    import sqlalchemy

    shown = shown_storage(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(f"storage {shown}: not a database URL (dialect://user:password@host:port/database)") \
            from None
    backend = parsed.get_backend_name()
    if parsed.drivername == "postgresql":  # SQLAlchemy 2.1 means psycopg (3) by it, 2.0 psycopg2: use the one installed
        parsed = parsed.set(drivername=f"postgresql+{_postgres_driver()}")
    connect_args = {}
    if backend in ("postgresql", "mysql") and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna: no warning on stderr
            warnings.simplefilter("ignore")
            heartbeats = {}
            if heartbeat:
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                heartbeats = {"heartbeat_interval": int(heartbeat), "grace_period": 2 * int(heartbeat),
                              "heartbeat_stale_trial_callback": retry}
            for attempt in range(SCHEMA_ATTEMPTS):
                try:
                    return optuna.storages.RDBStorage(parsed.render_as_string(hide_password=False),
                                                      engine_kwargs={"connect_args": connect_args,
                                                                     "pool_pre_ping": True}, **heartbeats)
                except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
                    # workers started together on an empty database race to create Optuna's tables: the
                    # losers see "duplicate key ... pg_type" or "already exists"; the winner's tables are there
                    if attempt == SCHEMA_ATTEMPTS - 1 or not _schema_race(error):
                        raise
                    time.sleep(0.5 * (attempt + 1))
    except sqlalchemy.exc.NoSuchModuleError:
        raise StorageError(f"storage {shown}: SQLAlchemy knows no database {parsed.drivername!r} "
                           "(postgresql://, mysql://, sqlite:///)") from None
    except ImportError as error:
        hint = DRIVER_HINT.get(backend, "install the driver SQLAlchemy names for it")
        raise StorageError(f"storage {shown}: no database driver for {parsed.drivername!r} "
                           f"({first_line(error)}); {hint}") from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise StorageError(f"storage {shown}: cannot connect: {first_line(getattr(error, 'orig', None) or error)}") \
            from None


def _schema_race(error) -> bool:
    text = str(getattr(error, "orig", None) or error)
    return "duplicate key" in text or "already exists" in text


def _postgres_driver() -> str:
    import importlib.util

    return "psycopg" if importlib.util.find_spec("psycopg") or not importlib.util.find_spec("psycopg2") else "psycopg2"


def has_heartbeat(storage) -> bool:
    """Whether ``storage`` (from :func:`optuna_storage`) records running trials' heartbeats."""
    return getattr(storage, "get_heartbeat_interval", lambda: None)() is not None


def fail_stale_trials(study) -> None:
    """Mark failed the running trials whose worker stopped its heartbeat (a no-op without heartbeat)."""
    import optuna

    with warnings.catch_warnings():  # "experimental" in Optuna
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)


def wait_for_running(study, storage, poll_s: float = 1.0) -> None:
    """Return once no trial of ``study`` is running: other workers' in-flight trials have finished, or their
    heartbeat stopped and they were marked failed. Without heartbeat (a journal file) it returns at once:
    a killed worker's trial would stay running forever."""
    from optuna.trial import TrialState

    if not has_heartbeat(storage):
        return
    while True:
        fail_stale_trials(study)
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            return
        time.sleep(poll_s)
