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

import struct
from collections.abc import Callable, Mapping

__all__ = ["CODECS", "MEASUREMENT_UNITS", "Codec", "decode_am308", "decode_vs350", "measurements"]

Codec = Callable[[bytes], dict[str, float]]


# (channel_id, channel_type) -> (value length in bytes, the fields in the value), each
# field (our name, struct format of its little-endian bytes, offset in the value, divisor;
# divisor 1 keeps the integer as the device sent it).
_Item = tuple[int, tuple[tuple[str, str, int, int], ...]]

# Milesight AM308 indoor ambience monitor (AM300 series), SensorDecoders AM_Series/AM300.
_AM308: dict[tuple[int, int], _Item] = {
    (0x01, 0x75): (1, (("battery", "B", 0, 1),)),
    (0x03, 0x67): (2, (("temperature", "<h", 0, 10),)),
    (0x04, 0x68): (1, (("humidity", "B", 0, 2),)),
    (0x05, 0x00): (1, (("pir", "B", 0, 1),)),
    (0x06, 0xCB): (1, (("light_level", "B", 0, 1),)),
    (0x07, 0x7D): (2, (("co2", "<H", 0, 1),)),
    (0x08, 0x7D): (2, (("tvoc", "<H", 0, 1),)),
    (0x09, 0x73): (2, (("pressure", "<H", 0, 10),)),
    (0x0A, 0x7D): (2, (("hcho", "<H", 0, 100),)),
    (0x0B, 0x7D): (2, (("pm2_5", "<H", 0, 1),)),
    (0x0C, 0x7D): (2, (("pm10", "<H", 0, 1),)),
}

# Milesight VS350 passage people counter, SensorDecoders VS_Series/VS350.
_VS350: dict[tuple[int, int], _Item] = {
    (0x01, 0x75): (1, (("battery", "B", 0, 1),)),
    (0x03, 0x67): (2, (("temperature", "<h", 0, 10),)),
    (0x04, 0xCC): (4, (("total_in", "<H", 0, 1), ("total_out", "<H", 2, 1))),
    (0x05, 0xCC): (4, (("period_in", "<H", 0, 1), ("period_out", "<H", 2, 1))),
}


def _channels(table: Mapping[tuple[int, int], _Item], model: str) -> Codec:
    # Keyed by the two header bytes as one integer, each field with its compiled reader.
    compiled = {
        channel << 8 | kind: (
            length,
            tuple(
                (name, struct.Struct(layout).unpack_from, offset, divisor)
                for name, layout, offset, divisor in fields
            ),
        )
        for (channel, kind), (length, fields) in table.items()
    }

    def decode(payload: bytes) -> dict[str, float]:
        decoded: dict[str, float] = {}
        at = 0
        size = len(payload)
        while at < size:
            if at + 2 > size:
                raise ValueError(f"{model}: payload ends inside the channel header at byte {at}")
            item = compiled.get(payload[at] << 8 | payload[at + 1])
            if item is None:
                raise ValueError(
                    f"{model}: unknown channel 0x{payload[at]:02x} "
                    f"type 0x{payload[at + 1]:02x} at byte {at}"
                )
            length, fields = item
            if at + 2 + length > size:
                raise ValueError(f"{model}: payload ends inside channel 0x{payload[at]:02x} value")
            for name, unpack, offset, divisor in fields:
                (value,) = unpack(payload, at + 2 + offset)
                decoded[name] = value if divisor == 1 else value / divisor
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
_NOT_MEASUREMENTS = (bool, str, dict, list)
_ALIASES = {"period_in": "people_in", "period_out": "people_out", "pm25": "pm2_5"}


def measurements(decoded: Mapping[str, object]) -> dict[str, float]:
    """The known measurements in a decoded payload, under our names; others are left out."""
    found: dict[str, float] = {}
    for key, value in decoded.items():
        name = _ALIASES.get(key, key)
        if name in MEASUREMENT_UNITS:
            kind = type(value)
            if kind is int or kind is float or not isinstance(value, _NOT_MEASUREMENTS):
                found[name] = value  # type: ignore[assignment]  # checked by SensorUplink
    return found
