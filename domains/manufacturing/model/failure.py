"""The machine-failure model as served: scoring readings, explaining them, and its payloads.

Three payloads, none of them pickle (``PAYLOAD_FILES`` gives their file names):

- ``xgb`` — the machine-failure booster, XGBoost UBJ;
- ``modes`` — one booster per learnable failure mode (TWF, HDF, PWF, OSF): a UBJ object keyed
  by mode code whose values are the boosters' own UBJ bytes (``pack_boosters``); RNF is random
  by construction and gets its base rate;
- ``profile`` — JSON (``FailureProfile``): feature order, decision threshold, the physics
  rules, the training metrics.

A mode is "likely" when its booster gives it at least ``profile.mention_probability`` or when its
physics rule fires; its reason sentence states the rule's quantities against their thresholds.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from verticals.core.errors import ModelUnavailable
from verticals.core.training.xgb import load_booster
from verticals.domains.manufacturing.model import ai4i

if TYPE_CHECKING:
    import xgboost as xgb

PAYLOAD_FILES: Final = {
    "xgb": "failure.xgb.ubj",
    "modes": "failure.modes.ubj",
    "profile": "failure.profile.json",
}
LEARNED_MODES: Final = ("TWF", "HDF", "PWF", "OSF")
N_REASONS: Final = 5


class MachineReading(BaseModel):
    """One machining run's process measurements (the six AI4I inputs)."""

    # strict: numbers are JSON numbers (not "12.5", not true), as at every API boundary
    model_config = ConfigDict(extra="forbid")

    type: Literal["L", "M", "H"] = Field(
        description="Product quality variant: L (low), M (medium) or H (high)."
    )
    air_temperature_k: float = Field(
        ge=200, le=500, allow_inf_nan=False, strict=True, description="Ambient air temperature [K]."
    )
    process_temperature_k: float = Field(
        ge=200,
        le=500,
        allow_inf_nan=False,
        strict=True,
        description="Process (machining) temperature [K].",
    )
    rotational_speed_rpm: float = Field(
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        strict=True,
        description="Spindle rotational speed [rpm].",
    )
    torque_nm: float = Field(
        ge=0, le=500, allow_inf_nan=False, strict=True, description="Torque [Nm]."
    )
    tool_wear_min: float = Field(
        ge=0,
        le=1_000,
        allow_inf_nan=False,
        strict=True,
        description="Minutes the tool has been in use [min].",
    )


class FailureMode(BaseModel):
    code: Literal["TWF", "HDF", "PWF", "OSF", "RNF"] = Field(description="Failure-mode code.")
    name: str = Field(description="Human name, e.g. 'heat dissipation'.")
    probability: float = Field(ge=0, le=1, description="The mode model's probability.")
    reason: str = Field(description="The physics behind it, in one sentence.")


class FeatureReason(BaseModel):
    feature: str = Field(description="Model feature (an input or a derived quantity).")
    value: float = Field(description="The feature's value for this reading.")
    contribution: float = Field(
        description="Its contribution to the failure log-odds (XGBoost pred_contribs)."
    )


class FailureEstimate(BaseModel):
    failure_probability: float = Field(ge=0, le=1, description="Probability of machine failure.")
    threshold: float = Field(description="Decision threshold: at or above it, flag the run.")
    likely_failure_modes: list[FailureMode] = Field(
        description="Modes worth mentioning, most probable first."
    )
    reasons: list[FeatureReason] = Field(
        description="Features that moved the failure score most, largest |contribution| first."
    )


class FailureProfile(BaseModel):
    """What the boosters need besides their trees; travels as the ``profile`` payload."""

    format_version: Literal[1] = 1
    feature_names: list[str]
    threshold: float = Field(gt=0, lt=1)
    mention_probability: float = Field(0.1, gt=0, lt=1)
    modes: list[str] = Field(default_factory=lambda: list(LEARNED_MODES))
    mode_rules: dict[str, Any] = Field(default_factory=lambda: physics_rules())
    rnf_rate: float = ai4i.RNF_RATE
    metrics: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)


def physics_rules() -> dict[str, Any]:
    """The generator's rules, as recorded in the profile."""
    return {
        "HDF": {"temp_diff_below_k": ai4i.HDF_TEMP_DIFF_K, "speed_below_rpm": ai4i.HDF_SPEED_RPM},
        "PWF": {"power_below_w": ai4i.PWF_LOW_W, "power_above_w": ai4i.PWF_HIGH_W},
        "OSF": {"strain_above_minnm": dict(ai4i.OSF_LIMIT_MINNM)},
        "TWF": {"tool_wear_window_min": list(ai4i.TWF_WEAR_MIN)},
        "RNF": {"rate": ai4i.RNF_RATE},
    }


# --- reason sentences -----------------------------------------------------------------------


def _hdf(row: Mapping[str, Any]) -> str:
    diff, speed = row["temp_diff_k"], row[ai4i.ROTATIONAL_SPEED]
    t, s = ai4i.HDF_TEMP_DIFF_K, ai4i.HDF_SPEED_RPM
    if diff < t and speed < s:
        return f"temperature difference {diff:.1f} K below {t} K at {speed:,.0f} rpm (below {s:,.0f} rpm)"
    if diff < t:
        return (
            f"temperature difference {diff:.1f} K below {t} K, but speed {speed:,.0f} rpm "
            f"is not below {s:,.0f} rpm"
        )
    if speed < s:
        return (
            f"speed {speed:,.0f} rpm below {s:,.0f} rpm, but temperature difference "
            f"{diff:.1f} K is not below {t} K"
        )
    return f"temperature difference {diff:.1f} K and speed {speed:,.0f} rpm clear the {t} K / {s:,.0f} rpm limits"


def _pwf(row: Mapping[str, Any]) -> str:
    power, low, high = row["power_w"], ai4i.PWF_LOW_W, ai4i.PWF_HIGH_W
    if power < low:
        return f"power {power:,.0f} W below {low:,.0f} W"
    if power > high:
        return f"power {power:,.0f} W above {high:,.0f} W"
    return f"power {power:,.0f} W within {low:,.0f}-{high:,.0f} W"


def _osf(row: Mapping[str, Any]) -> str:
    strain, kind = row["strain_minnm"], row[ai4i.TYPE]
    limit = ai4i.OSF_LIMIT_MINNM[kind]
    if strain > limit:
        return (
            f"tool wear x torque {strain:,.0f} min·Nm above the {limit:,.0f} min·Nm limit "
            f"for type {kind}"
        )
    return (
        f"tool wear x torque {strain:,.0f} min·Nm, {100 * strain / limit:.0f}% of the "
        f"{limit:,.0f} min·Nm limit for type {kind}"
    )


def _twf(row: Mapping[str, Any]) -> str:
    wear = row[ai4i.TOOL_WEAR]
    low, high = ai4i.TWF_WEAR_MIN
    if low <= wear <= high:
        return (
            f"tool wear {wear:.0f} min inside the {low:.0f}-{high:.0f} min window where tools fail"
        )
    if wear > high:
        return f"tool wear {wear:.0f} min past {high:.0f} min, the end of the tool's life"
    return f"tool wear {wear:.0f} min, short of the {low:.0f}-{high:.0f} min failure window"


def _rnf(row: Mapping[str, Any]) -> str:
    return (
        f"random failures strike about {100 * ai4i.RNF_RATE:.1f}% of runs whatever the conditions"
    )


REASONS: Final = {"TWF": _twf, "HDF": _hdf, "PWF": _pwf, "OSF": _osf, "RNF": _rnf}
RULE_FLAGS: Final = {"HDF": "hdf_rule", "PWF": "pwf_rule", "OSF": "osf_rule"}


class FailureModel:
    """Failure probabilities, likely modes and feature reasons for batches of readings."""

    def __init__(
        self,
        booster: xgb.Booster,
        mode_boosters: Mapping[str, xgb.Booster],
        profile: FailureProfile,
        *,
        nthread: int = 1,
    ) -> None:
        unknown = [n for n in profile.feature_names if n not in ai4i.FEATURE_COLUMNS]
        if unknown:
            raise ValueError(f"the model uses features this release does not compute: {unknown}")
        missing = [m for m in profile.modes if m not in mode_boosters]
        if missing:
            raise ValueError(f"no booster for failure mode(s) {missing}")
        self.booster = booster
        self.mode_boosters = {m: mode_boosters[m] for m in profile.modes}
        self.profile = profile
        self.nthread = nthread

    @property
    def threshold(self) -> float:
        return self.profile.threshold

    # --- prediction ----------------------------------------------------------------------

    def _features(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
        import xgboost

        derived = ai4i.derived_features(frame)
        X = derived[self.profile.feature_names].to_numpy(dtype=np.float32)
        return derived, xgboost.DMatrix(X, nthread=self.nthread)

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Failure probabilities (rows,) for a frame of ``ai4i.INPUT_COLUMNS``."""
        _, dmat = self._features(ai4i.validate_inputs(frame))
        return self.booster.predict(dmat, validate_features=False).astype(np.float64)

    def mode_probabilities(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per-mode probabilities (each (rows,)) for a frame of ``ai4i.INPUT_COLUMNS``."""
        _, dmat = self._features(ai4i.validate_inputs(frame))
        return self._modes(dmat, len(frame))

    def _modes(self, dmat: Any, rows: int) -> dict[str, np.ndarray]:
        out = {
            m: b.predict(dmat, validate_features=False).astype(np.float64)
            for m, b in self.mode_boosters.items()
        }
        if "RNF" not in out:
            out["RNF"] = np.full(rows, self.profile.rnf_rate)
        return out

    def score(self, readings: Sequence[MachineReading]) -> list[FailureEstimate]:
        """One estimate per reading, in order (batched: one booster call per model)."""
        if not readings:
            return []
        frame = pd.DataFrame([r.model_dump() for r in readings], columns=list(ai4i.INPUT_COLUMNS))
        derived, dmat = self._features(frame)
        contribs = self.booster.predict(dmat, pred_contribs=True, validate_features=False)
        margin = contribs.sum(axis=1, dtype=np.float64)
        probability = 1.0 / (1.0 + np.exp(-margin))
        contribs = contribs[:, :-1]  # the bias column
        modes = self._modes(dmat, len(frame))
        names = self.profile.feature_names
        values = derived[names].to_numpy(dtype=np.float64)
        top = np.argsort(-np.abs(contribs), axis=1, kind="stable")[:, :N_REASONS]
        rows = derived.to_dict("records")
        mention = self.profile.mention_probability
        estimates = []
        for i, row in enumerate(rows):
            likely = [
                FailureMode(
                    code=code,
                    name=ai4i.MODE_NAMES[code],
                    probability=float(p[i]),
                    reason=REASONS[code](row),
                )
                for code, p in modes.items()
                if p[i] >= mention or (code in RULE_FLAGS and row[RULE_FLAGS[code]] > 0)
            ]
            likely.sort(key=lambda m: -m.probability)
            reasons = [
                FeatureReason(
                    feature=names[j],
                    value=round(float(values[i, j]), 6),
                    contribution=float(contribs[i, j]),
                )
                for j in top[i]
            ]
            estimates.append(
                FailureEstimate(
                    failure_probability=float(probability[i]),
                    threshold=self.threshold,
                    likely_failure_modes=likely,
                    reasons=reasons,
                )
            )
        return estimates

    # --- payloads ------------------------------------------------------------------------

    def to_payloads(self) -> dict[str, bytes]:
        """``{"xgb": UBJ, "modes": UBJ, "profile": JSON}`` (see ``PAYLOAD_FILES``)."""
        modes = {m: bytes(b.save_raw(raw_format="ubj")) for m, b in self.mode_boosters.items()}
        return {
            "xgb": bytes(self.booster.save_raw(raw_format="ubj")),
            "modes": pack_boosters(modes),
            "profile": json.dumps(self.profile.model_dump(mode="json"), indent=2).encode(),
        }

    @classmethod
    def from_payloads(cls, payloads: Mapping[str, bytes], *, nthread: int = 1) -> FailureModel:
        """From verified payload bytes; a missing or unreadable payload makes the model
        unavailable (``ModelUnavailable`` naming the payload)."""
        missing = [k for k in PAYLOAD_FILES if k not in payloads]
        if missing:
            raise ModelUnavailable(f"failure model payload(s) missing: {missing}")
        try:
            profile = FailureProfile.model_validate_json(payloads["profile"])
        except ValidationError as exc:
            raise ModelUnavailable(f"failure model profile is invalid: {exc}") from exc
        try:
            booster = load_booster(bytes(payloads["xgb"]), nthread=nthread, device="cpu")
        except Exception as exc:  # noqa: BLE001 - XGBoostError and friends: an unusable file
            raise ModelUnavailable(f"failure model payload 'xgb' is unreadable: {exc}") from exc
        try:
            mode_boosters = {
                m: load_booster(model, nthread=nthread, device="cpu")
                for m, model in unpack_boosters(bytes(payloads["modes"])).items()
            }
        except Exception as exc:  # noqa: BLE001 - bad packing or a bad booster inside
            raise ModelUnavailable(f"failure model payload 'modes' is unreadable: {exc}") from exc
        try:
            return cls(booster, mode_boosters, profile, nthread=nthread)
        except ValueError as exc:
            raise ModelUnavailable(str(exc)) from exc


# --- the "modes" payload: a UBJ object {code: uint8 array of the booster's UBJ bytes} ----------

_ARRAY = b"[$U#l"  # a strongly typed UBJ array of uint8 with an int32 count


def pack_boosters(models: Mapping[str, bytes]) -> bytes:
    """``{"HDF": <UBJ model bytes>, ...}`` as one UBJ object (keys sorted, at most 127 bytes)."""
    out = bytearray(b"{")
    for key in sorted(models):
        name = key.encode()
        if not 0 < len(name) < 128:
            raise ValueError(f"key {key!r} must be 1-127 bytes")
        out += b"i" + bytes([len(name)]) + name
        out += _ARRAY + struct.pack(">i", len(models[key])) + models[key]
    return bytes(out + b"}")


def unpack_boosters(data: bytes) -> dict[str, bytes]:
    """The inverse of ``pack_boosters``; ``ValueError`` on anything else."""
    if data[:1] != b"{" or data[-1:] != b"}":
        raise ValueError("not a UBJ object")
    models: dict[str, bytes] = {}
    at, end = 1, len(data) - 1
    while at < end:
        if data[at : at + 1] != b"i":
            raise ValueError(f"byte {at}: expected a key")
        size = data[at + 1]
        name = data[at + 2 : at + 2 + size].decode()
        at += 2 + size
        if data[at : at + len(_ARRAY)] != _ARRAY:
            raise ValueError(f"byte {at}: expected a uint8 array for {name!r}")
        at += len(_ARRAY)
        (count,) = struct.unpack(">i", data[at : at + 4])
        at += 4
        if count < 0 or at + count > end:
            raise ValueError(f"array {name!r} runs past the end")
        models[name] = data[at : at + count]
        at += count
    return models
