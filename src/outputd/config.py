"""The configuration: one TOML file, every key overridable by OUTPUTD_<SECTION>__<KEY>.

Validated with pydantic-settings: the TOML file's keys are the values given, and
`OUTPUTD_<SECTION>__<KEY>` variables override them. A variable whose first part names no
section (`OUTPUTD_BIN`, set by a wrapper script) is not a setting and is left alone; one
that names a section and a key that is not there (`OUTPUTD_LIMITS__MAX_FILE_BYTE`) is an
error. The commands that only read the store (`jobs`, `show`) never import this module
(`outputd.configfile` finds the store alone), so its import cost falls on the others.

Relative paths resolve against the config file's folder. A bad config raises ConfigError
with one sentence naming the key.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from outputd.configfile import (
    DEFAULT_STATE_DIR,
    ENV_PREFIX,
    SQLITE_PREFIX,
    ConfigFile,
    read_config_file,
)
from outputd.errors import ConfigError

TEMPLATE_FIELDS = frozenset(
    {"job_id", "order_id", "storefront", "sku", "quantity", "type", "part", "role"}
)
ROUTE_MATCH_KEYS = frozenset({"type", "sku", "storefront", "test_mode"})
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DaemonConfig(_Section):
    """`[daemon]`: the node, its folders, workers and logs."""
    state_dir: Path = DEFAULT_STATE_DIR
    intake_dir: Path = Path("../var/intake")
    sources_dir: Path | None = None  # default: state_dir/sources
    node_id: str = ""
    workers: int = Field(4, ge=1, le=64)
    stop_grace_s: float = Field(30, ge=0)
    log_format: Literal["text", "json"] = "text"


class StoreConfig(_Section):
    """`[store]`: where the store is, and the claim lease."""
    url: str = ""  # default: sqlite:///<state_dir>/outputd.db
    lease_s: float = Field(30, gt=0)


class LimitsConfig(_Section):
    """`[limits]`: file sizes, memory and time a job may take."""
    max_file_bytes: int = Field(104_857_600, gt=0)
    awaiting_data_timeout_s: float = Field(3600, gt=0)
    job_timeout_s: float = Field(300, gt=0)
    job_memory_mb: int = Field(2048, gt=0)
    min_free_mb: int = Field(1024, ge=0)


class RetryConfig(_Section):
    """`[retry]`: the back-off of deliveries, webhooks and mail."""
    max_attempts: int = Field(8, ge=1)
    initial_s: float = Field(5, gt=0)
    max_s: float = Field(900, gt=0)


class CleanupConfig(_Section):
    """`[cleanup]`: how long sources are kept after CleanUp."""
    keep_sources_days: float = Field(30, ge=0)


Severity = Literal["error", "warn", "off"]


class PreflightSettings(_Section):
    """The settings of the preflight checks: `[preflight]`, and each profile."""
    min_ppi_warn: float = Field(200, ge=0)
    min_ppi_fail: float = Field(120, ge=0)
    cmyk_only: bool = False
    min_line_pt: float = Field(0.25, ge=0)  # a stroke thinner than this is a hairline
    min_text_pt: float = Field(8, ge=0)  # text in several inks (or a spot) below this
    black_overprint_below_pt: float = Field(12, ge=0)  # 100 % black text below this overprints
    spot_colours: list[str] = []  # the spot colours the shop prints; empty: any
    overprint_simulated: bool = True  # the press (or RIP) shows overprint as on press
    require_pdfx: bool = False  # the file must declare PDF/X in its XMP, with an intent
    max_tac_pct: float = Field(320, ge=100, le=400)  # total area coverage
    tac_dpi: int = Field(36, ge=9, le=300)  # the rendering coverage is measured on
    fix_rotate: bool = False
    fix_boxes: bool = False
    fix_scale: bool = False
    scale_max_pct: float = Field(3, ge=0, le=25)
    # each check's severity by name; a check not named keeps its own
    severity: dict[str, Severity] = {}


class PreflightConfig(PreflightSettings):
    """`[preflight]`: the shop's defaults, and its named profiles (DESIGN §14)."""
    profiles: dict[str, PreflightSettings] = {}

    def profile(self, name: str | None) -> PreflightSettings:
        """The settings of profile `name` (None: the defaults): a bundled profile's over
        the defaults, then the keys `[preflight.profiles.NAME]` sets. KeyError when there
        is no such profile."""
        if not name:
            return self
        if name not in BUNDLED_PROFILES and name not in self.profiles:
            raise KeyError(name)
        settings = self.model_dump(exclude={"profiles"})
        settings.update(BUNDLED_PROFILES.get(name, {}))
        own = self.profiles.get(name)
        if own is not None:
            severity = {**settings["severity"], **own.severity}
            settings.update(own.model_dump(include=own.model_fields_set))
            settings["severity"] = severity
        return PreflightSettings.model_validate(settings)


# Profiles every shop has, modelled on the Ghent Workgroup variants a small shop prints
# for (docs/preflight.md says which setting follows which requirement). A profile of the
# same name in the config changes single settings of one.
BUNDLED_PROFILES: dict[str, dict[str, Any]] = {
    "digital-cutsheet": {
        "min_ppi_fail": 150, "min_ppi_warn": 225, "min_line_pt": 0.25, "min_text_pt": 6,
        "overprint_simulated": False, "max_tac_pct": 320, "fix_rotate": True,
        "fix_boxes": True,
        "severity": {"registration": "error", "white_overprint": "error",
                     "overprint": "warn", "tac": "off"},
    },
    "sheetfed-offset": {
        "min_ppi_fail": 150, "min_ppi_warn": 225, "min_line_pt": 0.125, "min_text_pt": 9,
        "overprint_simulated": True, "max_tac_pct": 320, "fix_rotate": True,
        "fix_boxes": True,
        "severity": {"registration": "error", "white_overprint": "error",
                     "small_text": "error", "tac": "error", "black_overprint": "warn"},
    },
}


class MetricsConfig(_Section):
    """`[metrics]`: where /metrics and /healthz listen."""
    listen: str = "127.0.0.1:9464"


class WebConfig(_Section):
    """`[web]`: where `outputd web` serves the API (and later the board)."""
    listen: str = ""  # "host:port"; "" serves none
    session_hours: float = Field(12, gt=0)
    trusted_proxies: list[str] = []
    # a client that takes longer than this to send its request's headers, to send the
    # next part of a body, or to read the next part of an answer is disconnected
    client_timeout_s: float = Field(20, gt=0, le=3600)


class WebhookConfig(_Section):
    """One `[[notify.webhooks]]`: a URL and the statuses it wants."""
    url: str = Field(pattern=r"^https?://")
    secret_file: Path | None = None
    secret: SecretStr | None = None  # or from the environment
    statuses: list[str] = []  # empty: every status change
    timeout_s: float = Field(10, gt=0)


class EmailConfig(_Section):
    """`[notify.email]`: the SMTP server, recipients and statuses."""
    smtp_host: str = ""  # empty: no mail
    smtp_port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    username: str = ""
    password_file: Path | None = None
    password: SecretStr | None = None
    sender: str = "outputd@localhost"
    to: list[str] = []
    statuses: list[str] = ["ValidationFailed", "OutputCreationFailed", "CopyToHotFolderFailed"]
    timeout_s: float = Field(10, gt=0)
    batch_s: float = Field(10, ge=0)  # mails wait this long to be grouped into a summary
    summary_after: int = Field(10, ge=1)  # more failures than this for one reason: one mail


class NotifyConfig(_Section):
    """`[notify]`: webhooks and mail."""
    webhooks: list[WebhookConfig] = []
    email: EmailConfig = EmailConfig()


class _HotFolderBase(_Section):
    path: str
    filename: str
    ticket: Literal["none", "json", "xml"] = "none"
    job_sheet: Literal["none", "prepend", "separate"] = "none"

    @field_validator("filename")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name}
        except ValueError as exc:
            raise ValueError(f"is not a valid template ({exc})") from None
        unknown = sorted(fields - TEMPLATE_FIELDS)
        if unknown:
            raise ValueError(
                f"uses unknown field {{{unknown[0]}}}; known fields: "
                + ", ".join(sorted(TEMPLATE_FIELDS))
            )
        return value


class LocalHotFolder(_HotFolderBase):
    """A hot folder on a local (or mounted) file system."""
    kind: Literal["local"]
    # The mount point of the share the hot folder is on (NFS, SMB): deliveries wait while
    # it is not mounted, so that no file lands on the local disk beneath it.
    mount: str | None = None
    watch_pickup: bool = False
    stale_after_s: float = Field(3600, gt=0)


class SftpHotFolder(_HotFolderBase):
    """A hot folder on an SFTP server, with its pinned host key."""
    kind: Literal["sftp"]
    host: str
    port: int = Field(22, ge=1, le=65535)
    username: str
    key_file: Path | None = None
    key_passphrase_file: Path | None = None
    password_file: Path | None = None
    # Secrets straight from the environment (OUTPUTD_HOTFOLDERS__<NAME>__PASSWORD); never
    # shown: SecretStr prints as asterisks.
    password: SecretStr | None = None
    key_passphrase: SecretStr | None = None
    known_hosts: Path
    timeout_s: float = Field(30, gt=0)
    max_request_bytes: int = Field(32768, ge=1024, le=1 << 20)
    stale_after_s: float = Field(3600, gt=0)

    @model_validator(mode="after")
    def _some_credential(self) -> SftpHotFolder:
        if not (self.key_file or self.password_file or self.password):
            raise ValueError("needs key_file, password_file or a password from the environment")
        return self


HotFolderConfig = Annotated[LocalHotFolder | SftpHotFolder, Field(discriminator="kind")]


class RouteConfig(_Section):
    """One `[[routes]]`: which jobs go to which hot folders (or are skipped)."""
    match: dict[str, str | bool | int] = {}
    to: list[str] = []
    skip: bool = False
    profile: str | None = None  # the preflight profile of its jobs (a product's own wins)
    checkpoint: bool = False  # its jobs wait at AwaitingProof until `verified`

    @field_validator("match")
    @classmethod
    def _known_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key not in ROUTE_MATCH_KEYS and not key.startswith("attributes."):
                raise ValueError(
                    f"unknown match key {key!r}; use type, sku, storefront, test_mode "
                    "or attributes.<name>"
                )
        return value


class Config(BaseSettings):
    """The whole validated configuration, paths resolved against the config file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                      extra="forbid", case_sensitive=False)

    daemon: DaemonConfig = DaemonConfig()
    store: StoreConfig = StoreConfig()
    limits: LimitsConfig = LimitsConfig()
    retry: RetryConfig = RetryConfig()
    cleanup: CleanupConfig = CleanupConfig()
    preflight: PreflightConfig = PreflightConfig()
    metrics: MetricsConfig = MetricsConfig()
    web: WebConfig = WebConfig()
    notify: NotifyConfig = NotifyConfig()
    hotfolders: dict[Annotated[str, Field(pattern=NAME_PATTERN)], HotFolderConfig]
    routes: list[RouteConfig]
    source: Path = Field(Path("."), exclude=True)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment over the file; no .env file, no secrets folder."""
        return env_settings, init_settings

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file the store URL names, or None for another engine."""
        url = self.store.url
        return Path(url[len(SQLITE_PREFIX):]) if url.startswith(SQLITE_PREFIX) else None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and resolve the config file; raise ConfigError naming the key."""
    return validate(read_config_file(path))


def validate(file: ConfigFile) -> Config:
    """Validate and resolve a read config file; raise ConfigError naming the key."""
    try:
        config = Config(**file.raw)
    except ValidationError as exc:
        where = f"config file {file.path}"
        if file.overridden:
            where += " with the OUTPUTD_ environment overrides"
        raise ConfigError(f"{where}: {_first_error(exc)}") from None
    return _resolve(config, file)


def _where(loc: tuple[int | str, ...]) -> str:
    """Where in the file an error is, as its reader counts: `[[routes]] number 2: to`,
    not a 0-based index (the log says "route 2" of the same one)."""
    parts = [part for part in loc if part not in ("local", "sftp")]
    for index, part in enumerate(parts):
        if isinstance(part, int):
            table = ".".join(str(p) for p in parts[:index])
            rest = ".".join(str(p) for p in parts[index + 1:])
            return f"[[{table}]] number {part + 1}" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in parts)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = _where(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "is not a known key"
    elif error["type"] == "missing":
        message = "is required"
    return f"{loc or 'the file'} {message}" if loc else message


def _resolve(config: Config, file: ConfigFile) -> Config:
    at = file.at
    daemon = config.daemon
    state_dir = at(daemon.state_dir)
    daemon = daemon.model_copy(update={
        "state_dir": state_dir,
        "intake_dir": at(daemon.intake_dir),
        "sources_dir": at(daemon.sources_dir) if daemon.sources_dir else state_dir / "sources",
    })
    url = file.store_url(config.store.url, state_dir)
    hotfolders: dict[str, LocalHotFolder | SftpHotFolder] = {}
    for name, folder in config.hotfolders.items():
        if isinstance(folder, LocalHotFolder):
            hotfolders[name] = folder.model_copy(update={
                "path": str(at(Path(folder.path))),
                "mount": str(at(Path(folder.mount))) if folder.mount else None})
        else:
            update = {
                key: at(getattr(folder, key))
                for key in ("key_file", "key_passphrase_file", "password_file", "known_hosts")
                if getattr(folder, key) is not None
            }
            hotfolders[name] = folder.model_copy(update=update)
    notify = config.notify.model_copy(update={
        "webhooks": [
            w.model_copy(update={"secret_file": at(w.secret_file) if w.secret_file else None})
            for w in config.notify.webhooks
        ],
        "email": config.notify.email.model_copy(update={
            "password_file": at(config.notify.email.password_file)
            if config.notify.email.password_file else None}),
    })
    resolved = config.model_copy(update={
        "notify": notify,
        "daemon": daemon,
        "store": config.store.model_copy(update={"url": url}),
        "hotfolders": hotfolders,
        "source": file.path.resolve(),
    })
    _check_routes(resolved)
    _check_folders(resolved)
    return resolved


def _check_routes(config: Config) -> None:
    for index, route in enumerate(config.routes, start=1):
        if route.profile is not None:
            try:
                config.preflight.profile(route.profile)
            except KeyError:
                known = sorted({*BUNDLED_PROFILES, *config.preflight.profiles})
                raise ConfigError(f"[[routes]] number {index}: profile {route.profile!r} is "
                                  f"not a preflight profile; known: {', '.join(known)}"
                                  ) from None
        for name in route.to:
            if name not in config.hotfolders:
                raise ConfigError(f"[[routes]] number {index}: to names unknown hot folder "
                                  f"{name!r}")
        if not route.skip and not route.to:
            raise ConfigError(f"[[routes]] number {index} needs `to` (hot folders) or "
                              "`skip = true`")


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def _check_folders(config: Config) -> None:
    intake = config.daemon.intake_dir.resolve()
    for name, folder in config.hotfolders.items():
        if not isinstance(folder, LocalHotFolder):
            continue
        hot = Path(folder.path).resolve()
        if _inside(intake, hot) or _inside(hot, intake):
            raise ConfigError(
                f"hotfolders.{name}.path {hot} and daemon.intake_dir {intake} overlap; "
                "outputd would pick up its own output"
            )
        if folder.mount and not _inside(hot, Path(folder.mount).resolve()):
            raise ConfigError(f"hotfolders.{name}.path {hot} is not inside "
                              f"hotfolders.{name}.mount {folder.mount}")
