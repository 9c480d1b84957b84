"""Raw formats: one module per format, each reading a file into a described, streamable source."""

from labledger.formats.base import Axis, ChannelInfo, Fill, Format, Source, Unreadable
from labledger.formats.registry import detect, formats, get

__all__ = [
    "Axis",
    "ChannelInfo",
    "Fill",
    "Format",
    "Source",
    "Unreadable",
    "detect",
    "formats",
    "get",
]
