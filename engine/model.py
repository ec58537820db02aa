"""The scenario file format of SPEC §4 as pydantic models: the field rules and the JSON Schema.

These models check each value in place (types, ranges, probability vectors, chains). Rules that
relate one part of a file to another (ids, references, networks) live in ``checks.py``.
Union members carry tags written ``<like-this>`` so that error paths name the file's own keys.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    WithJsonSchema,
)

from .health import CATEGORIES

FORMAT = "goldenhour.scenario/1"
TOL = 1e-9

Number = StrictFloat  # strict: ints are accepted, strings and booleans are not
#: Times and durations are bounded (about 1900 years of minutes) so that no arithmetic overflows.
MAX_MINUTES = 1e9
Time = Annotated[Number, Field(ge=-MAX_MINUTES, le=MAX_MINUTES)]
Minutes = Annotated[Number, Field(ge=0, le=MAX_MINUTES)]
NonNegative = Annotated[Number, Field(ge=0)]
Positive = Annotated[Number, Field(gt=0)]
Probability = Annotated[Number, Field(ge=0, le=1)]
Fatalities = Annotated[Number, Field(ge=0, le=1e9)]
Latitude = Annotated[Number, Field(ge=-90, le=90)]
Longitude = Annotated[Number, Field(ge=-180, le=180)]
Id = Annotated[StrictStr, Field(min_length=1)]


def _whole(value: Any) -> Any:
    """A float with no fractional part as the integer it is (``2.0``: what JSON Schema's
    "integer", the published schema's, admits and exporters write); anything else as it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: A number of beds: an integer, or a number with no fractional part; not a string or a boolean.
Beds = Annotated[StrictInt, Field(ge=0, le=1_000_000_000), BeforeValidator(_whole)]


def _node_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("expected a string or an integer")
    return str(value)


#: A road-network node: a string or an integer in the file, a string once read. One validator
#: rather than a union, so that a wrong value is one problem at its own path.
NodeId = Annotated[str, PlainValidator(_node_id), WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})]


class Strict(BaseModel):
    """Unknown keys and NaN/Infinity are errors everywhere in a scenario."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


def _check_vector(v: list[float]) -> list[float]:
    if len(v) != 4:
        raise ValueError(f"a health vector has 4 entries (delayed, urgent, immediate, deceased), got {len(v)}")
    if any(x < 0 for x in v):
        raise ValueError("probabilities must be >= 0")
    total = math.fsum(v)
    if abs(total - 1.0) > TOL:
        raise ValueError(f"probabilities sum to {total:.12g}, expected 1")
    return v


def _check_matrix(m: list[list[float]]) -> list[list[float]]:
    if len(m) != 4 or any(len(row) != 4 for row in m):
        raise ValueError("a chain is a 4x4 matrix (rows and columns: delayed, urgent, immediate, deceased)")
    for i, row in enumerate(m):
        if any(x < 0 for x in row):
            raise ValueError(f"row {i} has a negative probability")
        total = math.fsum(row)
        if abs(total - 1.0) > TOL:
            raise ValueError(f"row {i} sums to {total:.12g}, expected 1 (the matrix must be row-stochastic)")
    if m[3] != [0.0, 0.0, 0.0, 1.0]:
        raise ValueError("row 3 must be [0, 0, 0, 1]: deceased is absorbing")
    return m


HealthVector = Annotated[list[Number], AfterValidator(_check_vector)]
Matrix = Annotated[list[list[Number]], AfterValidator(_check_matrix)]
Category = Literal[tuple(CATEGORIES)]  # type: ignore[valid-type]


class SieveObservations(Strict):
    walking: StrictBool | None = None
    breathing: StrictBool | None = None
    respiratory_rate: NonNegative | None = None
    capillary_refill: NonNegative | None = None
    pulse: NonNegative | None = None


class StartObservations(Strict):
    walking: StrictBool | None = None
    breathing: StrictBool | None = None
    respiratory_rate: NonNegative | None = None
    radial_pulse: StrictBool | None = None
    capillary_refill: NonNegative | None = None
    follows_commands: StrictBool | None = None


class SieveHealth(Strict):
    sieve: SieveObservations


class StartHealth(Strict):
    start: StartObservations


def _health_kind(v: Any) -> str | None:
    if isinstance(v, (list, tuple)):
        return "<vector>"
    if isinstance(v, str):
        return "<category>"
    if isinstance(v, dict):
        return "<start>" if "start" in v and "sieve" not in v else "<sieve>"
    if isinstance(v, BaseModel):
        return "<start>" if isinstance(v, StartHealth) else "<sieve>"
    return None


Health = Annotated[
    Union[
        Annotated[HealthVector, Tag("<vector>")],
        Annotated[Category, Tag("<category>")],
        Annotated[SieveHealth, Tag("<sieve>")],
        Annotated[StartHealth, Tag("<start>")],
    ],
    Discriminator(
        _health_kind,
        custom_error_type="health",
        custom_error_message="expected a vector of 4 probabilities, a category (delayed, urgent, "
        "immediate, deceased, P1, P2, P3, dead), or {\"sieve\": {...}} / {\"start\": {...}}",
    ),
]


class NodeLocation(Strict):
    node: NodeId


class PointLocation(Strict):
    lat: Latitude
    lon: Longitude


def _location_kind(v: Any) -> str | None:
    if isinstance(v, str):
        return "<place>"
    if isinstance(v, dict):
        return "<node>" if "node" in v else "<point>"
    if isinstance(v, NodeLocation):
        return "<node>"
    if isinstance(v, PointLocation):
        return "<point>"
    return None


Start = Annotated[
    Union[
        Annotated[Id, Tag("<place>")],
        Annotated[NodeLocation, Tag("<node>")],
        Annotated[PointLocation, Tag("<point>")],
    ],
    Discriminator(
        _location_kind,
        custom_error_type="start",
        custom_error_message='expected a place id, {"node": id} or {"lat": ..., "lon": ...}',
    ),
]


class Place(Strict):
    id: Id
    lat: Latitude | None = None
    lon: Longitude | None = None
    node: NodeId | None = None


class Hospital(Place):
    capacity: Beds
    overflow_risk: Probability | None = None


class Site(Place):
    pass


class Station(Place):
    pass


class Responder(Strict):
    id: Id
    kind: Literal["paramedic", "fire"]
    start: Start
    hart: StrictBool = False
    available_at: Time | None = None
    shift_end: Time | None = None


class InTransit(Strict):
    hospital: Id
    arrival: Time


class Casualty(Strict):
    id: Id
    site: Id
    health: Health
    trapped: StrictBool = False
    rescue_minutes: Minutes | None = None
    treatment_minutes: Minutes | None = None
    observed_at: Time | None = None
    treated: StrictBool = False
    rescue_ends_at: Time | None = None
    treatment_ends_at: Time | None = None
    in_transit: InTransit | None = None


class Durations(Strict):
    load: Minutes = 2.0
    handover: Minutes = 5.0
    treatment: Minutes = 10.0
    rescue: Minutes = 20.0


class Chains(Strict):
    trapped: Matrix | None = None
    ccs: Matrix | None = None
    ambulance: Matrix | None = None
    trapped_treated: Matrix | None = None
    ccs_treated: Matrix | None = None


class Node(Strict):
    id: NodeId
    lat: Latitude
    lon: Longitude


class Edge(Strict):
    from_: NodeId = Field(alias="from")
    to: NodeId
    minutes: Minutes | None = None
    length_m: Annotated[Number, Field(ge=0, le=1e9)] | None = None
    speed_kmh: Positive | None = None
    oneway: StrictBool = False


#: The fastest a ``geo`` network's straight lines may be driven (km/h): a bound on typing errors.
GEO_SPEED_MAX = 1e6


class GeoNetwork(Strict):
    kind: Literal["geo"]
    speed_kmh: Annotated[Number, Field(gt=0, le=GEO_SPEED_MAX)]
    detour_factor: Annotated[Number, Field(gt=0, le=1e3)] = 1.0


class GraphNetwork(Strict):
    kind: Literal["graph"]
    speed_kmh: Positive | None = None
    nodes: list[Node] | None = None
    edges: list[Edge] | None = None
    nodes_file: Id | None = None
    edges_file: Id | None = None


def _network_kind(v: Any) -> str | None:
    kind = v.get("kind") if isinstance(v, dict) else getattr(v, "kind", None)
    if not isinstance(kind, str):  # a list or an object is no kind (and cannot be looked up)
        return None
    return {"geo": "<geo>", "graph": "<graph>"}.get(kind)


Network = Annotated[
    Union[Annotated[GeoNetwork, Tag("<geo>")], Annotated[GraphNetwork, Tag("<graph>")]],
    Discriminator(
        _network_kind,
        custom_error_type="network",
        custom_error_message='expected an object with "kind": "geo" or "graph"',
    ),
]


class ScenarioModel(Strict):
    """A goldenhour scenario file: the incident at one moment (SPEC §4)."""

    format: Literal["goldenhour.scenario/1"]
    name: StrictStr = ""
    time: Time = 0.0
    network: Network
    hospitals: list[Hospital] = Field(min_length=1)  # casualties must be taken somewhere
    sites: list[Site]
    stations: list[Station] = []
    responders: list[Responder]
    casualties: list[Casualty]
    durations: Durations = Durations()
    chains: Chains = Chains()
    treatment_slowdown: Probability = 0.5
    hospital_overflow_risk: Probability = 0.05
    delivered_fatalities: Fatalities = 0.0
