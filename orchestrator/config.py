"""Loading a park config: YAML → validated models → the resolved, indexed `Park`.

Every problem is collected, not just the first, and each names the file, the line and the key path
(`companies[1].sites[0].lines[2].assets[4].signals.good_count.address`) and says what is expected.
Two passes run on every file: the pydantic models check shapes and types; `_check_references`
checks what a schema cannot (ids unique in their parent, references to asset types and
connections, binding templates filled and valid for their connector kind).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, Field, ValidationError, create_model

from connectors.base import ConnectorKind
from exporters.http.settings import HttpSettings
from exporters.mqtt.settings import MqttSettings
from models.assets import DataType, ParkConfig, Shift
from models.park import AssetRef, ConnectionRef, Park, SignalRef
from orchestrator.hub.settings import HubSettings
from orchestrator.yamlfile import KeyPath, Located, YamlError, expand_env, load_file, render_path

DATABASE_URL_ENV = "PARKLINK_DATABASE_URL"
_SECRET_KEYS = re.compile(r"password|secret|token|private_key", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


DATA_TYPES = frozenset(get_args(DataType))

@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem in a config file."""

    line: int
    path: str
    message: str
    file: str = field(compare=False)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """A config with one or more problems; `str()` lists them all, one per line."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass(frozen=True)
class LoadedConfig:
    """A valid config: the models as written and the resolved park."""

    path: Path
    config: ParkConfig[Any]
    park: Park
    database_url: str
    # What is valid but may not do what it says (a break in a skipped DST hour); not errors.
    warnings: tuple[ConfigIssue, ...] = ()

    @property
    def mqtt(self) -> MqttSettings | None:
        """The `mqtt:` section (exporters' sections are added to the model at run time)."""
        value: MqttSettings | None = getattr(self.config, "mqtt", None)
        return value

    @property
    def hub(self) -> HubSettings:
        """The `hub:` section, defaults when absent."""
        value: HubSettings = getattr(self.config, "hub", None) or HubSettings()
        return value

    @property
    def http(self) -> HttpSettings:
        """The `http:` section, defaults when absent."""
        value: HttpSettings = getattr(self.config, "http", None) or HttpSettings()
        return value


Role = Literal["all", "edge", "hub"]


def check_role(loaded: LoadedConfig, role: Role) -> None:
    """What each role needs of a config; ConfigError naming the file and key otherwise."""
    name = str(loaded.path)
    issues: list[ConfigIssue] = []
    has_companies = bool(loaded.config.companies)
    if role == "hub" and has_companies:
        issues.append(
            ConfigIssue(
                0,
                "companies",
                "a hub's config lists no companies: they come from "
                "the edges' announcements (hub.companies accepts only some)",
                name,
            )
        )
    if role != "hub" and not has_companies:
        hint = " (a hub's config lists none: run it with --role hub)" if role == "all" else ""
        issues.append(ConfigIssue(0, "companies", f"no companies: nothing to connect{hint}", name))
    if role in ("edge", "hub") and loaded.mqtt is None:
        issues.append(ConfigIssue(0, "mqtt", f"--role {role} needs an mqtt: section (the broker)", name))
    if issues:
        raise ConfigError(issues)


def config_model(kinds: Mapping[str, ConnectorKind]) -> type[ParkConfig[Any]]:
    """The config model: connections typed as the union of the registered kinds, plus the
    exporters' sections (models/ knows no exporter; they are added here)."""
    return _config_model(tuple(kinds.values()))


@cache
def _config_model(kinds: tuple[ConnectorKind, ...]) -> type[ParkConfig[Any]]:
    models = tuple(kind.connection_model for kind in kinds)
    base: type[ParkConfig[Any]]
    if len(models) == 1:
        base = ParkConfig[models[0]]  # type: ignore[valid-type]  # a runtime type
    else:
        connection = Annotated[Union[models], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
        base = ParkConfig[connection]
    model: type[ParkConfig[Any]] = create_model(
        "ParkConfig",
        __base__=base,
        mqtt=(
            MqttSettings | None,
            Field(None, description="publish to an MQTT broker (UNS JSON, Sparkplug B)"),
        ),
        http=(HttpSettings, Field(default_factory=HttpSettings, description="HTTP API and dashboard")),
        hub=(HubSettings, Field(default_factory=HubSettings, description="the hub role (--role hub)")),
    )
    return model


def load_config(path: Path, kinds: Mapping[str, ConnectorKind], *, today: date | None = None) -> LoadedConfig:
    """Load, validate and resolve a config file; raises ConfigError listing every problem.

    `today` (default: the local date) starts the look-ahead for DST gaps behind the warnings.
    """
    name = str(path)
    try:
        located = load_file(path)
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(0, "", "no such file", name)]) from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise ConfigError([ConfigIssue(0, "", f"cannot read: {exc.strerror or exc}", name)]) from None
    except YamlError as exc:
        raise ConfigError([ConfigIssue(exc.line or 0, render_path(exc.path), str(exc), name)]) from None
    issues = _Issues(name, located)
    missing: list[tuple[KeyPath, str]] = []
    data = expand_env(located.data, (), missing)
    for key_path, variable in missing:
        issues.add(key_path, f"environment variable {variable} is not set (and no ${{{variable}:-default}})")
    if not isinstance(data, dict):
        issues.add((), "expected a mapping with keys park, companies, asset_types, database, metrics")
        raise ConfigError(issues.items)

    model = config_model(kinds)
    config: ParkConfig[Any] | None = None
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        schema = _schema(model)
        for error in exc.errors():
            issues.add_pydantic(data, (), error, schema)
    bindings = _check_references(data, kinds, issues)
    if config is not None:
        _check_kpi_settings(config, issues, today or date.today())
    if issues.items or config is None:
        raise ConfigError(issues.items)
    url = os.environ.get(DATABASE_URL_ENV) or config.database.url
    return LoadedConfig(path, config, _resolve(config, bindings), url, tuple(sorted(issues.warnings)))


class _Issues:
    """Collects problems and turns key paths into lines."""

    def __init__(self, file: str, located: Located) -> None:
        self.file, self.located, self.items = file, located, list[ConfigIssue]()
        self.warnings = list[ConfigIssue]()

    def add(self, path: KeyPath, message: str) -> None:
        self.items.append(ConfigIssue(self.located.line_of(path) or 0, render_path(path), message, self.file))

    def warn(self, path: KeyPath, message: str) -> None:
        """A warning: reported, but the config stays valid."""
        line = self.located.line_of(path) or 0
        self.warnings.append(ConfigIssue(line, render_path(path), message, self.file))

    def add_pydantic(
        self, data: Any, prefix: KeyPath, error: Any, schema: dict[str, Any] | None, note: str = ""
    ) -> None:
        """Report a pydantic error; `data` is the document below `prefix`, where validation began."""
        path = (*prefix, *_data_path(data, tuple(error["loc"])))
        kind, text, given = error["type"], error["msg"], error.get("input")
        if kind == "extra_forbidden":
            parent = _node_at(data, path[len(prefix) : -1])
            kind_tag = parent.get("kind") if isinstance(parent, dict) else None
            known = _allowed_keys(schema, path[len(prefix) : -1], kind_tag) if schema else []
            close = difflib.get_close_matches(str(path[-1]), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listing = f" (allowed: {', '.join(sorted(known))})" if known else ""
            message = f"unknown key {path[-1]!r}{hint}{listing}"
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "union_tag_invalid":
            message = f"{text}"
        else:
            shown = "" if _SECRET_KEYS.search(str(path[-1:])) or isinstance(given, dict | list) else given
            message = f"{text} (got {shown!r})" if shown not in ("", None) else text
        self.add(path, message + note)


def _node_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _data_path(data: Any, loc: KeyPath) -> KeyPath:
    """Drop what pydantic adds to a location that is not in the file (union tags, '[key]' markers)."""
    node: Any = data
    out: list[str | int] = []
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("kind") == part:
            continue  # discriminated union tag
        if part == "[key]":
            continue
        out.append(part)
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (
                node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None
            )
        )
    return tuple(out)


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _allowed_keys(schema: dict[str, Any], path: KeyPath, kind: Any = None) -> list[str]:
    """The keys the JSON schema allows at `path` (best effort: [] when it cannot tell)."""
    definitions = schema.get("$defs", {})

    def deref(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = definitions[node["$ref"].split("/")[-1]]
        return node

    def candidates(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        node = deref(node)
        for variant in node.get("anyOf", []) + node.get("oneOf", []):
            yield from candidates(variant)
        yield node

    nodes = [schema]
    for part in path:
        following: list[dict[str, Any]] = []
        for node in nodes:
            for option in candidates(node):
                if isinstance(part, int) and "items" in option:
                    following.append(option["items"])
                elif isinstance(part, str) and part in option.get("properties", {}):
                    following.append(option["properties"][part])
                elif isinstance(part, str):
                    following.extend(option.get("patternProperties", {}).values())
                    if isinstance(option.get("additionalProperties"), dict):
                        following.append(option["additionalProperties"])
        nodes = following
    keys: set[str] = set()
    for node in nodes:
        for option in candidates(node):
            tag = option.get("properties", {}).get("kind", {}).get("const")
            if tag is None or tag == kind:  # of a tagged union, only the variant the file chose
                keys.update(option.get("properties", {}))
    return sorted(keys)


# Bindings validated in the reference pass, keyed by (company, site, area, line, asset, signal).
_BindingKey = tuple[str, str, str, str, str, str]


def _check_references(
    data: dict[str, Any], kinds: Mapping[str, ConnectorKind], issues: _Issues
) -> dict[_BindingKey, Any]:
    """Cross-field checks on the raw data; tolerant of shapes the pydantic pass already reported."""
    types = data.get("asset_types") if isinstance(data.get("asset_types"), dict) else {}
    assert isinstance(types, dict)
    bindings: dict[_BindingKey, Any] = {}
    companies = data.get("companies")
    for c, company in _items(companies, ("companies",), issues):
        connections = company.get("connections") if isinstance(company.get("connections"), dict) else {}
        assert isinstance(connections, dict)
        for s, site in _items(company.get("sites"), ("companies", c, "sites"), issues):
            site_path: KeyPath = ("companies", c, "sites", s)
            groups: list[tuple[str, KeyPath, Any]] = [("", site_path, site)]
            groups += [
                (str(area.get("id", "")), (*site_path, "areas", a), area)
                for a, area in _items(site.get("areas"), (*site_path, "areas"), issues)
            ]
            for area_id, group_path, group in groups:
                for n, line in _items(group.get("lines"), (*group_path, "lines"), issues):
                    line_path = (*group_path, "lines", n)
                    for k, asset in _items(line.get("assets"), (*line_path, "assets"), issues):
                        ids = (str(company.get("id")), str(site.get("id")), area_id, str(line.get("id")))
                        _check_asset(
                            asset, (*line_path, "assets", k), ids, types, connections, kinds, issues, bindings
                        )
    return bindings


def _items(value: Any, path: KeyPath, issues: _Issues) -> Iterator[tuple[int, dict[str, Any]]]:
    """The mappings of a list, reporting ids that repeat within it."""
    if not isinstance(value, list):
        return
    first_index: dict[Any, int] = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            continue
        item_id = item.get("id")
        if not isinstance(item_id, str | int | float | bool):
            item_id = None  # a list or mapping as an id: its type is reported by the structural pass
        if item_id is not None and item_id in first_index:
            issues.add(
                (*path, i, "id"),
                f"id {item_id!r} is already used by {render_path((*path, first_index[item_id]))}",
            )
        first_index.setdefault(item_id, i)
        yield i, item


def _check_asset(
    asset: dict[str, Any],
    path: KeyPath,
    ids: tuple[str, str, str, str],
    types: dict[str, Any],
    connections: dict[str, Any],
    kinds: Mapping[str, ConnectorKind],
    issues: _Issues,
    bindings: dict[_BindingKey, Any],
) -> None:
    type_name, connection_id = asset.get("type"), asset.get("connection")
    asset_type = types.get(type_name) if isinstance(type_name, str) else None
    if isinstance(type_name, str) and not isinstance(asset_type, dict):
        known = ", ".join(sorted(map(str, types))) or "none declared"
        issues.add((*path, "type"), f"unknown asset type {type_name!r} (asset_types: {known})")
    connection = connections.get(connection_id) if isinstance(connection_id, str) else None
    if isinstance(connection_id, str) and not isinstance(connection, dict):
        known = ", ".join(sorted(map(str, connections))) or "none declared"
        issues.add(
            (*path, "connection"), f"no connection {connection_id!r} in this company (connections: {known})"
        )
    if not isinstance(asset_type, dict) or not isinstance(asset_type.get("signals"), dict):
        return
    declared: dict[str, Any] = asset_type["signals"]
    overrides = asset.get("signals") if isinstance(asset.get("signals"), dict) else {}
    assert isinstance(overrides, dict)
    for name in overrides:
        if name not in declared:
            issues.add(
                (*path, "signals", name),
                f"asset type {type_name!r} has no signal {name!r} (signals: {', '.join(map(str, declared))})",
            )
    kind = kinds.get(str(connection.get("kind"))) if isinstance(connection, dict) else None
    if kind is None:
        return  # an unknown kind or connection is reported elsewhere
    settings = _connection_settings(kind, connection)
    params = {**_mapping(asset_type.get("parameters")), **_mapping(asset.get("params"))}
    params.update(company=ids[0], site=ids[1], line=ids[3], asset=asset.get("id", ""))
    for name, spec in declared.items():
        if not isinstance(spec, dict):
            continue
        signal_path = (*path, "signals", name)
        merged = {**_mapping(spec.get("binding")), **_mapping(overrides.get(name))}
        filled = {key: _fill(value, params, (*signal_path, key), issues) for key, value in merged.items()}
        data_type: DataType = spec.get("type", "float64")
        if not isinstance(data_type, str) or data_type not in DATA_TYPES:
            continue  # the structural pass reports the type; a binding cannot be checked against it
        try:
            binding = kind.validate_binding(filled, data_type)
            bindings[(*ids, str(asset.get("id")), name)] = binding
            problem = kind.check_binding(settings, binding) if kind.check_binding and settings else None
            if problem is not None:
                issues.add((*signal_path, problem[0]), problem[1])
        except ValidationError as exc:
            template_line = issues.located.line_of(
                ("asset_types", str(type_name), "signals", name, "binding")
            )
            for error in exc.errors():
                field = error["loc"][0] if error["loc"] else None
                from_template = field is None or field not in _mapping(overrides.get(name))
                note = f" (binding template of asset type {type_name!r}, line {template_line})"
                issues.add_pydantic(filled, signal_path, error, None, note if from_template else "")
        except ValueError as exc:
            issues.add(signal_path, str(exc))


def _check_kpi_settings(config: ParkConfig[Any], issues: _Issues, today: date) -> None:
    """State maps and shift calendars are built once here, so a bad one is a config error.

    A break with a wall time in a skipped DST hour after `today` is a warning: it is still a
    break, taken as its wall-clock length ending at its end (windows.py), but not as written.
    """
    from orchestrator.kpi.dst import skipped_breaks
    from orchestrator.kpi.setup import shift_specs, state_map_of
    from orchestrator.kpi.windows import ShiftCalendar

    def check_map(spec: Any, signals: Mapping[str, Any], path: KeyPath) -> None:
        try:
            built = state_map_of(spec, "/".join(map(str, path)))
        except ValueError as exc:
            issues.add(path, str(exc))
            return
        missing = [name for name in built.inputs if name not in signals]
        if missing:
            issues.add(
                path, f"state map {built.name!r} reads signals {', '.join(missing)}, which the type lacks"
            )

    for name, asset_type in config.asset_types.items():
        check_map(asset_type.state_map, asset_type.signals, ("asset_types", name, "state_map"))
    for c, company in enumerate(config.companies):
        for s, site in enumerate(company.sites):
            site_path: KeyPath = ("companies", c, "sites", s)
            try:
                specs = shift_specs(site.shifts)
                ShiftCalendar(site.timezone, specs)
            except ValueError as exc:
                issues.add((*site_path, "shifts"), str(exc))
            else:
                for h, spec in enumerate(specs):
                    for skipped in skipped_breaks(spec, site.timezone, today):
                        path = (*site_path, "shifts", h, "breaks", skipped.index)
                        issues.warn(path, skipped.message(spec, site.timezone))
            groups = [((*site_path,), site.lines)] + [
                ((*site_path, "areas", a), area.lines) for a, area in enumerate(site.areas)
            ]
            for group_path, lines in groups:
                for n, line in enumerate(lines):
                    for k, asset in enumerate(line.assets):
                        if asset.state_map is not None and asset.type in config.asset_types:
                            signals = config.asset_types[asset.type].signals
                            check_map(
                                asset.state_map, signals, (*group_path, "lines", n, "assets", k, "state_map")
                            )


def _connection_settings(kind: ConnectorKind, raw: Any) -> Any:
    """The connection validated by its kind, or None when it is invalid (reported by the model pass)."""
    try:
        return kind.connection_model.model_validate(raw)
    except ValidationError:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _fill(value: Any, params: dict[str, Any], path: KeyPath, issues: _Issues) -> Any:
    """Fill `{param}` placeholders; a value that is exactly one placeholder keeps the param's type."""
    if not isinstance(value, str) or "{" not in value:
        return value
    names = _PLACEHOLDER.findall(value)
    for name in names:
        if name not in params:
            issues.add(
                path,
                f"placeholder {{{name}}} has no value: set params.{name} on the asset "
                f"or parameters.{name} on its asset type",
            )
            return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        return params[whole.group(1)]
    return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), value)


def _resolve(config: ParkConfig[Any], bindings: dict[_BindingKey, Any]) -> Park:
    """Flatten the validated config into indexed tables."""
    assets: list[AssetRef] = []
    signals: list[SignalRef] = []
    connections: list[ConnectionRef] = []
    sites: dict[tuple[str, str], str] = {}
    shifts: dict[tuple[str, str], list[Shift]] = {}
    for company in config.companies:
        for conn_id, settings in company.connections.items():
            connections.append(ConnectionRef(company.id, conn_id, settings.kind, settings))
        for site in company.sites:
            sites[(company.id, site.id)] = site.timezone
            shifts[(company.id, site.id)] = list(site.shifts)
            groups = [("", site.lines)] + [(area.id, area.lines) for area in site.areas]
            for area_id, lines in groups:
                for line in lines:
                    for asset in line.assets:
                        asset_type = config.asset_types[asset.type]
                        ref = AssetRef(
                            company.id,
                            site.id,
                            area_id,
                            line.id,
                            asset.id,
                            asset.name or asset.id,
                            asset.type,
                            asset.connection,
                            asset.ideal_cycle_time or asset_type.ideal_cycle_time,
                            {**asset_type.parameters, **asset.params},
                            asset.retired,
                            asset.state_map or asset_type.state_map,
                        )
                        assets.append(ref)
                        if asset.retired:
                            continue
                        for name, spec in asset_type.signals.items():
                            binding = bindings[(company.id, site.id, area_id, line.id, asset.id, name)]
                            signals.append(
                                SignalRef(
                                    len(signals),
                                    ref,
                                    name,
                                    spec.role,
                                    spec.unit,
                                    spec.type,
                                    binding,
                                    spec.max_rate,
                                    spec.rollover,
                                )
                            )
    return Park(
        config.park.id,
        config.park.name or config.park.id,
        {c.id: c.name or c.id for c in config.companies},
        sites,
        assets,
        signals,
        connections,
        shifts,
        {c.id: list(c.share) for c in config.companies},
        config.kpi,
    )
