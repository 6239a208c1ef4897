"""Payload codecs for LoRaWAN devices, keyed by The Things Stack device repository model ID.

A codec turns the raw ``frm_payload`` bytes into the same dictionary the vendor's own
decoder would put in ``decoded_payload``, so both paths then go through one mapping to our
measurement names (:func:`measurements`).

Both shipped codecs follow Milesight's published channel/type/value layout
(github.com/Milesight-IoT/SensorDecoders; AM308 table also in
github.com/thingsboard/data-converters VENDORS/Milesight/AM308/guide.md):
each item is ``channel_id(1B) channel_type(1B) value(N bytes, little-endian)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["CODECS", "MEASUREMENT_UNITS", "Codec", "decode_am308", "decode_vs350", "measurements"]

Codec = Callable[[bytes], dict[str, float]]


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def _i16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little", signed=True)


# (channel_id, channel_type) -> (value length in bytes, reader of the value)
_Item = tuple[int, Callable[[bytes, int], dict[str, float]]]

# Milesight AM308 indoor ambience monitor (AM300 series), SensorDecoders AM_Series/AM300.
_AM308: dict[tuple[int, int], _Item] = {
    (0x01, 0x75): (1, lambda b, i: {"battery": b[i]}),
    (0x03, 0x67): (2, lambda b, i: {"temperature": _i16(b, i) / 10}),
    (0x04, 0x68): (1, lambda b, i: {"humidity": b[i] / 2}),
    (0x05, 0x00): (1, lambda b, i: {"pir": b[i]}),
    (0x06, 0xCB): (1, lambda b, i: {"light_level": b[i]}),
    (0x07, 0x7D): (2, lambda b, i: {"co2": _u16(b, i)}),
    (0x08, 0x7D): (2, lambda b, i: {"tvoc": _u16(b, i)}),
    (0x09, 0x73): (2, lambda b, i: {"pressure": _u16(b, i) / 10}),
    (0x0A, 0x7D): (2, lambda b, i: {"hcho": _u16(b, i) / 100}),
    (0x0B, 0x7D): (2, lambda b, i: {"pm2_5": _u16(b, i)}),
    (0x0C, 0x7D): (2, lambda b, i: {"pm10": _u16(b, i)}),
}

# Milesight VS350 passage people counter, SensorDecoders VS_Series/VS350.
_VS350: dict[tuple[int, int], _Item] = {
    (0x01, 0x75): (1, lambda b, i: {"battery": b[i]}),
    (0x03, 0x67): (2, lambda b, i: {"temperature": _i16(b, i) / 10}),
    (0x04, 0xCC): (4, lambda b, i: {"total_in": _u16(b, i), "total_out": _u16(b, i + 2)}),
    (0x05, 0xCC): (4, lambda b, i: {"period_in": _u16(b, i), "period_out": _u16(b, i + 2)}),
}


def _channels(table: Mapping[tuple[int, int], _Item], model: str) -> Codec:
    def decode(payload: bytes) -> dict[str, float]:
        decoded: dict[str, float] = {}
        at = 0
        while at < len(payload):
            if at + 2 > len(payload):
                raise ValueError(f"{model}: payload ends inside the channel header at byte {at}")
            key = (payload[at], payload[at + 1])
            if key not in table:
                raise ValueError(
                    f"{model}: unknown channel 0x{key[0]:02x} type 0x{key[1]:02x} at byte {at}"
                )
            length, read = table[key]
            if at + 2 + length > len(payload):
                raise ValueError(f"{model}: payload ends inside channel 0x{key[0]:02x} value")
            decoded.update(read(payload, at + 2))
            at += 2 + length
        return decoded

    decode.__name__ = f"decode_{model}"
    return decode


decode_am308 = _channels(_AM308, "am308")
decode_vs350 = _channels(_VS350, "vs350")

CODECS: dict[str, Codec] = {"am308": decode_am308, "vs350": decode_vs350}

# Our measurement names and units; vendor keys that mean the same thing map onto them.
MEASUREMENT_UNITS: dict[str, str] = {
    "pm2_5": "µg/m3",
    "pm10": "µg/m3",
    "no2": "µg/m3",
    "co2": "ppm",
    "temperature": "Cel",
    "humidity": "%RH",
    "people_in": "count",
    "people_out": "count",
}
_ALIASES = {"period_in": "people_in", "period_out": "people_out", "pm25": "pm2_5"}


def measurements(decoded: Mapping[str, object]) -> dict[str, float]:
    """The known measurements in a decoded payload, under our names; others are left out."""
    found: dict[str, float] = {}
    for key, value in decoded.items():
        name = _ALIASES.get(key, key)
        if name in MEASUREMENT_UNITS and not isinstance(value, bool | str | dict | list):
            found[name] = value  # type: ignore[assignment]  # checked by SensorUplink
    return found
