"""CAP 1.2 (Common Alerting Protocol) alerts, pure: safe parsing, schema validation, feed indexes, area
matching and the priority rule table. No I/O but reading the package's own data files."""

from speakerctl.cap.area import Point, inside
from speakerctl.cap.feed import feed_links
from speakerctl.cap.model import Alert, AlertKey, Area, Circle, Info, MsgType, Reference, Status
from speakerctl.cap.parse import MAX_BYTES, parse_alert
from speakerctl.cap.rules import Rule, RuleTable, default_rules, load_rules

__all__ = [
    "MAX_BYTES",
    "Alert",
    "AlertKey",
    "Area",
    "Circle",
    "Info",
    "MsgType",
    "Point",
    "Reference",
    "Rule",
    "RuleTable",
    "Status",
    "default_rules",
    "feed_links",
    "inside",
    "load_rules",
    "parse_alert",
]
